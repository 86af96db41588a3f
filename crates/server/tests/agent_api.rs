//! The agent API's authorization, from a client's side: only AttestAgent is open without a
//! certificate, and every other RPC insists on the current SVID of a known agent.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test helpers assert by panicking"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use lanyard_ca::{KeyType, SvidParams, X509Authority, generate_key_pair, make_csr};
use lanyard_proto::spire::api::server::agent::v1::{
    AgentX509svidParams, AttestAgentRequest, CreateJoinTokenRequest, RenewAgentRequest,
    agent_client::AgentClient, attest_agent_request, attest_agent_response,
};
use lanyard_proto::spire::api::server::bundle::v1::{
    GetBundleRequest, bundle_client::BundleClient,
};
use lanyard_proto::spire::api::server::entry::v1::{
    GetAuthorizedEntriesRequest, entry_client::EntryClient,
};
use lanyard_proto::spire::api::types;
use lanyard_server::{RunningServer, ServerConfig};
use lanyard_spiffe::tls::{Authorizer, SpiffeServerVerifier, crypto_provider};
use lanyard_spiffe::{BundleSource, SpiffeId, TrustDomain, X509Bundle, X509Svid};
use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, ServerName};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

struct Fixture {
    _dir: tempfile::TempDir,
    server: RunningServer,
    admin: Channel,
    bundle: Arc<X509Bundle>,
    server_id: SpiffeId,
}

async fn start() -> Fixture {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let td = TrustDomain::new("example.org").unwrap();
    let mut config = ServerConfig::with_defaults(td.clone(), dir.path().join("data"));
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.socket_path = dir.path().join("admin.sock");
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let admin = lanyard_workload::client::unix_channel(&config.socket_path)
        .await
        .unwrap();
    let wire = BundleClient::new(admin.clone())
        .get_bundle(GetBundleRequest::default())
        .await
        .unwrap()
        .into_inner();
    let bundle = Arc::new(X509Bundle::new(
        td.clone(),
        wire.x509_authorities
            .into_iter()
            .map(|a| CertificateDer::from(a.asn1))
            .collect(),
    ));
    let server_id = SpiffeId::from_segments(&td, &["spire", "server"]).unwrap();
    Fixture {
        _dir: dir,
        server,
        admin,
        bundle,
        server_id,
    }
}

impl Fixture {
    fn addr(&self) -> SocketAddr {
        self.server.agent_addr()
    }

    /// A TLS channel to the agent API presenting `svid`, or no certificate.
    async fn channel(&self, svid: Option<&X509Svid>) -> Result<Channel, tonic::transport::Error> {
        let bundle: Arc<dyn BundleSource> = self.bundle.clone();
        let authorize = Authorizer::Exact(self.server_id.clone());
        let mut config = match svid {
            Some(svid) => lanyard_spiffe::tls::client_config(svid, bundle, authorize).unwrap(),
            None => ClientConfig::builder_with_provider(crypto_provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SpiffeServerVerifier::new(
                    bundle, authorize,
                )))
                .with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let addr = self.addr();
        Endpoint::from_static("http://server")
            .connect_with_connector(tower::service_fn(move |_| {
                let connector = connector.clone();
                async move {
                    let tcp = tokio::net::TcpStream::connect(addr).await?;
                    let name = ServerName::try_from("server").map_err(std::io::Error::other)?;
                    Ok::<_, std::io::Error>(TokioIo::new(connector.connect(name, tcp).await?))
                }
            }))
            .await
    }

    /// Attests with a fresh join token and returns the agent's SVID.
    async fn attest(&self) -> X509Svid {
        let token = AgentClient::new(self.admin.clone())
            .create_join_token(CreateJoinTokenRequest::default())
            .await
            .unwrap()
            .into_inner()
            .value;
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let request = AttestAgentRequest {
            step: Some(attest_agent_request::Step::Params(
                attest_agent_request::Params {
                    data: Some(types::AttestationData {
                        r#type: "join_token".into(),
                        payload: token.into_bytes(),
                    }),
                    params: Some(AgentX509svidParams {
                        csr: make_csr(&key, None).unwrap(),
                    }),
                },
            )),
        };
        let channel = self.channel(None).await.unwrap();
        let mut responses = AgentClient::new(channel)
            .attest_agent(futures::stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let Some(attest_agent_response::Step::Result(result)) =
            responses.message().await.unwrap().unwrap().step
        else {
            panic!("no attestation result");
        };
        let svid = result.svid.unwrap();
        X509Svid::parse_der(&svid.cert_chain.concat(), &key.serialize_der()).unwrap()
    }

    async fn authorized_entries(&self, svid: Option<&X509Svid>) -> Result<usize, tonic::Status> {
        let channel = self
            .channel(svid)
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        EntryClient::new(channel)
            .get_authorized_entries(GetAuthorizedEntriesRequest::default())
            .await
            .map(|r| r.into_inner().entries.len())
    }
}

#[tokio::test]
async fn agent_rpcs_need_a_certificate() {
    let f = start().await;
    let err = f.authorized_entries(None).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("attest first"), "{}", err.message());
}

#[tokio::test]
async fn the_bundle_is_served_to_a_caller_without_a_certificate() {
    // A SPIRE agent asks for it on the connection it attests on, before it has an SVID.
    let f = start().await;
    let channel = f.channel(None).await.unwrap();
    let bundle = BundleClient::new(channel)
        .get_bundle(GetBundleRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bundle.trust_domain, "example.org");
    assert!(!bundle.x509_authorities.is_empty());
}

#[tokio::test]
async fn attested_agent_is_served_and_its_old_svid_stops_working_after_renewal() {
    let f = start().await;
    let first = f.attest().await;
    assert_eq!(f.authorized_entries(Some(&first)).await.unwrap(), 0);

    // Renew with the first SVID; both work until the new one is used.
    let key = generate_key_pair(KeyType::EcP256).unwrap();
    let renewed = AgentClient::new(f.channel(Some(&first)).await.unwrap())
        .renew_agent(RenewAgentRequest {
            params: Some(AgentX509svidParams {
                csr: make_csr(&key, None).unwrap(),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .svid
        .unwrap();
    let second = X509Svid::parse_der(&renewed.cert_chain.concat(), &key.serialize_der()).unwrap();
    assert_eq!(second.spiffe_id(), first.spiffe_id());
    f.authorized_entries(Some(&first)).await.unwrap();
    f.authorized_entries(Some(&second)).await.unwrap();

    let stale = f.authorized_entries(Some(&first)).await.unwrap_err();
    assert_eq!(stale.code(), Code::PermissionDenied);
    assert!(
        stale.message().contains("is not the current SVID"),
        "{}",
        stale.message()
    );
}

#[tokio::test]
async fn certificate_of_an_unknown_agent_is_refused() {
    let f = start().await;
    // A certificate from the server's own CA, for an agent that never attested: read the CA
    // key from the data directory, as only someone who stole it could.
    let td = TrustDomain::new("example.org").unwrap();
    let keys = lanyard_ca::DiskKeyManager::open(&f._dir.path().join("data/keys")).unwrap();
    let ca_key = lanyard_ca::KeyManager::get_key(&keys, "x509-CA-A")
        .unwrap()
        .unwrap();
    let ca = X509Authority::from_parts(f.bundle.authorities()[0].clone(), ca_key).unwrap();
    let key = generate_key_pair(KeyType::EcP256).unwrap();
    let id =
        SpiffeId::from_segments(&td, &["spire", "agent", "join_token", "never-issued"]).unwrap();
    let leaf = ca
        .sign_x509_svid(
            &SvidParams {
                spiffe_id: id,
                public_key_der: rcgen::PublicKeyData::subject_public_key_info(&key),
                ttl: Duration::from_secs(600),
                dns_names: vec![],
            },
            std::time::SystemTime::now(),
        )
        .unwrap();
    let forged = X509Svid::parse_der(&leaf, &key.serialize_der()).unwrap();
    let err = f.authorized_entries(Some(&forged)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("is not attested"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn certificate_from_another_ca_fails_the_handshake() {
    let f = start().await;
    let td = TrustDomain::new("example.org").unwrap();
    let other_ca = X509Authority::self_signed(
        &td,
        Arc::new(generate_key_pair(KeyType::EcP256).unwrap()),
        Duration::from_secs(3600),
        std::time::SystemTime::now(),
    )
    .unwrap();
    let key = generate_key_pair(KeyType::EcP256).unwrap();
    let leaf = other_ca
        .sign_x509_svid(
            &SvidParams {
                spiffe_id: SpiffeId::from_segments(&td, &["spire", "agent", "x"]).unwrap(),
                public_key_der: rcgen::PublicKeyData::subject_public_key_info(&key),
                ttl: Duration::from_secs(600),
                dns_names: vec![],
            },
            std::time::SystemTime::now(),
        )
        .unwrap();
    let foreign = X509Svid::parse_der(&leaf, &key.serialize_der()).unwrap();
    let err = f.authorized_entries(Some(&foreign)).await.unwrap_err();
    assert_ne!(err.code(), Code::Ok);
    // The server keeps serving real agents.
    let svid = f.attest().await;
    f.authorized_entries(Some(&svid)).await.unwrap();
}

#[tokio::test]
async fn new_jwt_svid_signs_only_authorized_entries_with_their_ttl() {
    use lanyard_proto::spire::api::server::entry::v1::{
        BatchCreateEntryRequest, entry_client::EntryClient,
    };
    use lanyard_proto::spire::api::server::svid::v1::{NewJwtsvidRequest, svid_client::SvidClient};
    use lanyard_spiffe::jwt::{JwtBundle, JwtPublicKey};

    let f = start().await;
    let svid = f.attest().await;
    let wire_id = |id: &SpiffeId| types::Spiffeid {
        trust_domain: id.trust_domain_name().into(),
        path: id.path().into(),
    };
    let workload = SpiffeId::parse("spiffe://example.org/web").unwrap();
    let created = EntryClient::new(f.admin.clone())
        .batch_create_entry(BatchCreateEntryRequest {
            entries: vec![types::Entry {
                spiffe_id: Some(wire_id(&workload)),
                parent_id: Some(wire_id(svid.spiffe_id())),
                selectors: vec![types::Selector {
                    r#type: "unix".into(),
                    value: "uid:1000".into(),
                }],
                jwt_svid_ttl: 120,
                ..Default::default()
            }],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    let entry_id = created.results[0].entry.as_ref().unwrap().id.clone();
    let mut client = SvidClient::new(f.channel(Some(&svid)).await.unwrap());
    let ask = |entry_id: &str, audience: &[&str]| NewJwtsvidRequest {
        entry_id: entry_id.into(),
        audience: audience.iter().map(|a| a.to_string()).collect(),
    };

    let err = client.new_jwtsvid(ask(&entry_id, &[])).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = client
        .new_jwtsvid(ask("no-such-entry", &["db"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let mut anonymous = SvidClient::new(f.channel(None).await.unwrap());
    assert!(
        anonymous
            .new_jwtsvid(ask(&entry_id, &["db"]))
            .await
            .is_err()
    );

    let signed = client
        .new_jwtsvid(ask(&entry_id, &["db"]))
        .await
        .unwrap()
        .into_inner()
        .svid
        .unwrap();
    assert_eq!(signed.expires_at - signed.issued_at, 120);
    let wire = BundleClient::new(f.admin.clone())
        .get_bundle(GetBundleRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut keys = JwtBundle::new(TrustDomain::new("example.org").unwrap());
    for k in wire.jwt_authorities {
        keys.insert(
            k.key_id,
            JwtPublicKey::from_spki_der(&k.public_key).unwrap(),
        );
    }
    let token = lanyard_spiffe::JwtSvid::parse_and_validate(
        &signed.token,
        &keys,
        &["db"],
        std::time::SystemTime::now(),
    )
    .unwrap();
    assert_eq!(token.spiffe_id(), &workload);
}
