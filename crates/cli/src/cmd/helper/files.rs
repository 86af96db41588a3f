//! The helper's files, each replaced atomically on every update: the X509-SVID, its key and
//! bundle, the JWT bundles and the JWT-SVIDs.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use lanyard_spiffe::JwtBundleSet;
use lanyard_spiffe::x509::{certs_to_pem, pkcs8_to_pem};
use lanyard_workload::X509Context;

use super::config::HelperConfig;

/// What one update wrote, for the log.
pub(crate) struct Written {
    /// The certificate file.
    pub(crate) svid: PathBuf,
    /// The SVID's SPIFFE ID.
    pub(crate) spiffe_id: String,
    /// The leaf's serial number, decimal.
    pub(crate) serial: String,
}

/// Writes the default SVID, its key (`key_file_mode`) and the bundle (`cert_file_mode`) under
/// `cert_dir`, each with [`replace`].
///
/// # Errors
///
/// A context without SVID or own bundle, or a file that cannot be written.
pub(crate) fn write(config: &HelperConfig, context: &X509Context) -> anyhow::Result<Written> {
    let svid = context
        .default_svid()
        .context("the Workload API sent no X509-SVID")?;
    let own_td = svid.spiffe_id().trust_domain();
    let own = context
        .bundle_for(&own_td)
        .with_context(|| format!("no bundle for the SVID's trust domain {own_td}"))?;

    let chain = svid.chain();
    let (leaf_part, intermediates) = if config.add_intermediates_to_bundle {
        (
            &chain[..1.min(chain.len())],
            chain.get(1..).unwrap_or_default(),
        )
    } else {
        (chain, &[][..])
    };
    let mut bundle = own.to_pem();
    bundle.push_str(&certs_to_pem(intermediates));
    if config.include_federated_domains {
        for federated in context
            .bundles
            .iter()
            .filter(|b| *b.trust_domain() != own_td)
        {
            bundle.push_str(&federated.to_pem());
        }
    }

    let path = |name: &str| config.cert_dir.join(name);
    let svid_path = path(&config.svid_file_name);
    replace(
        &svid_path,
        certs_to_pem(leaf_part).as_bytes(),
        config.cert_file_mode,
    )?;
    replace(
        &path(&config.svid_key_file_name),
        pkcs8_to_pem(svid.key()).as_bytes(),
        config.key_file_mode,
    )?;
    replace(
        &path(&config.svid_bundle_file_name),
        bundle.as_bytes(),
        config.cert_file_mode,
    )?;
    Ok(Written {
        svid: svid_path,
        spiffe_id: svid.spiffe_id().to_string(),
        serial: lanyard_spiffe::x509::serial_of(svid.leaf()).unwrap_or_default(),
    })
}

/// Writes the JWT bundle file as spiffe-helper does: one JSON object whose members are the
/// trust domain names, each holding the standard base64 of that trust domain's JWKS document
/// (`{"keys": [..]}`), so that a reader decodes a member and hands it to any JWKS parser.
///
/// # Errors
///
/// The file cannot be written.
pub(crate) fn write_jwt_bundles(
    dir: &Path,
    name: &str,
    mode: u32,
    bundles: &JwtBundleSet,
) -> anyhow::Result<PathBuf> {
    use base64::Engine as _;

    let document: serde_json::Map<String, serde_json::Value> = bundles
        .iter()
        .map(|bundle| {
            let jwks = lanyard_spiffe::bundle::jwt_bundle_to_jwks(bundle);
            (
                bundle.trust_domain().to_string(),
                base64::engine::general_purpose::STANDARD
                    .encode(jwks)
                    .into(),
            )
        })
        .collect();
    let path = dir.join(name);
    replace(
        &path,
        serde_json::Value::Object(document).to_string().as_bytes(),
        mode,
    )?;
    Ok(path)
}

/// Writes one JWT-SVID: the compact token alone, without a newline, as spiffe-helper does.
///
/// # Errors
///
/// The file cannot be written.
pub(crate) fn write_jwt_svid(path: &Path, token: &str, mode: u32) -> anyhow::Result<()> {
    replace(path, token.as_bytes(), mode)
}

/// Replaces `path` atomically with `contents` and exactly `mode`: the bytes go to a temporary
/// file in the same directory, which gets `mode` (set explicitly, so neither the umask nor a
/// leftover temporary file changes it), is synced, then renamed over `path`. A reader sees
/// the old file or the new one, never half of either, and a key never sits in a file more
/// open than asked.
///
/// # Errors
///
/// The directory cannot be created, or the file cannot be written or renamed.
pub(crate) fn replace(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The temporary name keeps the whole file name, so that two files differing only in
    // their extension (`a.pem`, `a.token`) never share one.
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            // Created closed to everyone else until the mode below is set.
            .mode(0o600)
            .open(&tmp)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()
    };
    write().with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn replace_sets_the_exact_mode_even_over_an_older_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.token");
        replace(&path, b"one", 0o644).unwrap();
        assert_eq!(mode_of(&path), 0o644);

        replace(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(mode_of(&path), 0o600);
        // Group write is kept although the usual umask would clear it.
        replace(&path, b"three", 0o664).unwrap();
        assert_eq!(mode_of(&path), 0o664);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn jwt_bundle_file_maps_each_trust_domain_to_its_base64_jwks() {
        use base64::Engine as _;
        use lanyard_spiffe::{JwtBundle, TrustDomain};

        let dir = tempfile::tempdir().unwrap();
        let key = lanyard_spiffe::jwt::JwtPublicKey::from_ec_coordinates(
            lanyard_spiffe::jwt::EcCurve::P256,
            &P256_X,
            &P256_Y,
        )
        .unwrap();
        let mut own = JwtBundle::new(TrustDomain::new("example.org").unwrap());
        own.insert("k1", key);
        let other = JwtBundle::new(TrustDomain::new("other.org").unwrap());
        let set: JwtBundleSet = [own, other].into_iter().collect();

        let path = write_jwt_bundles(dir.path(), "bundle.json", 0o600, &set).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        let doc: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc.len(), 2);
        let jwks = base64::engine::general_purpose::STANDARD
            .decode(doc["example.org"].as_str().unwrap())
            .unwrap();
        let parsed =
            lanyard_spiffe::bundle::parse_jwks(TrustDomain::new("example.org").unwrap(), &jwks)
                .unwrap();
        assert!(
            parsed.get("k1").is_some(),
            "{}",
            String::from_utf8_lossy(&jwks)
        );
    }

    // The P-256 generator point: a valid public key with no private key behind it here.
    const P256_X: [u8; 32] = [
        0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40,
        0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98,
        0xc2, 0x96,
    ];
    const P256_Y: [u8; 32] = [
        0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e,
        0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf,
        0x51, 0xf5,
    ];
}
