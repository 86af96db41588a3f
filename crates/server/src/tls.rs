//! The agent API's TLS: the server's own X509-SVID (hot-swapped on renewal) and a client
//! verifier that lets anonymous callers in (for attestation) but checks every presented
//! certificate against the trust bundle.

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use lanyard_ca::{CaManager, KeyType, SvidParams};
use lanyard_spiffe::SpiffeId;
use lanyard_spiffe::tls::{Authorizer, SpiffeClientVerifier, crypto_provider};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::state::CurrentBundle;
use crate::{ServerConfig, ServerError};

/// The server's current X509-SVID and when it was issued, for renewal decisions.
pub(crate) struct ServerSvid {
    current: ArcSwap<IssuedSvid>,
}

/// One issued server SVID.
pub(crate) struct IssuedSvid {
    pub(crate) key: Arc<CertifiedKey>,
    /// When it was signed; the certificate's notBefore is backdated, so half life is
    /// measured from here.
    pub(crate) issued_at: SystemTime,
    pub(crate) not_after: SystemTime,
    /// The CA certificate that signed it, to notice CA activation.
    pub(crate) issuer: CertificateDer<'static>,
}

impl ServerSvid {
    /// Mints the first server SVID.
    pub(crate) fn mint(
        ca: &CaManager,
        id: &SpiffeId,
        config: &ServerConfig,
        now: SystemTime,
    ) -> Result<Self, ServerError> {
        Ok(Self {
            current: ArcSwap::from_pointee(issue(ca, id, config, now)?),
        })
    }

    /// Replaces the server SVID with a fresh one from the active CA.
    pub(crate) fn renew(
        &self,
        ca: &CaManager,
        id: &SpiffeId,
        config: &ServerConfig,
        now: SystemTime,
    ) -> Result<(), ServerError> {
        self.current.store(Arc::new(issue(ca, id, config, now)?));
        Ok(())
    }

    /// The SVID currently presented.
    pub(crate) fn current(&self) -> Arc<IssuedSvid> {
        self.current.load_full()
    }
}

fn issue(
    ca: &CaManager,
    id: &SpiffeId,
    config: &ServerConfig,
    now: SystemTime,
) -> Result<IssuedSvid, ServerError> {
    let key =
        lanyard_ca::generate_key_pair(KeyType::EcP256).map_err(|e| ServerError::Ca(e.into()))?;
    let active = ca.active();
    let chain = ca.sign_x509_svid_chain(&SvidParams {
        spiffe_id: id.clone(),
        public_key_der: rcgen::PublicKeyData::subject_public_key_info(&key),
        ttl: config.default_x509_svid_ttl,
        dns_names: Vec::new(),
    })?;
    let leaf = chain
        .first()
        .ok_or_else(|| ServerError::Internal("signing returned no certificate".to_owned()))?;
    let not_after = lanyard_spiffe::x509::not_after_of(leaf)
        .map_err(|e| ServerError::Internal(format!("fresh server SVID: {e}")))?;

    let pkcs8 = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing_key = crypto_provider()
        .key_provider
        .load_private_key(pkcs8)
        .map_err(|e| ServerError::Internal(format!("server SVID key: {e}")))?;
    tracing::info!(
        spiffe_id = %id,
        not_after = crate::state::unix_seconds(not_after),
        "Server SVID issued"
    );
    Ok(IssuedSvid {
        key: Arc::new(CertifiedKey::new(chain, signing_key)),
        issued_at: now,
        not_after,
        issuer: active.cert().clone(),
    })
}

/// Hands rustls whatever SVID is current at handshake time.
#[derive(Debug)]
struct SvidResolver(Arc<ServerSvid>);

impl std::fmt::Debug for ServerSvid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSvid").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for SvidResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().key.clone())
    }
}

/// The rustls configuration of the agent API listener.
pub(crate) fn server_config(
    svid: Arc<ServerSvid>,
    bundle: Arc<CurrentBundle>,
    trust_domain: &lanyard_spiffe::TrustDomain,
) -> Result<rustls::ServerConfig, ServerError> {
    // Anonymous clients are let through the handshake so that they can attest; each RPC
    // other than AttestAgent then insists on a known agent certificate.
    let verifier = Arc::new(SpiffeClientVerifier::new(
        bundle,
        Authorizer::MemberOf(trust_domain.clone()),
        false,
    ));
    let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Internal(format!("TLS versions: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SvidResolver(svid)));
    config.alpn_protocols = vec![b"h2".to_vec()];
    // Resumed sessions would skip client certificate verification against the current
    // bundle, so every connection does a full handshake.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}
