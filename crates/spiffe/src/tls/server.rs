//! [`SpiffeServerVerifier`]: how a TLS client checks a server's X509-SVID.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::{Authorizer, crypto_provider, verify_peer};
use crate::x509::BundleSource;

/// A rustls `ServerCertVerifier` for X509-SVIDs.
///
/// The `ServerName` the client dialled is ignored (SVIDs identify by SPIFFE ID, not DNS name);
/// the server chain is verified against the current bundle of the server's trust domain, taken
/// from the [`BundleSource`] at every handshake, and the server's ID must pass the [`Authorizer`].
pub struct SpiffeServerVerifier {
    bundles: Arc<dyn BundleSource>,
    authorizer: Authorizer,
    algorithms: WebPkiSupportedAlgorithms,
}

impl SpiffeServerVerifier {
    /// A verifier reading bundles from `bundles` and authorizing with `authorize`.
    pub fn new(bundles: Arc<dyn BundleSource>, authorize: Authorizer) -> Self {
        SpiffeServerVerifier {
            bundles,
            authorizer: authorize,
            algorithms: crypto_provider().signature_verification_algorithms,
        }
    }

    /// The authorization policy.
    pub fn authorizer(&self) -> &Authorizer {
        &self.authorizer
    }
}

impl fmt::Debug for SpiffeServerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiffeServerVerifier")
            .field("authorizer", &self.authorizer)
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        verify_peer(
            end_entity,
            intermediates,
            now,
            &*self.bundles,
            &self.authorizer,
        )?;
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
