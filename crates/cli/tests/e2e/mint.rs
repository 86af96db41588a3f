//! Operators mint SVIDs with `lanyard server x509 mint` and `lanyard server jwt mint`; what they
//! get verifies with openssl, the `spiffe` crate and Lanyard's JWT validation.

use std::os::unix::fs::PermissionsExt;

use rustls::pki_types::pem::PemObject as _;
use std::time::SystemTime;

use lanyard_proto::spire::api::server::bundle::v1::{
    GetBundleRequest, bundle_client::BundleClient,
};
use lanyard_spiffe::jwt::JwtPublicKey;
use lanyard_spiffe::{JwtBundle, JwtSvid, TrustDomain};
use lanyard_testkit::{Server, ServerOptions};

use crate::common::*;

fn start(l: &lanyard_testkit::Lanyard) -> Server {
    l.start_server(ServerOptions {
        extra_args: [
            "--jwt-key-type",
            "rsa-2048",
            "--jwt-issuer",
            "https://oidc.example.org",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        ..Default::default()
    })
}

/// The JWT keys of the server's bundle, as `bundle.v1 GetBundle` serves them.
pub(crate) async fn jwt_bundle(server: &Server) -> JwtBundle {
    let channel = lanyard_workload::client::unix_channel(&server.socket)
        .await
        .unwrap();
    let wire = BundleClient::new(channel)
        .get_bundle(GetBundleRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut bundle = JwtBundle::new(TrustDomain::new(&wire.trust_domain).unwrap());
    for key in wire.jwt_authorities {
        bundle.insert(
            key.key_id,
            JwtPublicKey::from_spki_der(&key.public_key).unwrap(),
        );
    }
    bundle
}

#[tokio::test(flavor = "multi_thread")]
async fn x509_mint_writes_files_that_openssl_and_the_spiffe_crate_accept() {
    let l = lanyard();
    let server = start(&l);
    let dir = l.path("minted");
    let id = format!("spiffe://{TD}/ops/backup");
    let extra = ["--ttl", "10m", "--dns", "backup.example.org"];
    let out = mint_x509(&l, &server, &id, &dir, &extra);
    assert!(
        out.success,
        "x509 mint failed:\n{}\n{}",
        out.stdout, out.stderr
    );

    let mode = std::fs::metadata(dir.join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "key.pem mode {mode:o}");
    if openssl_available() {
        openssl_verify(&dir.join("bundle.pem"), &dir.join("svid.pem"));
    }

    let chain =
        lanyard_spiffe::x509::parse_pem_certs(&std::fs::read(dir.join("svid.pem")).unwrap())
            .unwrap();
    let key_der = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_file(dir.join("key.pem"))
        .unwrap()
        .secret_pkcs8_der()
        .to_vec();
    let chain_der: Vec<u8> = chain.iter().flat_map(|c| c.to_vec()).collect();
    let svid = spiffe::X509Svid::parse_from_der(&chain_der, &key_der).unwrap();
    assert_eq!(svid.spiffe_id().to_string(), id);
    assert_key_matches(&svid);
    let (_, leaf) = x509_parser::parse_x509_certificate(svid.leaf().as_bytes()).unwrap();
    let lifetime = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
    assert!((600..=610).contains(&lifetime), "{lifetime}");
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert!(
        format!("{:?}", san.value.general_names).contains("backup.example.org"),
        "{:?}",
        san.value
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn jwt_mint_prints_a_token_that_validates_against_the_bundle() {
    let l = lanyard();
    let server = start(&l);
    let id = format!("spiffe://{TD}/ops/report");
    let out = l.cli(&[
        "server",
        "jwt",
        "mint",
        "--socket",
        &server.socket_str(),
        "--spiffe-id",
        &id,
        "--audience",
        "db",
        "--audience",
        "cache",
        "--output",
        "json",
    ]);
    assert!(
        out.success,
        "jwt mint failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    let printed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let token = printed["token"].as_str().unwrap();
    assert_eq!(
        printed["expires_at"].as_i64().unwrap() - printed["issued_at"].as_i64().unwrap(),
        300,
        "default_jwt_svid_ttl is 5m"
    );

    let bundle = jwt_bundle(&server).await;
    let svid = JwtSvid::parse_and_validate(token, &bundle, &["cache"], SystemTime::now()).unwrap();
    assert_eq!(svid.spiffe_id().to_string(), id);
    assert_eq!(svid.algorithm().as_str(), "RS256");
    assert_eq!(svid.claims()["iss"], "https://oidc.example.org");

    // Plain output is the token alone.
    let out = l.cli(&[
        "server",
        "jwt",
        "mint",
        "--socket",
        &server.socket_str(),
        "--spiffe-id",
        &id,
        "--audience",
        "db",
        "--ttl",
        "1m",
    ]);
    assert!(out.success, "{}", out.stderr);
    let token = out.stdout.trim();
    let svid = JwtSvid::parse_and_validate(token, &bundle, &["db"], SystemTime::now()).unwrap();
    assert_eq!(svid.audience(), ["db"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_mint_requests_fail_clearly_and_the_server_keeps_serving() {
    let l = lanyard();
    let server = start(&l);
    let socket = server.socket_str();
    let cases: [(&[&str], &str); 5] = [
        (
            &["x509", "mint", "--spiffe-id", "spiffe://other.org/w"],
            "is not in trust domain 'example.org'",
        ),
        (
            &[
                "jwt",
                "mint",
                "--spiffe-id",
                "spiffe://other.org/w",
                "--audience",
                "a",
            ],
            "is not in trust domain 'example.org'",
        ),
        (
            &[
                "jwt",
                "mint",
                "--spiffe-id",
                "spiffe://example.org/w",
                "--audience",
                "",
            ],
            "every audience must be a non-empty string",
        ),
        (
            &[
                "jwt",
                "mint",
                "--spiffe-id",
                "spiffe://example.org/w",
                "--audience",
                "a",
                "--ttl",
                "0s",
            ],
            "an SVID must live at least 1s",
        ),
        (
            &[
                "x509",
                "mint",
                "--spiffe-id",
                "spiffe://example.org/w",
                "--dns",
                "bad name!",
            ],
            "dns name 'bad name!' is invalid",
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["server"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--socket", &socket]);
        let out = l.cli(&full);
        assert!(!out.success, "{args:?} succeeded:\n{}", out.stdout);
        assert!(out.stderr.contains(expected), "{args:?}:\n{}", out.stderr);
    }

    let out = l.cli(&[
        "server",
        "jwt",
        "mint",
        "--socket",
        &socket,
        "--spiffe-id",
        "spiffe://example.org/w",
        "--audience",
        "a",
    ]);
    assert!(
        out.success,
        "server stopped serving:\n{}\n{}",
        out.stderr,
        server.logs()
    );
}
