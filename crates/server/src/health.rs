//! Is the server alive, is it ready: the [`Probe`] behind the HTTP health listener and the
//! gRPC health service (`grpc.health.v1.Health`) on the admin socket.
//!
//! - **live**: the listener and CA rotation tasks are running.
//! - **ready**: live, the datastore answers a trivial query, and the CA signs a throwaway
//!   X509-SVID (for a key generated once at start, never handed out). The result is cached
//!   for [`READY_CACHE`], so frequent probes cost one check per period.
//!
//! The gRPC health service itself is [`lanyard_telemetry::HealthService`], shared with the
//! agent: `""` and `lanyard.server` are readiness, `liveness` and `lanyard.server.liveness`
//! are liveness; any other name (the agent's included) is `NOT_FOUND`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lanyard_ca::{KeyType, SvidParams};
use lanyard_telemetry::{Probe, ProbeResult};

use crate::ServerError;
use crate::state::ServerState;

/// How long a readiness result is reused.
const READY_CACHE: Duration = Duration::from_secs(5);
/// A datastore that does not answer within this is not ready.
const DATASTORE_TIMEOUT: Duration = Duration::from_secs(3);

/// The server's probe.
pub(crate) struct ServerProbe {
    state: Arc<ServerState>,
    /// Cleared when a listener or the rotation task ends.
    tasks_running: Arc<AtomicBool>,
    /// SubjectPublicKeyInfo of the throwaway key the readiness check signs for.
    test_key: Vec<u8>,
    cached: tokio::sync::Mutex<Option<(Instant, ProbeResult)>>,
}

impl ServerProbe {
    pub(crate) fn new(
        state: Arc<ServerState>,
        tasks_running: Arc<AtomicBool>,
    ) -> Result<Self, ServerError> {
        let key = lanyard_ca::generate_key_pair(KeyType::EcP256)
            .map_err(|e| ServerError::Ca(e.into()))?;
        Ok(Self {
            state,
            tasks_running,
            test_key: rcgen::PublicKeyData::subject_public_key_info(&key),
            cached: tokio::sync::Mutex::new(None),
        })
    }

    async fn check_ready(&self) -> ProbeResult {
        self.live().await?;
        let query = self.state.datastore.get_bundle(&self.state.trust_domain);
        match tokio::time::timeout(DATASTORE_TIMEOUT, query).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("datastore: {e}")),
            Err(_) => {
                return Err(format!(
                    "datastore: no answer within {}s",
                    DATASTORE_TIMEOUT.as_secs()
                ));
            }
        }
        self.state
            .ca
            .sign_x509_svid(&SvidParams {
                spiffe_id: self.state.server_id.clone(),
                public_key_der: self.test_key.clone(),
                ttl: Duration::from_secs(60),
                dns_names: Vec::new(),
            })
            .map(drop)
            .map_err(|e| format!("the CA cannot sign: {e}"))
    }
}

#[async_trait::async_trait]
impl Probe for ServerProbe {
    async fn live(&self) -> ProbeResult {
        if self.tasks_running.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("a server task has stopped".into())
        }
    }

    async fn ready(&self) -> ProbeResult {
        // Concurrent probes wait for the one check in flight instead of starting their own.
        let mut cached = self.cached.lock().await;
        if let Some((at, result)) = cached.as_ref()
            && at.elapsed() < READY_CACHE
        {
            return result.clone();
        }
        let result = self.check_ready().await;
        if let Err(reason) = &result {
            tracing::warn!(reason = %reason, "Server not ready");
        }
        *cached = Some((Instant::now(), result.clone()));
        result
    }
}
