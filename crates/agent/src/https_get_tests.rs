//! `trust_bundle_url` against an HTTPS server started here on 127.0.0.1, its certificate from a
//! web CA that the client is told to trust.

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::bootstrap::fetch_url_bundle;
use crate::config::{AgentConfig, BundleFormat, ConfigError, TrustBootstrap};
use crate::test_support::TestCa;

/// A web CA and a server certificate for 127.0.0.1 signed by it.
struct WebPki {
    ca: CertificateDer<'static>,
    leaf: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl WebPki {
    fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
        let leaf = params
            .signed_by(&key, &Issuer::from_params(&ca_params, &ca_key))
            .unwrap();
        Self {
            ca: ca.der().clone(),
            leaf: leaf.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        roots
    }

    /// Serves one answer, `status` with `body`, to every connection; returns the address.
    async fn serve(&self, status: &'static str, body: Vec<u8>) -> SocketAddr {
        let mut config =
            rustls::ServerConfig::builder_with_provider(lanyard_spiffe::tls::crypto_provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![self.leaf.clone()], self.key.clone_key())
                .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let body = Arc::new(body);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let body = Arc::clone(&body);
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.ends_with(b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = tls.write_all(head.as_bytes()).await;
                    let _ = tls.write_all(&body).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        addr
    }
}

fn config(ca: &TestCa) -> AgentConfig {
    AgentConfig::new(
        ca.td.clone(),
        "/tmp/agent".into(),
        "127.0.0.1:8081".into(),
        TrustBootstrap::Insecure,
    )
}

#[tokio::test]
async fn fetches_a_pem_bundle_over_https() {
    let web = WebPki::new();
    let ca = TestCa::new();
    let addr = web.serve("200 OK", ca.bundle().to_pem().into_bytes()).await;
    let url = format!("https://{addr}/bundle.pem");
    let bundle = fetch_url_bundle(&config(&ca), &url, BundleFormat::Pem, web.roots())
        .await
        .unwrap();
    assert_eq!(bundle, ca.bundle());
}

#[tokio::test]
async fn fetches_a_spiffe_bundle_over_https() {
    let web = WebPki::new();
    let ca = TestCa::new();
    let doc = lanyard_spiffe::SpiffeBundle::from_parts(
        ca.bundle(),
        lanyard_spiffe::JwtBundle::new(ca.td.clone()),
    )
    .unwrap()
    .to_json()
    .unwrap();
    let addr = web.serve("200 OK", doc.into_bytes()).await;
    let url = format!("https://{addr}/bundle");
    let bundle = fetch_url_bundle(&config(&ca), &url, BundleFormat::Spiffe, web.roots())
        .await
        .unwrap();
    assert_eq!(bundle.authorities(), ca.bundle().authorities());
}

#[tokio::test]
async fn a_body_that_is_not_a_bundle_is_refused_naming_the_url() {
    let web = WebPki::new();
    let ca = TestCa::new();
    let addr = web.serve("200 OK", b"<html>login</html>".to_vec()).await;
    let url = format!("https://{addr}/bundle");
    for (format, says) in [
        (BundleFormat::Pem, "is not a usable PEM bundle"),
        (BundleFormat::Spiffe, "is not a usable SPIFFE bundle"),
    ] {
        let err = fetch_url_bundle(&config(&ca), &url, format, web.roots())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), format!("the trust bundle {url} {says}"));
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let web = WebPki::new();
    let ca = TestCa::new();
    let addr = web.serve("200 OK", vec![b'a'; MAX_BODY_BYTES + 1]).await;
    let url = format!("https://{addr}/big");
    let err = fetch_url_bundle(&config(&ca), &url, BundleFormat::Pem, web.roots())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::TrustBundleUrl(TrustUrlError::TooLarge { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn a_status_other_than_ok_is_refused_with_the_status() {
    let web = WebPki::new();
    let addr = web.serve("404 Not Found", b"no".to_vec()).await;
    let url = format!("https://{addr}/missing");
    let err = get(&url, web.roots()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("trust_bundle_url {url}: the server answered HTTP 404; expected 200")
    );
}

#[tokio::test]
async fn a_web_server_the_roots_do_not_vouch_for_is_refused() {
    let web = WebPki::new();
    let other = WebPki::new();
    let addr = web.serve("200 OK", b"x".to_vec()).await;
    let url = format!("https://{addr}/bundle");
    let err = get(&url, other.roots()).await.unwrap_err();
    assert!(matches!(err, TrustUrlError::Connect { .. }), "{err}");
    let chain = crate::report::ErrorChain(&err).to_string();
    assert!(chain.contains("invalid peer certificate"), "{chain}");
}

#[test]
fn only_https_urls_are_accepted() {
    for (url, rule) in [
        ("http://127.0.0.1/bundle", "plain http is refused"),
        ("ftp://example.org/bundle", "only https:// URLs are fetched"),
        ("https://user:pw@example.org/b", "credentials in the URL"),
        ("not a url", "not a URL"),
    ] {
        let err = check_url(url).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("trust_bundle_url {url:?}: ")),
            "{err}"
        );
        assert!(err.contains(rule), "{url}: {err}");
    }
    check_url("https://example.org:8443/bundle?x=1").unwrap();
}

#[test]
fn roots_come_from_a_pem_file_that_holds_certificates() {
    let web = WebPki::new();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("roots.pem");
    std::fs::write(
        &path,
        lanyard_spiffe::x509::certs_to_pem(std::slice::from_ref(&web.ca)),
    )
    .unwrap();
    assert_eq!(roots_from(&path).unwrap().len(), 1);
    std::fs::write(&path, "nothing").unwrap();
    assert!(roots_from(&path).is_err());
}

/// `count` self-signed CA certificates with distinct names, as one PEM text.
fn many_cas(count: usize) -> String {
    let key = KeyPair::generate().unwrap();
    let certs: Vec<CertificateDer<'static>> = (0..count)
        .map(|i| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, format!("Web CA {i}"));
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.self_signed(&key).unwrap().der().clone()
        })
        .collect();
    lanyard_spiffe::x509::certs_to_pem(&certs)
}

#[test]
fn a_system_ca_file_may_hold_hundreds_of_certificates() {
    // Distribution bundles hold well over the 32-certificate SVID chain limit.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ca-certificates.crt");
    std::fs::write(&path, many_cas(200)).unwrap();
    assert_eq!(roots_from(&path).unwrap().len(), 200);
}

#[test]
fn a_system_ca_file_over_the_certificate_bound_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("huge.crt");
    std::fs::write(&path, many_cas(MAX_SYSTEM_CA_CERTS + 1)).unwrap();
    let err = roots_from(&path).unwrap_err();
    assert!(
        err.contains("more than 1000 certificates"),
        "unexpected error: {err}"
    );
}

#[test]
fn the_installed_system_ca_file_loads_when_present() {
    let path = Path::new(SYSTEM_BUNDLES[0]);
    if !path.exists() {
        return;
    }
    let roots = roots_from(path).unwrap();
    assert!(
        roots.len() > 32,
        "only {} roots from {}",
        roots.len(),
        path.display()
    );
}
