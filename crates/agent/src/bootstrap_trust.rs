//! The bundle that authenticates the server on first contact, from the configured bootstrap
//! source: a PEM or SPIFFE bundle file, a bundle fetched over HTTPS (`trust_bundle_url`), or
//! none at all (insecure bootstrap). Read only when the agent attests: with a stored agent SVID
//! the agent trusts the bundle kept in its data directory, and a URL is not fetched.

use std::path::Path;

use lanyard_spiffe::X509Bundle;

use super::BootstrapError;
use crate::config::{
    AgentConfig, BundleFormat, ConfigError, TrustBootstrap, parse_spiffe_bundle, read_pem_bundle,
    read_spiffe_bundle,
};
use crate::https_get;
use crate::store::StateStore;
use crate::tls::TrustOrigin;

/// The bundle that authenticates the server on first contact (`None`: insecure bootstrap),
/// widened with the stored one, and where it comes from, for errors.
pub(super) async fn bootstrap_trust(
    config: &AgentConfig,
    store: &StateStore,
) -> Result<(Option<X509Bundle>, TrustOrigin), BootstrapError> {
    let Some((configured, origin)) = configured_bundle(config).await? else {
        tracing::warn!("Insecure bootstrap: the server is not authenticated on first contact");
        return Ok((None, TrustOrigin::Insecure));
    };
    let stored = store.load_bundle(&config.trust_domain);
    let origin = origin.with_stored(stored.as_ref().map(|_| store.dir().to_path_buf()));
    Ok((Some(widen(configured, stored)), origin))
}

/// The bundle of the configured bootstrap source alone and the file or URL it came from, for
/// errors; `None` for insecure bootstrap.
pub(crate) async fn configured_bundle(
    config: &AgentConfig,
) -> Result<Option<(X509Bundle, TrustOrigin)>, BootstrapError> {
    let td = &config.trust_domain;
    Ok(Some(match &config.trust_bundle {
        TrustBootstrap::Pem(path) => (read_pem_bundle(td, path)?, file_origin(path)),
        TrustBootstrap::Spiffe(path) => (read_spiffe_bundle(td, path)?, file_origin(path)),
        TrustBootstrap::Url { url, format } => {
            let roots = https_get::system_roots(url).map_err(ConfigError::from)?;
            let bundle = fetch_url_bundle(config, url, *format, roots).await?;
            tracing::info!(
                %url,
                authorities = bundle.authorities().len(),
                "Fetched the bootstrap bundle"
            );
            let origin = TrustOrigin::Url {
                url: url.clone(),
                stored_in: None,
            };
            (bundle, origin)
        }
        TrustBootstrap::Insecure => return Ok(None),
    }))
}

fn file_origin(path: &Path) -> TrustOrigin {
    TrustOrigin::File {
        path: path.to_path_buf(),
        stored_in: None,
    }
}

/// Fetches `url` and reads it as `format`; `roots` verify the web server.
pub(crate) async fn fetch_url_bundle(
    config: &AgentConfig,
    url: &str,
    format: BundleFormat,
    roots: rustls::RootCertStore,
) -> Result<X509Bundle, ConfigError> {
    let td = &config.trust_domain;
    let body = https_get::get(url, roots).await?;
    match format {
        BundleFormat::Pem => X509Bundle::from_pem(td.clone(), &body).map_err(|source| {
            ConfigError::TrustBundleUrlParse {
                url: url.into(),
                source,
            }
        }),
        BundleFormat::Spiffe => parse_spiffe_bundle(td, &body, url),
    }
}

/// The configured bootstrap bundle plus the authorities of the stored one (which may be newer
/// after a CA rotation while the agent was down).
pub(super) fn widen(configured: X509Bundle, stored: Option<X509Bundle>) -> X509Bundle {
    let Some(stored) = stored else {
        return configured;
    };
    let mut authorities = configured.authorities().to_vec();
    for cert in stored.authorities() {
        if !authorities.contains(cert) {
            authorities.push(cert.clone());
        }
    }
    X509Bundle::new(configured.trust_domain().clone(), authorities)
}
