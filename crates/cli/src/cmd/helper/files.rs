//! The helper's files, each replaced atomically on every update: the X509-SVID, its key and
//! bundle, the JWT bundles and the JWT-SVIDs.

use std::path::{Path, PathBuf};

use anyhow::Context;
use lanyard_spiffe::JwtBundleSet;
use lanyard_spiffe::x509::{certs_to_pem, pkcs8_to_pem};
use lanyard_workload::X509Context;

use super::config::HelperConfig;
use crate::cmd::file_write;

/// The three X.509 files of one update, rendered but not yet written.
#[derive(PartialEq, Eq)]
pub(crate) struct Rendered {
    svid: String,
    key: String,
    bundle: String,
    /// The SVID's SPIFFE ID.
    pub(crate) spiffe_id: String,
    /// The leaf's serial number, decimal.
    pub(crate) serial: String,
}

/// Renders the default SVID, its key and the bundle as the helper writes them.
///
/// # Errors
///
/// A context without SVID or own bundle.
pub(crate) fn render(config: &HelperConfig, context: &X509Context) -> anyhow::Result<Rendered> {
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
    Ok(Rendered {
        svid: certs_to_pem(leaf_part),
        key: pkcs8_to_pem(svid.key()),
        bundle,
        spiffe_id: svid.spiffe_id().to_string(),
        serial: lanyard_spiffe::x509::serial_of(svid.leaf()).unwrap_or_default(),
    })
}

/// Writes the rendered files under `cert_dir`: the key with `key_file_mode`, the others with
/// `cert_file_mode`, each with [`replace`]. Returns the certificate file.
///
/// # Errors
///
/// A file that cannot be written.
pub(crate) fn write(config: &HelperConfig, rendered: &Rendered) -> anyhow::Result<PathBuf> {
    let path = |name: &str| config.cert_dir.join(name);
    let svid_path = path(&config.svid_file_name);
    replace(&svid_path, rendered.svid.as_bytes(), config.cert_file_mode)?;
    replace(
        &path(&config.svid_key_file_name),
        rendered.key.as_bytes(),
        config.key_file_mode,
    )?;
    replace(
        &path(&config.svid_bundle_file_name),
        rendered.bundle.as_bytes(),
        config.cert_file_mode,
    )?;
    Ok(svid_path)
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

/// Replaces `path` atomically with `contents` and exactly `mode`, never following a symlink
/// planted in the directory (see [`file_write::replace`]).
///
/// # Errors
///
/// The directory cannot be created, or the file cannot be written or renamed.
pub(crate) fn replace(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    Ok(file_write::replace(path, contents, mode)?)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
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

    /// A CA of `example.org` and a function issuing SVIDs from it.
    fn issuer() -> (
        lanyard_spiffe::X509Bundle,
        impl Fn(&str) -> lanyard_spiffe::X509Svid,
    ) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let td = lanyard_spiffe::TrustDomain::new("example.org").unwrap();
        let bundle = lanyard_spiffe::X509Bundle::from_der(td, ca.der()).unwrap();
        let issue = move |path: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.subject_alt_names = vec![rcgen::SanType::URI(
                format!("spiffe://example.org/{path}").try_into().unwrap(),
            )];
            params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
            let cert = params
                .signed_by(&key, &rcgen::Issuer::from_params(&ca_params, &ca_key))
                .unwrap();
            lanyard_spiffe::X509Svid::parse_der(cert.der(), &key.serialize_der()).unwrap()
        };
        (bundle, issue)
    }

    #[test]
    fn renders_the_same_files_when_only_another_svid_changes() {
        let (bundle, issue) = issuer();
        let default = issue("web");
        let context = |other: lanyard_spiffe::X509Svid| X509Context {
            svids: vec![default.clone(), other],
            bundles: vec![bundle.clone()],
        };
        let config = HelperConfig::default();

        let before = render(&config, &context(issue("db"))).unwrap();
        let after = render(&config, &context(issue("db"))).unwrap();
        assert!(
            before == after,
            "a rotated second SVID changes nothing written"
        );

        let rotated = X509Context {
            svids: vec![issue("web")],
            bundles: vec![bundle.clone()],
        };
        assert!(render(&config, &rotated).unwrap() != before);
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
