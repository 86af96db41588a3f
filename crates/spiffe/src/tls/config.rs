//! Building rustls configs around an [`X509Svid`] and the SPIFFE verifiers.

use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::PrivateKeyDer;

use super::{Authorizer, SpiffeClientVerifier, SpiffeServerVerifier, crypto_provider};
use crate::x509::{BundleSource, X509Svid};

/// The SVID as a rustls `CertifiedKey` (chain plus aws-lc-rs signing key), e.g. for a
/// `ResolvesServerCert` / `ResolvesClientCert` that swaps SVIDs on rotation.
///
/// # Errors
///
/// A rustls error if the provider cannot load the key.
pub fn certified_key(svid: &X509Svid) -> Result<Arc<CertifiedKey>, rustls::Error> {
    let key = crypto_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(svid.key().clone_key()))?;
    Ok(Arc::new(CertifiedKey::new(svid.chain().to_vec(), key)))
}

/// A TLS 1.2/1.3 client config presenting `svid` and verifying the server with
/// [`SpiffeServerVerifier`]. ALPN and other settings are left to the caller.
///
/// # Errors
///
/// A rustls error if the key cannot be loaded.
pub fn client_config(
    svid: &X509Svid,
    bundles: Arc<dyn BundleSource>,
    authorize: Authorizer,
) -> Result<ClientConfig, rustls::Error> {
    let verifier = SpiffeServerVerifier::new(bundles, authorize);
    ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(
            svid.chain().to_vec(),
            PrivateKeyDer::Pkcs8(svid.key().clone_key()),
        )
}

/// A TLS 1.2/1.3 server config presenting `svid` and verifying clients with
/// [`SpiffeClientVerifier`] (`mandatory` as documented there).
///
/// # Errors
///
/// A rustls error if the key cannot be loaded.
pub fn server_config(
    svid: &X509Svid,
    bundles: Arc<dyn BundleSource>,
    authorize: Authorizer,
    mandatory: bool,
) -> Result<ServerConfig, rustls::Error> {
    let verifier = SpiffeClientVerifier::new(bundles, authorize, mandatory);
    ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(
            svid.chain().to_vec(),
            PrivateKeyDer::Pkcs8(svid.key().clone_key()),
        )
}
