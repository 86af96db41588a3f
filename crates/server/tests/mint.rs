//! Operators minting SVIDs on the admin socket (`svid.v1` MintX509SVID and MintJWTSVID), and
//! the JWT keys in the bundle that validate what they mint.

#![expect(
    clippy::unwrap_used,
    reason = "integration test helpers assert by panicking"
)]

mod support;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use lanyard_ca::{KeyType, generate_key_pair, make_csr};
use lanyard_proto::spire::api::server::bundle::v1::{
    GetBundleRequest, bundle_client::BundleClient,
};
use lanyard_proto::spire::api::server::svid::v1::{
    MintJwtsvidRequest, MintX509svidRequest, svid_client::SvidClient,
};
use lanyard_proto::spire::api::types;
use lanyard_server::{RunningServer, ServerConfig};
use lanyard_spiffe::jwt::JwtPublicKey;
use lanyard_spiffe::{JwtBundle, JwtSvid, SpiffeId, TrustDomain};
use tonic::Code;
use tonic::transport::Channel;

use support::{admin, config};

async fn start(config: &ServerConfig) -> (RunningServer, Channel) {
    let server = lanyard_server::start(config.clone()).await.unwrap();
    (server, admin(config).await)
}

fn wire_id(td: &str, path: &str) -> types::Spiffeid {
    types::Spiffeid {
        trust_domain: td.into(),
        path: path.into(),
    }
}

fn csr_for(id: &str) -> Vec<u8> {
    let key = generate_key_pair(KeyType::EcP256).unwrap();
    make_csr(&key, Some(&SpiffeId::parse(id).unwrap())).unwrap()
}

async fn jwt_bundle(channel: &Channel) -> (JwtBundle, Vec<types::JwtKey>) {
    let wire = BundleClient::new(channel.clone())
        .get_bundle(GetBundleRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut bundle = JwtBundle::new(TrustDomain::new(&wire.trust_domain).unwrap());
    for key in &wire.jwt_authorities {
        bundle.insert(
            key.key_id.clone(),
            JwtPublicKey::from_spki_der(&key.public_key).unwrap(),
        );
    }
    (bundle, wire.jwt_authorities)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn minted_jwt_svid_validates_against_the_jwt_keys_of_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.jwt_issuer = Some("https://oidc.example.org".into());
    let (server, channel) = start(&config).await;

    let (bundle, keys) = jwt_bundle(&channel).await;
    assert_eq!(keys.len(), 1);
    assert!(
        keys[0].expires_at > unix_now() + 23 * 3600,
        "lifetime is ca_ttl"
    );

    let svid = SvidClient::new(channel.clone())
        .mint_jwtsvid(MintJwtsvidRequest {
            id: Some(wire_id("example.org", "/web")),
            audience: vec!["db".into(), "cache".into()],
            ttl: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .svid
        .unwrap();
    assert_eq!(
        svid.expires_at - svid.issued_at,
        300,
        "ttl 0 means default_jwt_svid_ttl"
    );
    let parsed =
        JwtSvid::parse_and_validate(&svid.token, &bundle, &["cache"], SystemTime::now()).unwrap();
    assert_eq!(parsed.spiffe_id().to_string(), "spiffe://example.org/web");
    assert_eq!(parsed.kid(), keys[0].key_id);
    assert_eq!(parsed.claims()["iss"], "https://oidc.example.org");

    server.stop().await.unwrap();
}

#[tokio::test]
async fn minted_x509_svid_carries_the_csr_id_and_the_requested_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (server, channel) = start(&config).await;

    let svid = SvidClient::new(channel.clone())
        .mint_x509svid(MintX509svidRequest {
            csr: csr_for("spiffe://example.org/ops"),
            ttl: 600,
        })
        .await
        .unwrap()
        .into_inner()
        .svid
        .unwrap();
    assert_eq!(svid.id.unwrap().path, "/ops");
    assert_eq!(svid.cert_chain.len(), 1);
    let remaining = svid.expires_at - unix_now();
    assert!((590..=600).contains(&remaining), "{remaining}");

    server.stop().await.unwrap();
}

#[tokio::test]
async fn bad_mint_requests_are_refused_with_the_rule_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (server, channel) = start(&config).await;
    let mut svid = SvidClient::new(channel.clone());

    let jwt = |td: &str, audience: Vec<String>, ttl: i32| MintJwtsvidRequest {
        id: Some(wire_id(td, "/w")),
        audience,
        ttl,
    };
    let cases: Vec<(MintJwtsvidRequest, &str)> = vec![
        (
            jwt("other.org", vec!["a".into()], 60),
            "is not in trust domain 'example.org'",
        ),
        (
            jwt("example.org", vec![], 60),
            "at least one non-empty audience",
        ),
        (
            jwt("example.org", vec![String::new()], 60),
            "at least one non-empty audience",
        ),
        (jwt("example.org", vec!["a".into()], -5), "ttl is -5"),
        // Audiences no validator would accept a token for: the caller's fault, not the CA's.
        (
            jwt("example.org", vec!["a".repeat(100_000)], 60),
            "at most 65536 are accepted by validators",
        ),
    ];
    for (request, expected) in cases {
        let err = svid.mint_jwtsvid(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(expected), "{}", err.message());
    }

    for (csr, expected) in [
        (
            b"not a csr".to_vec(),
            "csr: certificate signing request is malformed",
        ),
        (csr_for("spiffe://other.org/w"), "is not in trust domain"),
    ] {
        let err = svid
            .mint_x509svid(MintX509svidRequest { csr, ttl: 60 })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(expected), "{}", err.message());
    }
    let key = generate_key_pair(KeyType::EcP256).unwrap();
    let err = svid
        .mint_x509svid(MintX509svidRequest {
            csr: make_csr(&key, None).unwrap(),
            ttl: 60,
        })
        .await
        .unwrap_err();
    assert!(
        err.message().contains("csr has 0 URI SANs"),
        "{}",
        err.message()
    );

    // Still serving.
    svid.mint_jwtsvid(jwt("example.org", vec!["a".into()], 60))
        .await
        .unwrap();
    server.stop().await.unwrap();
}

async fn x509_authorities(channel: &Channel) -> Vec<Vec<u8>> {
    BundleClient::new(channel.clone())
        .get_bundle(GetBundleRequest::default())
        .await
        .unwrap()
        .into_inner()
        .x509_authorities
        .into_iter()
        .map(|a| a.asn1)
        .collect()
}

async fn mint_x509(channel: &Channel) -> Vec<u8> {
    SvidClient::new(channel.clone())
        .mint_x509svid(MintX509svidRequest {
            csr: csr_for("spiffe://example.org/ops"),
            ttl: 600,
        })
        .await
        .unwrap()
        .into_inner()
        .svid
        .unwrap()
        .cert_chain
        .remove(0)
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    out
}

#[tokio::test]
async fn memory_key_manager_writes_no_key_and_a_restart_makes_a_new_ca() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.key_manager = lanyard_server::KeyManagerKind::Memory;

    let (server, channel) = start(&config).await;
    let first_svid = mint_x509(&channel).await;
    let first = x509_authorities(&channel).await;
    assert_eq!(first.len(), 1);
    server.stop().await.unwrap();
    let data = dir.path().join("data");
    assert!(!data.join("keys").exists(), "no key directory");
    for file in files_under(&data) {
        assert!(
            // server_id names this server's CA journal in a datastore other servers may share;
            // it is an identifier, not key material.
            file.starts_with("datastore.sqlite3") || file == "server.lock" || file == "server_id",
            "unexpected file {file} in the data directory"
        );
    }

    let (server, channel) = start(&config).await;
    let second_svid = mint_x509(&channel).await;
    let second = x509_authorities(&channel).await;
    assert_eq!(
        second.len(),
        2,
        "the keyless CA stays published as the old one"
    );
    assert_eq!(second[0], first[0]);
    assert_ne!(second[1], first[0], "a new CA signs after the restart");
    let issuer = |leaf: &[u8], ca: &[u8]| {
        let (_, leaf) = x509_parser::parse_x509_certificate(leaf).unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(ca).unwrap();
        leaf.verify_signature(Some(ca.public_key())).is_ok()
    };
    assert!(issuer(&first_svid, &second[0]));
    assert!(issuer(&second_svid, &second[1]));
    assert!(!issuer(&second_svid, &second[0]));
    assert!(!data.join("keys").exists());
    server.stop().await.unwrap();
}
