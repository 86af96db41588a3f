//! Getting the agent its identity: reuse the stored SVID, or attest with a join token or, when
//! configured, with `x509pop` (which may attest again whenever the stored SVID is unusable).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use lanyard_ca::{CaError, Clock};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::x509::X509Error;
use lanyard_spiffe::{TrustDomain, X509Bundle};
use rustls_pki_types::CertificateDer;

#[path = "attest_x509pop.rs"]
mod attest_x509pop;
#[path = "bootstrap_trust.rs"]
mod trust;
pub(crate) use trust::configured_bundle;
#[cfg(test)]
pub(crate) use trust::fetch_url_bundle;

pub(crate) use attest_x509pop::X509POP;
use attest_x509pop::X509popCredentials;
pub use attest_x509pop::X509popError;

use crate::check::{SvidCheckError, accept_svid};
use crate::client::{RpcError, ServerClient};
use crate::config::{AgentConfig, ConfigError, ServerAddress};
use crate::retry::FailureLog;
use crate::store::{AgentSvid, StateStore, StoreError, Stored};
use crate::timeutil::rfc3339;
use crate::tls::{AgentCert, ServerTrust, TrustOrigin, client_config};

/// First wait after a failed connection attempt; doubled up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between two attestation attempts.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The agent's identity and the bundle it trusts, ready for the sync loop.
pub(crate) struct Identity {
    pub(crate) svid: AgentSvid,
    pub(crate) bundle: X509Bundle,
    /// The configured join token was used to get this identity (tokens are single-use).
    pub(crate) token_spent: bool,
}

/// Why the agent could not get an identity.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// No usable stored SVID and no token to attest with.
    #[error("no join token given and {reason}")]
    NoJoinToken {
        /// What is wrong with the stored state ("no stored agent SVID in <dir>", ...).
        reason: String,
    },
    /// The server refused the attestation; the message is the server's, with a hint when the
    /// token itself was refused.
    #[error("the server refused join token attestation: {}{}", .0.detail, token_hint(.0))]
    Refused(RpcError),
    /// The server refused x509pop attestation; the message is the server's, with a hint when
    /// the certificate does not chain to the server's CAs.
    #[error("the server refused x509pop attestation: {}{}", .0.detail, x509pop_hint(.0))]
    X509popRefused(RpcError),
    /// The x509pop certificate or key cannot be used.
    #[error(transparent)]
    X509pop(#[from] X509popError),
    /// The server's certificate does not chain to the bootstrap bundle; the message names the
    /// server, the bundle and the fix.
    #[error("cannot attest: {}", .0.detail)]
    ServerNotTrusted(RpcError),
    /// The server answered with something unusable.
    #[error("the server's attestation result is unusable")]
    BadSvid(#[from] SvidCheckError),
    /// The bundle fetched after an insecure bootstrap is unusable.
    #[error("bundle from the server: {0}")]
    BadBundle(String),
    /// An RPC after attestation failed.
    #[error(transparent)]
    Rpc(RpcError),
    /// The bootstrap trust bundle.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Making the key or CSR.
    #[error("cannot make the agent CSR")]
    Csr(#[from] CaError),
    /// TLS setup.
    #[error("cannot set up TLS towards the server")]
    Tls(#[from] rustls::Error),
    /// A blocking task did not finish.
    #[error("agent key task failed: {0}")]
    Task(String),
}

/// Restores the stored identity if it is still valid, otherwise attests with the join token.
pub(crate) async fn bootstrap(
    config: &AgentConfig,
    store: &Arc<StateStore>,
    clock: &dyn Clock,
) -> Result<Identity, BootstrapError> {
    let td = &config.trust_domain;
    let reason = match store.load(td, clock.now()) {
        Stored::Usable { svid, bundle } => {
            tracing::info!(
                spiffe_id = %svid.svid.spiffe_id(),
                expires_at = %rfc3339(svid.svid.not_after()),
                dir = %store.dir().display(),
                "Reusing the stored agent SVID"
            );
            if config.join_token.is_some() {
                tracing::info!(
                    "The join token was not used; it is kept in case the server refuses the \
                     stored agent SVID"
                );
            }
            return Ok(Identity {
                svid,
                bundle,
                token_spent: false,
            });
        }
        Stored::Absent => format!("no stored agent SVID in {}", store.dir().display()),
        Stored::Unusable(reason) => reason,
    };
    // A join token given on the command line wins over the configured attestor, as in SPIRE.
    let method = match (config.join_token.as_deref(), &config.x509pop) {
        (Some(token), _) => Method::JoinToken(token),
        (None, Some(x509pop)) => Method::X509pop(X509popCredentials::load(x509pop)?),
        (None, None) => return Err(BootstrapError::NoJoinToken { reason }),
    };
    tracing::debug!(%reason, attestor = method.name(), "Attesting");
    attest(config, store, &method, None, clock).await
}

/// Attests again while running: after the server stopped accepting the agent SVID (evicted),
/// or to rebootstrap. Uses the join token if `use_token` (one not spent yet), otherwise
/// x509pop. The server is authenticated with `bundle` (the agent's current one, or the
/// bootstrap source's when rebootstrapping), which comes from `origin`.
pub(crate) async fn reattest(
    config: &AgentConfig,
    store: &Arc<StateStore>,
    (bundle, origin): (X509Bundle, TrustOrigin),
    use_token: bool,
    clock: &dyn Clock,
) -> Result<Identity, BootstrapError> {
    let method = match (config.join_token.as_deref(), &config.x509pop) {
        (Some(token), _) if use_token => Method::JoinToken(token),
        (_, Some(x509pop)) => Method::X509pop(X509popCredentials::load(x509pop)?),
        _ => {
            return Err(BootstrapError::NoJoinToken {
                reason: "the server no longer accepts the agent SVID".into(),
            });
        }
    };
    attest(config, store, &method, Some((bundle, origin)), clock).await
}

/// How the agent proves itself to the server.
enum Method<'a> {
    JoinToken(&'a str),
    X509pop(X509popCredentials),
}

impl Method<'_> {
    fn name(&self) -> &'static str {
        match self {
            Method::JoinToken(_) => "join_token",
            Method::X509pop(_) => X509POP,
        }
    }

    /// One AttestAgent call.
    async fn attest(
        &self,
        client: &ServerClient,
        csr: Vec<u8>,
    ) -> Result<types::X509svid, RpcError> {
        match self {
            Method::JoinToken(token) => client.attest_join_token(token, csr).await,
            Method::X509pop(credentials) => {
                let respond =
                    |challenge: &[u8]| credentials.respond(challenge).map_err(|e| e.to_string());
                client
                    .attest_x509pop(credentials.payload(), csr, respond)
                    .await
            }
        }
    }

    fn refused(&self, e: RpcError) -> BootstrapError {
        match self {
            Method::JoinToken(_) => BootstrapError::Refused(e),
            Method::X509pop(_) => BootstrapError::X509popRefused(e),
        }
    }
}

async fn attest(
    config: &AgentConfig,
    store: &Arc<StateStore>,
    method: &Method<'_>,
    current: Option<(X509Bundle, TrustOrigin)>,
    clock: &dyn Clock,
) -> Result<Identity, BootstrapError> {
    let td = &config.trust_domain;
    let address = ServerAddress::parse(&config.server_address)?;
    let (trusted, origin) = match current {
        Some((bundle, origin)) => (Some(bundle), origin),
        None => trust::bootstrap_trust(config, store).await?,
    };

    let key_store = Arc::clone(store);
    let key = tokio::task::spawn_blocking(move || key_store.generate_key(0))
        .await
        .map_err(|e| BootstrapError::Task(e.to_string()))??;
    let csr = lanyard_ca::make_csr(&key, None)?;

    let cert = Arc::new(AgentCert::default());
    let trust = match &trusted {
        Some(bundle) => ServerTrust::Bundle(Arc::new(ArcSwap::from_pointee(bundle.clone()))),
        None => ServerTrust::Insecure,
    };
    let tls = client_config(td, trust, Arc::clone(&cert))?;
    let client = ServerClient::new(address, tls, origin);
    let wire = attest_with_retry(&client, method, csr).await?;

    let bundle = match trusted {
        Some(bundle) => bundle,
        None => {
            // Present the new SVID so that the server lets us read its bundle.
            let provisional = provisional_svid(&wire)?;
            cert.set(
                &lanyard_spiffe::X509Svid::from_parts(
                    provisional,
                    rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()),
                )
                .map_err(SvidCheckError::Malformed)?,
            )?;
            client.reconnect();
            let fetched = client.bundle().await.map_err(BootstrapError::Rpc)?;
            bundle_from_wire(td, &fetched).map_err(BootstrapError::BadBundle)?
        }
    };

    let id = wire_agent_id(&wire)?;
    if !id.is_member_of(td) {
        return Err(SvidCheckError::WrongId {
            got: id,
            expected: td.id(),
        }
        .into());
    }
    let svid = accept_svid(&wire, &key, &id, &bundle, clock.now())?;

    store.save_bundle(&bundle)?;
    store.save_svid(svid.chain())?;
    tracing::info!(
        spiffe_id = %svid.spiffe_id(),
        expires_at = %rfc3339(svid.not_after()),
        attestor = method.name(),
        "Agent attested"
    );
    Ok(Identity {
        svid: AgentSvid { svid, slot: 0 },
        bundle,
        token_spent: matches!(method, Method::JoinToken(_)),
    })
}

/// AttestAgent, retried while the server is unreachable; a refusal, or a server that does not
/// match the bootstrap bundle, ends the attempts.
async fn attest_with_retry(
    client: &ServerClient,
    method: &Method<'_>,
    csr: Vec<u8>,
) -> Result<types::X509svid, BootstrapError> {
    let mut wait = FIRST_RETRY;
    let mut failures = FailureLog::new("Attestation");
    loop {
        match method.attest(client, csr.clone()).await {
            Ok(svid) => {
                failures.succeeded();
                return Ok(svid);
            }
            // Not retried: the same certificate checked against the same bundle fails the same
            // way every time, so waiting would only hide the cause. The handshake fails before
            // the RPC is sent, so the token is not spent and a restart with the right bundle
            // or address can use it.
            Err(e) if e.server_not_trusted() => return Err(BootstrapError::ServerNotTrusted(e)),
            Err(e) if e.is_transient() => {
                failures.failed(&e);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_RETRY);
                client.reconnect();
            }
            Err(e) => return Err(method.refused(e)),
        }
    }
}

/// The bundle of `td` from a `GetBundle` answer; it must name `td` and hold authorities.
pub(crate) fn bundle_from_wire(
    td: &TrustDomain,
    wire: &types::Bundle,
) -> Result<X509Bundle, String> {
    if wire.trust_domain != td.name() {
        return Err(format!(
            "it is for trust domain {:?}, expected {td}",
            wire.trust_domain
        ));
    }
    if wire.x509_authorities.is_empty() {
        return Err("it holds no X.509 authorities".into());
    }
    let authorities = wire
        .x509_authorities
        .iter()
        .map(|a| CertificateDer::from(a.asn1.clone()))
        .collect();
    Ok(X509Bundle::new(td.clone(), authorities))
}

fn provisional_svid(
    wire: &types::X509svid,
) -> Result<Vec<CertificateDer<'static>>, SvidCheckError> {
    if wire.cert_chain.is_empty() {
        return Err(SvidCheckError::EmptyChain);
    }
    Ok(wire
        .cert_chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect())
}

/// The agent ID from the leaf certificate (the `id` field is informational).
fn wire_agent_id(wire: &types::X509svid) -> Result<lanyard_spiffe::SpiffeId, SvidCheckError> {
    let leaf = wire.cert_chain.first().ok_or(SvidCheckError::EmptyChain)?;
    lanyard_spiffe::x509::spiffe_id_of(&CertificateDer::from(leaf.as_slice()))
        .map_err(|e: X509Error| SvidCheckError::Malformed(e))
}

/// The fix for a refused token: the server says why (unknown, expired or already used), and
/// every one of these needs a new token.
fn token_hint(refusal: &RpcError) -> &'static str {
    if refusal.code == tonic::Code::PermissionDenied || refusal.detail.contains("join token") {
        "; generate a new one with `lanyard server token generate`"
    } else {
        ""
    }
}

/// The fix for a refused x509pop certificate, only when the refusal is about its chain: a ban,
/// a key usage rule or a failed proof of possession is not cured by changing the server's CAs.
/// Lanyard says "does not chain to"; SPIRE says "certificate verification failed".
fn x509pop_hint(refusal: &RpcError) -> &'static str {
    const CHAIN_FAILURES: &[&str] = &[
        "does not chain to",
        "certificate verification failed",
        "unknown authority",
    ];
    if refusal.code == tonic::Code::PermissionDenied
        && CHAIN_FAILURES.iter().any(|m| refusal.detail.contains(m))
    {
        "; check that the server's NodeAttestor \"x509pop\" trusts the CA of certificate_path"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrustBootstrap;
    use crate::test_support::TestCa;

    fn wire_bundle(td: &str, certs: &[CertificateDer<'_>]) -> types::Bundle {
        types::Bundle {
            trust_domain: td.into(),
            x509_authorities: certs
                .iter()
                .map(|c| types::X509Certificate {
                    asn1: c.to_vec(),
                    tainted: false,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn wire_bundle_must_name_our_trust_domain_and_hold_authorities() {
        let ca = TestCa::new();
        let certs = ca.bundle().authorities().to_vec();
        assert_eq!(
            bundle_from_wire(&ca.td, &wire_bundle("example.org", &certs)).unwrap(),
            ca.bundle()
        );
        let err = bundle_from_wire(&ca.td, &wire_bundle("other.org", &certs)).unwrap_err();
        assert_eq!(
            err,
            "it is for trust domain \"other.org\", expected example.org"
        );
        assert!(bundle_from_wire(&ca.td, &wire_bundle("example.org", &[])).is_err());
    }

    #[test]
    fn bootstrap_trust_includes_the_stored_bundle() {
        let old = TestCa::new();
        let new = TestCa::new();
        let widened = trust::widen(old.bundle(), Some(new.bundle()));
        assert_eq!(widened.authorities().len(), 2);
        assert_eq!(trust::widen(old.bundle(), Some(old.bundle())), old.bundle());
    }

    #[tokio::test]
    async fn first_attestation_stops_at_a_server_that_does_not_match_the_bundle() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let stranger = TestCa::new();
        let server = stranger.tls_server("/spire/server").await;
        let bundle_path = tmp.path().join("bundle.pem");
        std::fs::write(&bundle_path, ca.bundle().to_pem()).unwrap();
        let data_dir = tmp.path().join("agent");
        let mut config = AgentConfig::new(
            ca.td.clone(),
            data_dir.clone(),
            server.to_string(),
            TrustBootstrap::Pem(bundle_path.clone()),
        );
        config.join_token = Some("token".into());
        let store = Arc::new(StateStore::open(&data_dir).unwrap());

        // Bounded only so that a regression fails instead of retrying forever.
        let attempt = bootstrap(&config, &store, &lanyard_ca::SystemClock);
        let err = tokio::time::timeout(Duration::from_secs(30), attempt)
            .await
            .expect("a server that does not match the bundle must end the attempts")
            .err()
            .unwrap();
        assert!(matches!(err, BootstrapError::ServerNotTrusted(_)), "{err}");
        let text = err.to_string();
        for part in [
            format!("the server at {server}"),
            format!("the trust bundle file {}", bundle_path.display()),
            "`lanyard server bundle show`".to_string(),
        ] {
            assert!(text.contains(&part), "{part:?} missing from {text}");
        }
    }

    #[test]
    fn refused_token_ends_with_how_to_get_a_new_one() {
        for reason in [
            "join token has already been used: tokens are single use",
            "join token has expired",
            "join token does not exist",
        ] {
            let status = tonic::Status::permission_denied(reason);
            let err = BootstrapError::Refused(RpcError::from_status("Agent/AttestAgent", &status));
            assert_eq!(
                err.to_string(),
                format!(
                    "the server refused join token attestation: {reason}; generate a new one \
                     with `lanyard server token generate`"
                )
            );
        }
        let status = tonic::Status::invalid_argument("the CSR is malformed");
        let err = BootstrapError::Refused(RpcError::from_status("Agent/AttestAgent", &status));
        assert!(!err.to_string().contains("token generate"), "{err}");
    }

    #[test]
    fn only_a_chain_failure_gets_the_x509pop_ca_hint() {
        let refused = |status: tonic::Status| {
            BootstrapError::X509popRefused(RpcError::from_status("Agent/AttestAgent", &status))
                .to_string()
        };
        let hint = "trusts the CA of certificate_path";
        for chain in [
            "x509pop certificate CN=node-1: it does not chain to the x509pop CA bundle of \
             the server: no certificate of the bundle issued it",
            "x509pop: certificate verification failed: x509: certificate signed by unknown \
             authority",
        ] {
            let text = refused(tonic::Status::permission_denied(chain));
            assert!(text.contains(hint), "{text}");
        }
        for other in [
            tonic::Status::permission_denied("agent spiffe://example.org/x is banned"),
            tonic::Status::invalid_argument(
                "x509pop certificate CN=node-1: key usage lacks digitalSignature",
            ),
            tonic::Status::permission_denied("x509pop proof of possession: bad signature"),
        ] {
            let text = refused(other);
            assert!(!text.contains(hint), "{text}");
        }
    }

    #[tokio::test]
    async fn missing_token_and_state_names_the_data_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let config = AgentConfig::new(
            TrustDomain::new("example.org").unwrap(),
            tmp.path().to_path_buf(),
            "127.0.0.1:1".into(),
            TrustBootstrap::Insecure,
        );
        let store = Arc::new(StateStore::open(tmp.path()).unwrap());
        let err = bootstrap(&config, &store, &lanyard_ca::SystemClock)
            .await
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            format!(
                "no join token given and no stored agent SVID in {}",
                tmp.path().display()
            )
        );
    }
}
