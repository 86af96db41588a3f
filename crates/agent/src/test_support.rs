//! A throwaway CA for the unit tests.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lanyard_ca::{KeyType, SvidParams, X509Authority, generate_key_pair};
use lanyard_spiffe::tls::crypto_provider;
use lanyard_spiffe::{SpiffeId, TrustDomain, X509Bundle};
use rcgen::{KeyPair, PublicKeyData};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

/// A self-signed authority of `example.org`, valid for a day.
pub(crate) struct TestCa {
    pub(crate) td: TrustDomain,
    pub(crate) authority: X509Authority,
}

impl TestCa {
    pub(crate) fn new() -> Self {
        let td = TrustDomain::new("example.org").unwrap();
        let key = Arc::new(generate_key_pair(KeyType::EcP256).unwrap());
        let authority =
            X509Authority::self_signed(&td, key, Duration::from_secs(86_400), SystemTime::now())
                .unwrap();
        Self { td, authority }
    }

    /// The bundle holding this authority.
    pub(crate) fn bundle(&self) -> X509Bundle {
        X509Bundle::new(self.td.clone(), vec![self.authority.cert().clone()])
    }

    /// An X509-SVID chain for `path` with `key`'s public key, issued now.
    pub(crate) fn sign(
        &self,
        key: &KeyPair,
        path: &str,
        ttl: Duration,
    ) -> Vec<CertificateDer<'static>> {
        self.sign_at(key, path, ttl, SystemTime::now())
    }

    /// As [`TestCa::sign`], issued at `now`.
    pub(crate) fn sign_at(
        &self,
        key: &KeyPair,
        path: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Vec<CertificateDer<'static>> {
        let params = SvidParams {
            spiffe_id: SpiffeId::from_path(&self.td, path).unwrap(),
            public_key_der: key.subject_public_key_info(),
            ttl,
            dns_names: Vec::new(),
        };
        vec![self.authority.sign_x509_svid(&params, now).unwrap()]
    }

    /// A TLS server on loopback presenting this authority's X509-SVID for `path`, which only
    /// handshakes (ALPN h2) and then drops the connection: enough to test how the agent checks
    /// the server's certificate.
    pub(crate) async fn tls_server(&self, path: &str) -> std::net::SocketAddr {
        let acceptor = self.acceptor(path);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move { acceptor.accept(tcp).await.map(drop) });
            }
        });
        addr
    }

    /// A gRPC server on loopback serving `routes` over TLS with this authority's X509-SVID for
    /// `path` (no client certificate asked for).
    pub(crate) async fn grpc_server(
        &self,
        path: &str,
        routes: tonic::service::Routes,
    ) -> std::net::SocketAddr {
        let acceptor = self.acceptor(path);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = futures::stream::unfold(listener, move |listener| {
            let acceptor = acceptor.clone();
            async move {
                let (tcp, _) = listener.accept().await.ok()?;
                Some((acceptor.accept(tcp).await, listener))
            }
        });
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming(incoming),
        );
        addr
    }

    fn acceptor(&self, path: &str) -> tokio_rustls::TlsAcceptor {
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let chain = self.sign(&key, path, Duration::from_secs(3600));
        let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, PrivatePkcs8KeyDer::from(key.serialize_der()).into())
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}
