//! TLS towards the server: the agent's SVID as a hot-swappable client certificate, and the
//! server authenticated as `spiffe://<td>/spire/server` against the current bundle.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use lanyard_spiffe::tls::{
    Authorizer, PeerRejected, SpiffeServerVerifier, certified_key, crypto_provider,
};
use lanyard_spiffe::x509::X509Error;
use lanyard_spiffe::{SpiffeId, TrustDomain, X509Bundle, X509Svid};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// The SPIFFE ID every Lanyard (and SPIRE) server presents.
pub(crate) fn server_id(td: &TrustDomain) -> Result<SpiffeId, lanyard_spiffe::id::IdError> {
    SpiffeId::from_segments(td, &["spire", "server"])
}

/// The client certificate presented at each new handshake; empty until the agent attests.
#[derive(Default)]
pub(crate) struct AgentCert {
    current: ArcSwapOption<CertifiedKey>,
}

impl AgentCert {
    /// Presents `svid` on every connection made from now on.
    pub(crate) fn set(&self, svid: &X509Svid) -> Result<(), rustls::Error> {
        self.current.store(Some(certified_key(svid)?));
        Ok(())
    }
}

impl fmt::Debug for AgentCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentCert")
            .field("present", &self.current.load().is_some())
            .finish()
    }
}

impl ResolvesClientCert for AgentCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }

    fn has_certs(&self) -> bool {
        self.current.load().is_some()
    }
}

/// How the server's certificate is checked.
pub(crate) enum ServerTrust {
    /// Against the current bundle (swapped by the sync loop), as the server's SPIFFE ID.
    Bundle(Arc<ArcSwap<X509Bundle>>),
    /// Not at all: `insecure_bootstrap`, only until the first bundle is fetched.
    Insecure,
}

/// Where the bundle the server is checked against comes from, for messages that tell the
/// operator which bundle to replace.
#[derive(Clone, Debug)]
pub(crate) enum TrustOrigin {
    /// The `trust_bundle_path` (`--trust-bundle`) file, at attestation; with the data
    /// directory when the bundle stored there was added (see `bootstrap::widen`).
    File {
        /// The bundle file.
        path: PathBuf,
        /// The data directory, if its stored bundle is trusted too.
        stored_in: Option<PathBuf>,
    },
    /// The bundle fetched from `trust_bundle_url`, at attestation; with the stored one as for
    /// [`TrustOrigin::File`].
    Url {
        /// Where it was fetched.
        url: String,
        /// The data directory, if its stored bundle is trusted too.
        stored_in: Option<PathBuf>,
    },
    /// The bundle stored in the data directory, kept current by the sync loop.
    Stored(PathBuf),
    /// `insecure_bootstrap`: the server's certificate is not checked.
    Insecure,
}

impl TrustOrigin {
    /// The same source, with the bundle stored in `dir` trusted too.
    pub(crate) fn with_stored(self, dir: Option<PathBuf>) -> Self {
        match self {
            TrustOrigin::File { path, .. } => TrustOrigin::File {
                path,
                stored_in: dir,
            },
            TrustOrigin::Url { url, .. } => TrustOrigin::Url {
                url,
                stored_in: dir,
            },
            other => other,
        }
    }

    /// What the operator can do when the server's certificate does not chain to this bundle.
    pub(crate) fn remedy(&self) -> String {
        const FRESH: &str = "if the server's CA has rotated since that bundle was saved, get a \
                             fresh one with `lanyard server bundle show`";
        match self {
            TrustOrigin::File { .. } | TrustOrigin::Insecure => {
                format!("{FRESH} and give it as trust_bundle_path (--trust-bundle)")
            }
            TrustOrigin::Url { url, .. } => format!("{FRESH} and publish it at {url}"),
            // While the stored agent SVID is valid the agent does not read --trust-bundle.
            TrustOrigin::Stored(dir) => format!(
                "{FRESH}; to use it, remove {} and restart the agent with it as \
                 trust_bundle_path (--trust-bundle) and a new join token \
                 (`lanyard server token generate`)",
                dir.join(crate::store::SVID_FILE).display()
            ),
        }
    }
}

impl fmt::Display for TrustOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustOrigin::File { path, stored_in } => {
                write!(f, "the trust bundle file {}", path.display())?;
                stored_also(f, stored_in.as_deref())
            }
            TrustOrigin::Url { url, stored_in } => {
                write!(f, "the trust bundle fetched from {url}")?;
                stored_also(f, stored_in.as_deref())
            }
            TrustOrigin::Stored(dir) => write!(f, "the trust bundle stored in {}", dir.display()),
            TrustOrigin::Insecure => f.write_str("no bundle (insecure bootstrap)"),
        }
    }
}

/// `and the one stored in <dir>` when the stored bundle is trusted too.
fn stored_also(f: &mut fmt::Formatter<'_>, dir: Option<&std::path::Path>) -> fmt::Result {
    match dir {
        Some(dir) => write!(f, " and the one stored in {}", dir.display()),
        None => Ok(()),
    }
}

/// Whether `e` says that the server's certificate does not chain to the bundle: an unknown
/// issuer, a signature no authority made, or a trust domain the bundle is not for. An expired
/// or not yet valid certificate, or a verified one with the wrong SPIFFE ID, is another problem.
pub(crate) fn does_not_chain(e: &rustls::Error) -> bool {
    let rustls::Error::InvalidCertificate(cert) = e else {
        return false;
    };
    match cert {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => true,
        CertificateError::Other(other) => matches!(
            other.0.downcast_ref::<PeerRejected>(),
            Some(PeerRejected::Unverified(X509Error::NoBundle { .. }))
        ),
        _ => false,
    }
}

/// A client config for the server API: ALPN h2, the agent certificate from `cert`, and no
/// session resumption (a resumed session would skip the checks against the current bundle).
pub(crate) fn client_config(
    td: &TrustDomain,
    trust: ServerTrust,
    cert: Arc<AgentCert>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let verifier: Arc<dyn ServerCertVerifier> = match trust {
        ServerTrust::Bundle(bundle) => {
            let expected = server_id(td)
                .map_err(|e| rustls::Error::General(format!("server SPIFFE ID: {e}")))?;
            Arc::new(SpiffeServerVerifier::new(
                bundle,
                Authorizer::Exact(expected),
            ))
        }
        ServerTrust::Insecure => Arc::new(AcceptAnyServer::new()),
    };
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec()];
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// Accepts any server certificate but still checks the handshake signature, so the server at
/// least holds the key of the certificate it shows. Only for `insecure_bootstrap`.
struct AcceptAnyServer {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AcceptAnyServer {
    fn new() -> Self {
        Self {
            algorithms: crypto_provider().signature_verification_algorithms,
        }
    }
}

impl fmt::Debug for AcceptAnyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AcceptAnyServer")
    }
}

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_id_is_spire_server_of_the_trust_domain() {
        let td = TrustDomain::new("example.org").unwrap();
        assert_eq!(
            server_id(&td).unwrap().as_str(),
            "spiffe://example.org/spire/server"
        );
    }

    #[test]
    fn only_chain_failures_count_as_a_bundle_problem() {
        let cert = |e| rustls::Error::InvalidCertificate(e);
        assert!(does_not_chain(&cert(CertificateError::UnknownIssuer)));
        assert!(does_not_chain(&cert(CertificateError::BadSignature)));
        let other_td = PeerRejected::Unverified(X509Error::NoBundle {
            trust_domain: "other.org".into(),
        });
        assert!(does_not_chain(&cert(CertificateError::Other(
            rustls::OtherError(Arc::new(other_td))
        ))));
        assert!(!does_not_chain(&cert(CertificateError::Expired)));
        assert!(!does_not_chain(&cert(CertificateError::NotValidYet)));
        assert!(!does_not_chain(&rustls::Error::NoCertificatesPresented));
    }

    #[test]
    fn trust_origin_names_the_bundle_and_how_to_replace_it() {
        let file = TrustOrigin::File {
            path: "/etc/b.pem".into(),
            stored_in: Some("/var/agent".into()),
        };
        assert_eq!(
            file.to_string(),
            "the trust bundle file /etc/b.pem and the one stored in /var/agent"
        );
        assert!(file.remedy().contains("`lanyard server bundle show`"));
        assert!(file.remedy().contains("trust_bundle_path (--trust-bundle)"));

        let url = TrustOrigin::Url {
            url: "https://bundles.example.org/td".into(),
            stored_in: None,
        };
        assert_eq!(
            url.to_string(),
            "the trust bundle fetched from https://bundles.example.org/td"
        );
        assert!(
            url.remedy()
                .contains("publish it at https://bundles.example.org/td")
        );

        let stored = TrustOrigin::Stored("/var/agent".into());
        assert_eq!(stored.to_string(), "the trust bundle stored in /var/agent");
        let remedy = stored.remedy();
        for part in [
            "`lanyard server bundle show`",
            "/var/agent/agent_svid.der",
            "`lanyard server token generate`",
        ] {
            assert!(remedy.contains(part), "{part:?} missing from {remedy}");
        }
    }

    #[test]
    fn agent_cert_is_empty_until_set() {
        let cert = AgentCert::default();
        assert!(!cert.has_certs());
        assert!(cert.resolve(&[], &[]).is_none());
    }
}
