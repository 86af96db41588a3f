//! Clients of the agent API (TLS): anonymous, as an attested agent, or with a minted SVID.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use lanyard_ca::{KeyType, generate_key_pair, make_csr};
use lanyard_proto::spire::api::server::agent::v1::{
    AgentX509svidParams, AttestAgentRequest, CreateJoinTokenRequest, agent_client::AgentClient,
    attest_agent_request, attest_agent_response,
};
use lanyard_proto::spire::api::server::bundle::v1::{
    GetBundleRequest, bundle_client::BundleClient,
};
use lanyard_proto::spire::api::server::svid::v1::{MintX509svidRequest, svid_client::SvidClient};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::tls::{Authorizer, SpiffeServerVerifier, crypto_provider};
use lanyard_spiffe::{BundleSource, SpiffeId, TrustDomain, X509Bundle, X509Svid};
use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, ServerName};
use tonic::transport::{Channel, Endpoint};

/// What a TLS client of one server needs: its address and trust bundle.
pub struct AgentApi {
    pub addr: SocketAddr,
    pub bundle: Arc<X509Bundle>,
    pub admin: Channel,
}

impl AgentApi {
    /// Reads the trust bundle over the admin socket.
    pub async fn new(addr: SocketAddr, admin: Channel) -> Self {
        let td = TrustDomain::new("example.org").unwrap();
        let wire = BundleClient::new(admin.clone())
            .get_bundle(GetBundleRequest::default())
            .await
            .unwrap()
            .into_inner();
        let bundle = Arc::new(X509Bundle::new(
            td,
            wire.x509_authorities
                .into_iter()
                .map(|a| CertificateDer::from(a.asn1))
                .collect(),
        ));
        Self {
            addr,
            bundle,
            admin,
        }
    }

    /// A TLS channel presenting `svid`, or no certificate.
    pub async fn channel(&self, svid: Option<&X509Svid>) -> Channel {
        let bundle: Arc<dyn BundleSource> = self.bundle.clone();
        let server_id = SpiffeId::parse("spiffe://example.org/spire/server").unwrap();
        let authorize = Authorizer::Exact(server_id);
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
        let addr = self.addr;
        Endpoint::from_static("http://server")
            .connect_with_connector(tower::service_fn(move |_| {
                let connector = connector.clone();
                async move {
                    let tcp = tokio::net::TcpStream::connect(addr).await?;
                    // Without it, small requests wait for delayed ACKs (~40 ms each).
                    tcp.set_nodelay(true)?;
                    let name = ServerName::try_from("server").map_err(std::io::Error::other)?;
                    Ok::<_, std::io::Error>(TokioIo::new(connector.connect(name, tcp).await?))
                }
            }))
            .await
            .unwrap()
    }

    /// Attests with a fresh join token (optionally with an alias ID) and returns the SVID.
    pub async fn attest(&self, alias: Option<&str>) -> X509Svid {
        let token = AgentClient::new(self.admin.clone())
            .create_join_token(CreateJoinTokenRequest {
                agent_id: alias.map(|path| types::Spiffeid {
                    trust_domain: "example.org".into(),
                    path: path.into(),
                }),
                ..Default::default()
            })
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
        let mut responses = AgentClient::new(self.channel(None).await)
            .attest_agent(futures::stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let step = responses.message().await.unwrap().unwrap().step;
        let Some(attest_agent_response::Step::Result(result)) = step else {
            unreachable!("the server answers join token attestation with a result");
        };
        let svid = result.svid.unwrap();
        X509Svid::parse_der(&svid.cert_chain.concat(), &key.serialize_der()).unwrap()
    }

    /// An X509-SVID for `id` minted over the admin socket (a workload's identity).
    pub async fn mint(&self, id: &str) -> X509Svid {
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let spiffe_id = SpiffeId::parse(id).unwrap();
        let minted = SvidClient::new(self.admin.clone())
            .mint_x509svid(MintX509svidRequest {
                csr: make_csr(&key, Some(&spiffe_id)).unwrap(),
                ttl: 600,
            })
            .await
            .unwrap()
            .into_inner()
            .svid
            .unwrap();
        X509Svid::parse_der(&minted.cert_chain.concat(), &key.serialize_der()).unwrap()
    }
}

/// A wire SPIFFE ID in example.org.
pub fn id(path: &str) -> types::Spiffeid {
    types::Spiffeid {
        trust_domain: "example.org".into(),
        path: path.into(),
    }
}

/// A wire form of a parsed ID.
pub fn wire(id: &SpiffeId) -> types::Spiffeid {
    types::Spiffeid {
        trust_domain: id.trust_domain_name().into(),
        path: id.path().into(),
    }
}
