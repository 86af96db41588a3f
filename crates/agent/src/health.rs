//! Is the agent alive, is it ready: the [`Probe`] behind the HTTP health listener and the
//! gRPC health service on the Workload API socket ([`lanyard_telemetry::HealthService`]:
//! `""` and `lanyard.agent` are readiness, `liveness` and `lanyard.agent.liveness` liveness).
//!
//! - **live**: the agent's own Workload API answers: the probe connects to the socket as a
//!   workload would and asks for X509-SVIDs. Any gRPC answer counts, `PermissionDenied`
//!   included (the agent's own user need not be registered); no connection, a timeout or
//!   `Unavailable` do not.
//! - **ready**: live, and the agent has its identity (attested or restored from disk).
//!
//! The probe's own calls appear in the Workload API's RPC metrics.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lanyard_telemetry::{Probe, ProbeResult};
use lanyard_workload::{ClientError, EndpointAddr, WorkloadClient};

/// How long a probe waits for the Workload API.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The agent's probe.
pub(crate) struct AgentProbe {
    socket: PathBuf,
    attested: AtomicBool,
}

impl AgentProbe {
    pub(crate) fn new(socket: PathBuf) -> Self {
        Self {
            socket,
            attested: AtomicBool::new(false),
        }
    }

    /// From now on the agent has its identity.
    pub(crate) fn set_attested(&self) {
        self.attested.store(true, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Probe for AgentProbe {
    async fn live(&self) -> ProbeResult {
        workload_api_answers(&self.socket, PROBE_TIMEOUT).await
    }

    async fn ready(&self) -> ProbeResult {
        self.live().await?;
        if self.attested.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("the agent has no identity yet (attestation pending)".into())
        }
    }
}

/// Whether the Workload API on `socket` answers a FetchX509SVID call within `timeout`; any
/// gRPC status other than `Unavailable` counts as an answer.
///
/// # Errors
///
/// The reason, naming the socket, when it does not answer.
pub async fn workload_api_answers(socket: &Path, timeout: Duration) -> Result<(), String> {
    let addr = EndpointAddr::Unix(socket.to_path_buf());
    let call = async {
        let mut client = WorkloadClient::connect(&addr).await?;
        client.fetch_x509_context().await.map(drop)
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(ClientError::Status(s))) if s.code() != tonic::Code::Unavailable => Ok(()),
        Ok(Err(e)) => Err(format!(
            "the Workload API on {} does not answer: {e}",
            socket.display()
        )),
        Err(_) => Err(format!(
            "the Workload API on {} did not answer within {}ms",
            socket.display(),
            timeout.as_millis()
        )),
    }
}
