//! Every `ca_key_type` and `jwt_key_type` end to end: a server whose CA and JWT keys are of one
//! type mints an X509-SVID that openssl, the `spiffe` crate and Lanyard accept, and a JWT-SVID
//! that validates against the JWT keys of its bundle with the algorithm the key type implies.

use std::time::{Instant, SystemTime};

use lanyard_spiffe::JwtSvid;
use lanyard_testkit::ServerOptions;

use crate::common::*;

async fn mints_verifiable_svids_with(key_type: &str, ca_key_bits: usize, jwt_alg: &str) {
    let started = Instant::now();
    let l = lanyard();
    let server = l.start_server(ServerOptions {
        extra_args: ["--ca-key-type", key_type, "--jwt-key-type", key_type]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..Default::default()
    });
    let socket = server.socket_str();
    let dir = l.path("minted");
    let id = format!("spiffe://{TD}/key-types/{key_type}");

    let out = mint_x509(&l, &server, &id, &dir, &[]);
    assert!(
        out.success,
        "x509 mint failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    if openssl_available() {
        openssl_verify(&dir.join("bundle.pem"), &dir.join("svid.pem"));
    }

    let chain_pem = std::fs::read(dir.join("svid.pem")).unwrap();
    let key_pem = std::fs::read(dir.join("key.pem")).unwrap();
    let ours = lanyard_spiffe::X509Svid::parse_pem(&chain_pem, &key_pem).unwrap();
    assert_eq!(ours.spiffe_id().to_string(), id);
    let chain = lanyard_spiffe::x509::parse_pem_certs(&chain_pem).unwrap();
    let chain_der: Vec<u8> = chain.iter().flat_map(|c| c.to_vec()).collect();
    let svid = spiffe::X509Svid::parse_from_der(&chain_der, ours.key().secret_pkcs8_der()).unwrap();
    assert_eq!(svid.spiffe_id().to_string(), id);
    assert_key_matches(&svid);

    let bundle =
        lanyard_spiffe::x509::parse_pem_certs(&std::fs::read(dir.join("bundle.pem")).unwrap())
            .unwrap();
    assert_eq!(bundle.len(), 1);
    let (_, ca) = x509_parser::parse_x509_certificate(&bundle[0]).unwrap();
    assert_eq!(
        ca.public_key().parsed().unwrap().key_size(),
        ca_key_bits,
        "the CA key is {key_type}"
    );
    let (_, leaf) = x509_parser::parse_x509_certificate(svid.leaf().as_bytes()).unwrap();
    leaf.verify_signature(Some(ca.public_key())).unwrap();

    let out = l.cli(&[
        "server",
        "jwt",
        "mint",
        "--socket",
        &socket,
        "--spiffe-id",
        &id,
        "--audience",
        "db",
    ]);
    assert!(
        out.success,
        "jwt mint failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    let jwt_bundle = crate::mint::jwt_bundle(&server).await;
    let token = out.stdout.trim();
    let jwt = JwtSvid::parse_and_validate(token, &jwt_bundle, &["db"], SystemTime::now()).unwrap();
    assert_eq!(jwt.spiffe_id().to_string(), id);
    assert_eq!(jwt.algorithm().as_str(), jwt_alg);

    // Written past libtest's capture, so that slow key generation shows in the run's output.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "{key_type}: server start, x509 and jwt mint took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ec_p256_ca_and_jwt_keys_mint_verifiable_svids() {
    mints_verifiable_svids_with("ec-p256", 256, "ES256").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ec_p384_ca_and_jwt_keys_mint_verifiable_svids() {
    mints_verifiable_svids_with("ec-p384", 384, "ES384").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rsa_2048_ca_and_jwt_keys_mint_verifiable_svids() {
    mints_verifiable_svids_with("rsa-2048", 2048, "RS256").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rsa_4096_ca_and_jwt_keys_mint_verifiable_svids() {
    mints_verifiable_svids_with("rsa-4096", 4096, "RS256").await;
}
