//! A single HTTPS GET for `trust_bundle_url`: HTTP/1.1 over TLS, the server verified against
//! the system's CA certificates (or roots given by the caller), the body bounded in size and
//! the whole exchange in time. Plain `http://` is refused: the bundle fetched here is what the
//! agent trusts the server with, so it must itself come over an authenticated channel.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

/// How long connecting, the handshake, the request and reading the body may take together.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest bundle body read; a trust bundle is a few certificates.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The most certificates read from a system CA file. Distribution bundles hold one to two hundred
/// web CAs, far more than the SVID chain limit that `parse_pem_certs` applies; this bound only
/// stops a runaway file.
pub(crate) const MAX_SYSTEM_CA_CERTS: usize = 1000;
/// The largest system CA file read (Debian's bundle is about 220 KiB).
pub(crate) const MAX_SYSTEM_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Where the system's CA certificates are looked for when `SSL_CERT_FILE` is not set, in the
/// order Go's `crypto/x509` (and so SPIRE) looks on Linux.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Why fetching `trust_bundle_url` failed; every message names the URL.
#[derive(Debug, thiserror::Error)]
pub enum TrustUrlError {
    /// The URL cannot be used.
    #[error("trust_bundle_url {url:?}: {rule}")]
    BadUrl {
        /// The configured URL.
        url: String,
        /// What is wrong with it.
        rule: &'static str,
    },
    /// No CA certificates to verify the URL's server with.
    #[error("cannot verify trust_bundle_url {url}: {reason}")]
    Roots {
        /// The configured URL.
        url: String,
        /// Which files were tried and why they did not help.
        reason: String,
    },
    /// TCP or TLS failed.
    #[error("trust_bundle_url {url}: cannot connect")]
    Connect {
        /// The configured URL.
        url: String,
        /// The cause (a TLS verification failure reads "invalid peer certificate").
        source: io::Error,
    },
    /// The HTTP exchange failed.
    #[error("trust_bundle_url {url}: the HTTP exchange failed")]
    Http {
        /// The configured URL.
        url: String,
        /// The cause.
        source: hyper::Error,
    },
    /// The server did not answer 200.
    #[error("trust_bundle_url {url}: the server answered HTTP {status}; expected 200")]
    Status {
        /// The configured URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body is too large to be a bundle.
    #[error("trust_bundle_url {url}: the answer is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge {
        /// The configured URL.
        url: String,
    },
    /// The exchange took too long.
    #[error("trust_bundle_url {url}: no complete answer within {}s", FETCH_TIMEOUT.as_secs())]
    Timeout {
        /// The configured URL.
        url: String,
    },
}

/// GETs `url` over HTTPS, verifying the server against `roots`, and returns the body.
///
/// # Errors
///
/// [`TrustUrlError`] naming the URL: not `https://`, connection or TLS failure, a status other
/// than 200, a body over [`MAX_BODY_BYTES`], or no answer within [`FETCH_TIMEOUT`].
pub(crate) async fn get(url: &str, roots: RootCertStore) -> Result<Vec<u8>, TrustUrlError> {
    let target = Target::parse(url)?;
    match tokio::time::timeout(FETCH_TIMEOUT, exchange(url, &target, roots)).await {
        Ok(result) => result,
        Err(_) => Err(TrustUrlError::Timeout { url: url.into() }),
    }
}

/// Checks that `url` is one [`get`] would fetch, without I/O.
///
/// # Errors
///
/// [`TrustUrlError::BadUrl`] naming the URL and the rule.
pub(crate) fn check_url(url: &str) -> Result<(), TrustUrlError> {
    Target::parse(url).map(|_| ())
}

/// The system's CA certificates: the PEM file named by `SSL_CERT_FILE` if set (replacing the
/// system's, as OpenSSL and Go do), otherwise the first of the usual Linux bundle files.
///
/// # Errors
///
/// [`TrustUrlError::Roots`] when no file holds a usable certificate.
pub(crate) fn system_roots(url: &str) -> Result<RootCertStore, TrustUrlError> {
    let candidates: Vec<PathBuf> = match std::env::var_os("SSL_CERT_FILE") {
        Some(path) => vec![PathBuf::from(path)],
        None => SYSTEM_BUNDLES.iter().map(PathBuf::from).collect(),
    };
    let mut tried = Vec::new();
    for path in &candidates {
        match roots_from(path) {
            Ok(roots) => return Ok(roots),
            Err(why) => tried.push(format!("{}: {why}", path.display())),
        }
    }
    Err(TrustUrlError::Roots {
        url: url.into(),
        reason: format!(
            "no usable CA certificates ({}); set SSL_CERT_FILE to a PEM file of the CAs to trust",
            tried.join("; ")
        ),
    })
}

/// The certificates of a PEM file as roots: at most [`MAX_SYSTEM_CA_CERTS`] in a file of at most
/// [`MAX_SYSTEM_CA_FILE_BYTES`]. Certificates webpki cannot use are skipped, as OpenSSL and Go
/// skip them, but broken PEM is refused, and so is a file with no usable certificate.
pub(crate) fn roots_from(path: &Path) -> Result<RootCertStore, String> {
    let pem = lanyard_ca::operator_file::read_operator_file(path, MAX_SYSTEM_CA_FILE_BYTES)
        .map_err(|e| e.to_string())?;
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&pem) {
        let cert =
            item.map_err(|e| format!("malformed PEM after {} certificates: {e}", certs.len()))?;
        if certs.len() == MAX_SYSTEM_CA_CERTS {
            return Err(format!(
                "it holds more than {MAX_SYSTEM_CA_CERTS} certificates: at most \
                 {MAX_SYSTEM_CA_CERTS} are read from a CA file"
            ));
        }
        certs.push(cert);
    }
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err("it holds no usable CA certificate".into());
    }
    Ok(roots)
}

/// The parts of an `https://` URL the request needs.
struct Target {
    host: String,
    port: u16,
    /// Path and query, `/` when empty.
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, TrustUrlError> {
        let bad = |rule| TrustUrlError::BadUrl {
            url: url.into(),
            rule,
        };
        let uri: Uri = url
            .parse()
            .map_err(|_| bad("not a URL; expected https://host[:port]/path"))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") => {
                return Err(bad(
                    "plain http is refused: the bundle authenticates the server, so it must \
                     come over https",
                ));
            }
            _ => return Err(bad("only https:// URLs are fetched")),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| bad("the URL names no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(bad("the URL names no host"));
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        Ok(Self {
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(443),
            path: if path.is_empty() { "/".into() } else { path },
        })
    }
}

async fn exchange(
    url: &str,
    target: &Target,
    roots: RootCertStore,
) -> Result<Vec<u8>, TrustUrlError> {
    let connect = |source| TrustUrlError::Connect {
        url: url.into(),
        source,
    };
    let http = |source| TrustUrlError::Http {
        url: url.into(),
        source,
    };
    let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(connect)?;
    let name = ServerName::try_from(target.host.clone()).map_err(|_| TrustUrlError::BadUrl {
        url: url.into(),
        rule: "the host is neither a DNS name nor an IP address",
    })?;
    let mut config = ClientConfig::builder_with_provider(lanyard_spiffe::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| connect(io::Error::other(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(connect)?;

    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(http)?;
    let driver = tokio::spawn(connection);
    let request = http::Request::get(target.path.as_str())
        .header(http::header::HOST, host_header(target))
        .header(http::header::ACCEPT, "*/*")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|_| TrustUrlError::BadUrl {
            url: url.into(),
            rule: "the path is not a valid request target",
        })?;
    let response = sender.send_request(request).await.map_err(http)?;
    let status = response.status();
    if status != http::StatusCode::OK {
        driver.abort();
        return Err(TrustUrlError::Status {
            url: url.into(),
            status: status.as_u16(),
        });
    }
    let body = read_limited(response.into_body(), url).await;
    driver.abort();
    body
}

/// Reads `body` whole, failing as soon as it passes [`MAX_BODY_BYTES`].
async fn read_limited(
    mut body: hyper::body::Incoming,
    url: &str,
) -> Result<Vec<u8>, TrustUrlError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| TrustUrlError::Http {
            url: url.into(),
            source,
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > MAX_BODY_BYTES {
                return Err(TrustUrlError::TooLarge { url: url.into() });
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// `Host:` as RFC 9110 §7.2 wants it: the port only when not the default.
fn host_header(target: &Target) -> String {
    let host = if target.host.contains(':') {
        format!("[{}]", target.host)
    } else {
        target.host.clone()
    };
    if target.port == 443 {
        host
    } else {
        format!("{host}:{}", target.port)
    }
}

#[cfg(test)]
#[path = "https_get_tests.rs"]
mod tests;
