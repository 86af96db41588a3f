//! Independent checks of what one side hands out against the other side's bundle: X.509 with
//! `openssl` and `x509-parser`, JWTs with the `spiffe` crate.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use spiffe::{JwtBundle, JwtBundleSet, JwtSvid, TrustDomain};

use crate::common::{TD, openssl_available, openssl_verify_with};

/// The files `-write DIR` of `spire-agent api fetch x509` (and Lanyard's) must produce.
pub const X509_FILES: [&str; 3] = ["svid.0.pem", "svid.0.key", "bundle.0.pem"];

/// Checks `dir`'s `svid.0.pem` (leaf first, then any intermediates) against the CA
/// certificates in `roots`: the chain verifies, the leaf names `spiffe_id` and nothing else,
/// and `svid.0.key` is the leaf's key. Skipped (printed) without openssl, except in CI.
pub fn assert_written_svid(dir: &Path, roots: &Path, spiffe_id: &str) {
    for name in X509_FILES {
        assert!(dir.join(name).is_file(), "{name} was not written");
    }
    let svid = dir.join("svid.0.pem");
    assert_eq!(
        uri_sans(&svid),
        [spiffe_id],
        "URI SANs of {}",
        svid.display()
    );
    if !openssl_available() {
        return;
    }
    openssl_verify_with(roots, Some(&svid), &svid);
    assert_eq!(
        openssl(&["x509", "-noout", "-pubkey", "-in"], &svid),
        openssl(&["pkey", "-pubout", "-in"], &dir.join("svid.0.key")),
        "svid.0.key does not belong to the leaf of svid.0.pem"
    );
}

/// The URI SANs of the first certificate in a PEM file.
pub fn uri_sans(pem_file: &Path) -> Vec<String> {
    let pem = std::fs::read(pem_file).unwrap();
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).expect("a PEM certificate");
    let cert = block.parse_x509().expect("parse the certificate");
    let san = cert
        .subject_alternative_name()
        .expect("a well-formed SAN extension")
        .expect("a SAN extension");
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => Some((*uri).to_owned()),
            _ => None,
        })
        .collect()
}

/// Validates `token` for `audience` with the `spiffe` crate against the JWT authorities of a
/// SPIFFE bundle document (`bundle show -format spiffe`: a JWKS whose keys carry `use`).
pub fn validate_jwt(token: &str, spiffe_bundle: &str, audience: &str) -> Result<JwtSvid, String> {
    let doc: Value = serde_json::from_str(spiffe_bundle)
        .map_err(|e| format!("the bundle is not JSON ({e}): {spiffe_bundle}"))?;
    let jwt_keys: Vec<&Value> = doc["keys"]
        .as_array()
        .ok_or_else(|| format!("the bundle has no keys array: {spiffe_bundle}"))?
        .iter()
        .filter(|key| key["use"] == "jwt-svid")
        .collect();
    let jwks = serde_json::json!({ "keys": jwt_keys }).to_string();
    let bundle = JwtBundle::from_jwt_authorities(TrustDomain::new(TD).unwrap(), jwks.as_bytes())
        .map_err(|e| format!("the JWT authorities do not parse: {e}"))?;
    let mut bundles = JwtBundleSet::new();
    bundles.add_bundle(bundle);
    JwtSvid::parse_and_validate(token, &bundles, &[audience]).map_err(|e| e.to_string())
}

/// `openssl <args> <file>` must succeed; its stdout.
fn openssl(args: &[&str], file: &Path) -> String {
    let out = Command::new("openssl")
        .args(args)
        .arg(file)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
