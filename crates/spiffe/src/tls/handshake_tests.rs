//! In-memory rustls handshakes between the SPIFFE verifiers (no sockets: records are pumped
//! between a client and a server connection).

use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use rustls_pki_types::{PrivateKeyDer, ServerName};

use super::{
    Authorizer, SpiffeClientVerifier, SpiffeServerVerifier, client_config, crypto_provider,
    peer_spiffe_id, server_config,
};
use crate::id::{SpiffeId, TrustDomain};
use crate::x509::test_certs::{KeyKind, TestCa};
use crate::x509::{BundleSource, X509BundleSet, X509Svid, concat_der};

const SERVER_ID: &str = "spiffe://a.org/server";
const CLIENT_ID: &str = "spiffe://a.org/client";

#[derive(Debug, PartialEq)]
enum Side {
    Client,
    Server,
}

fn svid(ca: &TestCa, id: &str, kind: KeyKind) -> X509Svid {
    let leaf = ca.leaf(id, kind);
    X509Svid::parse_der(
        &concat_der(&[leaf.cert, ca.cert.clone()]),
        leaf.key.secret_pkcs8_der(),
    )
    .unwrap()
}

fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

/// Runs a handshake to completion; returns the first error and the side that raised it.
fn handshake(
    client: ClientConfig,
    server: ServerConfig,
) -> Result<(ClientConnection, ServerConnection), (Side, rustls::Error)> {
    // The name is deliberately unrelated to any certificate: the verifiers must ignore it.
    let name = ServerName::try_from("unrelated.invalid").unwrap();
    let mut c = ClientConnection::new(Arc::new(client), name).unwrap();
    let mut s = ServerConnection::new(Arc::new(server)).unwrap();

    for _ in 0..20 {
        let mut moved = false;
        while c.wants_write() {
            let mut buf = Vec::new();
            c.write_tls(&mut buf).unwrap();
            s.read_tls(&mut buf.as_slice()).unwrap();
            s.process_new_packets().map_err(|e| (Side::Server, e))?;
            moved = true;
        }
        while s.wants_write() {
            let mut buf = Vec::new();
            s.write_tls(&mut buf).unwrap();
            c.read_tls(&mut buf.as_slice()).unwrap();
            c.process_new_packets().map_err(|e| (Side::Client, e))?;
            moved = true;
        }
        if !moved && !c.is_handshaking() && !s.is_handshaking() {
            return Ok((c, s));
        }
    }
    panic!("handshake did not finish");
}

struct Setup {
    ca: TestCa,
    bundles: Arc<dyn BundleSource>,
    server: X509Svid,
    client: X509Svid,
}

fn setup(kind: KeyKind) -> Setup {
    let ca = TestCa::new("a.org", kind);
    let server = svid(&ca, SERVER_ID, kind);
    let client = svid(&ca, CLIENT_ID, kind);
    Setup {
        bundles: Arc::new(ca.bundle()),
        ca,
        server,
        client,
    }
}

fn member_of_a() -> Authorizer {
    Authorizer::MemberOf(TrustDomain::new("a.org").unwrap())
}

#[test]
fn accepts_good_svids_both_ways_for_every_key_type() {
    for kind in KeyKind::ALL {
        let t = setup(kind);
        let client = client_config(
            &t.client,
            t.bundles.clone(),
            Authorizer::Exact(id(SERVER_ID)),
        )
        .unwrap();
        let server = server_config(&t.server, t.bundles.clone(), member_of_a(), true).unwrap();
        let (c, s) = handshake(client, server).unwrap_or_else(|e| panic!("{kind:?}: {e:?}"));
        assert_eq!(
            peer_spiffe_id(c.peer_certificates().unwrap()),
            Some(id(SERVER_ID))
        );
        assert_eq!(
            peer_spiffe_id(s.peer_certificates().unwrap()),
            Some(id(CLIENT_ID))
        );
    }
}

#[test]
fn accepts_good_svids_over_tls12() {
    let t = setup(KeyKind::P256);
    let verifier = SpiffeServerVerifier::new(t.bundles.clone(), Authorizer::Exact(id(SERVER_ID)));
    let client = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(
            t.client.chain().to_vec(),
            PrivateKeyDer::Pkcs8(t.client.key().clone_key()),
        )
        .unwrap();
    let server = server_config(&t.server, t.bundles.clone(), member_of_a(), true).unwrap();
    let (c, _) = handshake(client, server).unwrap();
    assert_eq!(c.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
}

#[test]
fn client_rejects_server_with_wrong_id() {
    let t = setup(KeyKind::P256);
    let expected = Authorizer::Exact(id("spiffe://a.org/someone-else"));
    let client = client_config(&t.client, t.bundles.clone(), expected).unwrap();
    let server = server_config(&t.server, t.bundles.clone(), member_of_a(), true).unwrap();
    let (side, err) = handshake(client, server).unwrap_err();
    assert_eq!(side, Side::Client);
    assert!(err.to_string().contains("is not authorized"), "{err}");
}

#[test]
fn server_rejects_client_with_wrong_id() {
    let t = setup(KeyKind::P384);
    let client = client_config(&t.client, t.bundles.clone(), Authorizer::Any).unwrap();
    let only = Authorizer::OneOf(vec![id("spiffe://a.org/agent")]);
    let server = server_config(&t.server, t.bundles.clone(), only, true).unwrap();
    let (side, err) = handshake(client, server).unwrap_err();
    assert_eq!(side, Side::Server);
    assert!(err.to_string().contains("spiffe://a.org/client"), "{err}");
}

#[test]
fn client_rejects_server_from_an_untrusted_ca() {
    let t = setup(KeyKind::P256);
    let rogue = TestCa::new("a.org", KeyKind::P256);
    let rogue_server = svid(&rogue, SERVER_ID, KeyKind::P256);
    let client = client_config(&t.client, t.bundles.clone(), Authorizer::Any).unwrap();
    let server = server_config(&rogue_server, t.bundles.clone(), Authorizer::Any, true).unwrap();
    let (side, err) = handshake(client, server).unwrap_err();
    assert_eq!(side, Side::Client);
    assert_eq!(
        err,
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
    );
}

#[test]
fn client_rejects_server_of_a_trust_domain_signed_by_another_trust_domains_ca() {
    let t = setup(KeyKind::P256);
    let b = TestCa::new("b.org", KeyKind::P256);
    let both: Arc<dyn BundleSource> = Arc::new(
        [t.ca.bundle(), b.bundle()]
            .into_iter()
            .collect::<X509BundleSet>(),
    );
    let forged = svid(&b, SERVER_ID, KeyKind::P256);
    let client = client_config(&t.client, both.clone(), Authorizer::Any).unwrap();
    let server = server_config(&forged, both, Authorizer::Any, true).unwrap();
    let (side, _) = handshake(client, server).unwrap_err();
    assert_eq!(side, Side::Client);
}

#[test]
fn optional_client_auth_admits_anonymous_clients() {
    let t = setup(KeyKind::Ed25519);
    let verifier = SpiffeServerVerifier::new(t.bundles.clone(), Authorizer::Exact(id(SERVER_ID)));
    let anonymous = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();

    let optional = server_config(&t.server, t.bundles.clone(), member_of_a(), false).unwrap();
    let (_, s) = handshake(anonymous.clone(), optional).unwrap();
    assert!(s.peer_certificates().is_none());

    let mandatory = server_config(&t.server, t.bundles.clone(), member_of_a(), true).unwrap();
    let (side, err) = handshake(anonymous, mandatory).unwrap_err();
    assert_eq!(side, Side::Server);
    assert_eq!(err, rustls::Error::NoCertificatesPresented);
}

#[test]
fn optional_client_auth_still_rejects_a_bad_presented_certificate() {
    let t = setup(KeyKind::P256);
    let rogue = TestCa::new("a.org", KeyKind::P256);
    let rogue_client = svid(&rogue, CLIENT_ID, KeyKind::P256);
    let client = client_config(&rogue_client, t.bundles.clone(), Authorizer::Any).unwrap();
    let server = server_config(&t.server, t.bundles.clone(), Authorizer::Any, false).unwrap();
    let (side, _) = handshake(client, server).unwrap_err();
    assert_eq!(side, Side::Server);
}

#[test]
fn verifier_flags_follow_mandatory() {
    use rustls::server::danger::ClientCertVerifier;
    let t = setup(KeyKind::P256);
    let optional = SpiffeClientVerifier::new(t.bundles.clone(), Authorizer::Any, false);
    assert!(optional.offer_client_auth());
    assert!(!optional.client_auth_mandatory());
    let mandatory = SpiffeClientVerifier::new(t.bundles, Authorizer::Any, true);
    assert!(mandatory.client_auth_mandatory());
    assert!(mandatory.root_hint_subjects().is_empty());
}

#[test]
fn rejection_reasons_read_well_and_can_be_downcast() {
    let t = setup(KeyKind::P256);
    let expected = Authorizer::Exact(id("spiffe://a.org/someone-else"));
    let client = client_config(&t.client, t.bundles.clone(), expected).unwrap();
    let server = server_config(&t.server, t.bundles.clone(), member_of_a(), true).unwrap();
    let (_, err) = handshake(client, server).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid peer certificate: Other(OtherError(peer SPIFFE ID 'spiffe://a.org/server' \
         is not authorized: expected exactly 'spiffe://a.org/someone-else'))"
    );
    let rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) = err else {
        panic!("unexpected error kind");
    };
    let reason = other.0.downcast_ref::<super::PeerRejected>().unwrap();
    assert!(matches!(reason, super::PeerRejected::Unauthorized(e) if e.id == id(SERVER_ID)));
}
