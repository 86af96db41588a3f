//! [`SpiffeClientVerifier`]: how a TLS server checks a client's X509-SVID.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

use super::{Authorizer, crypto_provider, verify_peer};
use crate::x509::BundleSource;

/// A rustls `ClientCertVerifier` for X509-SVIDs.
///
/// Client certificates are always requested. A presented chain must verify against the current
/// bundle of the client's trust domain and pass the [`Authorizer`], or the handshake fails.
pub struct SpiffeClientVerifier {
    bundles: Arc<dyn BundleSource>,
    authorizer: Authorizer,
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl SpiffeClientVerifier {
    /// A verifier reading bundles from `bundles` and authorizing with `authorize`.
    ///
    /// `mandatory = true` is the secure default: clients without a certificate are refused.
    /// `mandatory = false` overrides it and lets anonymous clients complete the handshake (the
    /// server must then decide per request, e.g. for agent attestation); a client that does
    /// present a certificate must still pass verification.
    pub fn new(bundles: Arc<dyn BundleSource>, authorize: Authorizer, mandatory: bool) -> Self {
        SpiffeClientVerifier {
            bundles,
            authorizer: authorize,
            mandatory,
            algorithms: crypto_provider().signature_verification_algorithms,
        }
    }

    /// The authorization policy.
    pub fn authorizer(&self) -> &Authorizer {
        &self.authorizer
    }
}

impl fmt::Debug for SpiffeClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiffeClientVerifier")
            .field("authorizer", &self.authorizer)
            .field("mandatory", &self.mandatory)
            .finish_non_exhaustive()
    }
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        verify_peer(
            end_entity,
            intermediates,
            now,
            &*self.bundles,
            &self.authorizer,
        )?;
        Ok(ClientCertVerified::assertion())
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
