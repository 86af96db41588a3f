//! Is the agent alive, is it ready: the [`Probe`] behind the HTTP health listener and the
//! gRPC health service on the Workload API socket ([`lanyard_telemetry::HealthService`]:
//! `""` and `lanyard.agent` are readiness, `liveness` and `lanyard.agent.liveness` liveness).
//!
//! - **live**: the agent's own Workload API answers: the probe connects to the socket as a
//!   workload would and asks for X509-SVIDs. Any gRPC answer counts, `PermissionDenied`
//!   included (the agent's own user need not be registered), and so does the `Unavailable`
//!   that says the entries have not been synced yet (the API is up; the server is not there
//!   yet); no connection, a timeout or another `Unavailable` do not.
//! - **ready**: live, the agent has its identity (attested or restored from disk), and it is
//!   not locked out: its own SVID has not expired (the server refuses an expired one, renewal
//!   included) and a sync with the server succeeded within [`stale_after`] the sync interval
//!   (three intervals, at least 30 s), counted from attestation until the first success.
//!   Liveness ignores both: restarting an agent that cannot reach its server does not help.
//!
//! The probe's own calls appear in the Workload API's RPC metrics.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use lanyard_ca::Clock;
use lanyard_telemetry::{Probe, ProbeResult};
use lanyard_workload::{ClientError, EndpointAddr, WorkloadClient};

/// How long a probe waits for the Workload API.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The shortest time without a successful sync after which the agent is not ready.
const MIN_STALE_AFTER: Duration = Duration::from_secs(30);

/// How long the agent stays ready without a successful sync: three sync intervals, so that one
/// or two failed rounds (a server restart) do not flap readiness, and at least
/// [`MIN_STALE_AFTER`].
pub(crate) fn stale_after(sync_interval: Duration) -> Duration {
    sync_interval.saturating_mul(3).max(MIN_STALE_AFTER)
}

/// The agent's probe.
pub(crate) struct AgentProbe {
    socket: PathBuf,
    /// Set once the agent has its identity.
    sync: OnceLock<Arc<SyncHealth>>,
}

impl AgentProbe {
    pub(crate) fn new(socket: PathBuf) -> Self {
        Self {
            socket,
            sync: OnceLock::new(),
        }
    }

    /// From now on the agent has its identity, and `sync` tells whether it is locked out.
    pub(crate) fn set_attested(&self, sync: Arc<SyncHealth>) {
        let _ = self.sync.set(sync);
    }
}

#[async_trait::async_trait]
impl Probe for AgentProbe {
    async fn live(&self) -> ProbeResult {
        workload_api_answers(&self.socket, PROBE_TIMEOUT).await
    }

    async fn ready(&self) -> ProbeResult {
        self.live().await?;
        match self.sync.get() {
            Some(sync) => sync.ready(),
            None => Err("the agent has no identity yet (attestation pending)".into()),
        }
    }
}

/// What the sync loop tells readiness: when a sync last succeeded and when the agent's own
/// SVID expires.
pub(crate) struct SyncHealth {
    clock: Arc<dyn Clock>,
    stale_after: Duration,
    state: Mutex<SyncState>,
}

#[derive(Clone, Copy, Debug)]
struct SyncState {
    /// The last successful sync, or attestation before the first.
    last_success: SystemTime,
    agent_not_after: SystemTime,
}

impl SyncHealth {
    /// Starts counting now, with the agent SVID expiring at `agent_not_after`.
    pub(crate) fn new(
        clock: Arc<dyn Clock>,
        sync_interval: Duration,
        agent_not_after: SystemTime,
    ) -> Self {
        let now = clock.now();
        Self {
            clock,
            stale_after: stale_after(sync_interval),
            state: Mutex::new(SyncState {
                last_success: now,
                agent_not_after,
            }),
        }
    }

    /// A sync round ended, successfully or not; the agent SVID (perhaps renewed) expires at
    /// `agent_not_after`.
    pub(crate) fn record(&self, succeeded: bool, agent_not_after: SystemTime) {
        let now = self.clock.now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.agent_not_after = agent_not_after;
        if succeeded {
            state.last_success = now;
        }
    }

    /// Ready unless the agent SVID expired or no sync succeeded for too long.
    ///
    /// # Errors
    ///
    /// The reason, with the times involved.
    pub(crate) fn ready(&self) -> Result<(), String> {
        let state = *self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now();
        if now >= state.agent_not_after {
            return Err(format!(
                "the agent SVID expired at {}: the server refuses it; re-attest the agent",
                crate::timeutil::rfc3339(state.agent_not_after)
            ));
        }
        let since = now
            .duration_since(state.last_success)
            .unwrap_or(Duration::ZERO);
        if since > self.stale_after {
            return Err(format!(
                "no successful sync with the server for {}s: not ready after {}s \
                 (three sync intervals, at least {}s)",
                since.as_secs(),
                self.stale_after.as_secs(),
                MIN_STALE_AFTER.as_secs()
            ));
        }
        Ok(())
    }
}

/// Whether the Workload API on `socket` answers a FetchX509SVID call within `timeout`; any
/// gRPC status other than `Unavailable` counts as an answer, as does the `Unavailable` of an
/// agent that has not synced its entries yet.
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
        Ok(Err(ClientError::Status(s)))
            if s.code() != tonic::Code::Unavailable || s.message() == crate::source::NOT_SYNCED =>
        {
            Ok(())
        }
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

#[cfg(test)]
mod tests {
    use lanyard_ca::ManualClock;

    use super::*;

    fn health(clock: &Arc<ManualClock>, interval: Duration, lives: Duration) -> SyncHealth {
        let now = clock.now();
        SyncHealth::new(Arc::clone(clock) as Arc<dyn Clock>, interval, now + lives)
    }

    #[test]
    fn stale_after_is_three_intervals_but_at_least_thirty_seconds() {
        assert_eq!(stale_after(Duration::from_secs(5)), Duration::from_secs(30));
        assert_eq!(
            stale_after(Duration::from_secs(60)),
            Duration::from_secs(180)
        );
    }

    #[test]
    fn not_ready_once_syncs_fail_for_longer_than_three_intervals() {
        let clock = Arc::new(ManualClock::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        ));
        let interval = Duration::from_secs(20);
        let sync = health(&clock, interval, Duration::from_secs(3600));
        assert_eq!(sync.ready(), Ok(()));

        clock.advance(Duration::from_secs(50));
        sync.record(false, clock.now() + Duration::from_secs(3600));
        assert_eq!(sync.ready(), Ok(()), "a few failed rounds are tolerated");

        clock.advance(Duration::from_secs(11));
        assert_eq!(
            sync.ready().unwrap_err(),
            "no successful sync with the server for 61s: not ready after 60s (three sync \
             intervals, at least 30s)"
        );

        sync.record(true, clock.now() + Duration::from_secs(3600));
        assert_eq!(
            sync.ready(),
            Ok(()),
            "a successful sync makes it ready again"
        );
    }

    #[test]
    fn not_ready_once_the_agent_svid_expired_even_if_syncs_succeed() {
        let clock = Arc::new(ManualClock::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        ));
        let sync = health(&clock, Duration::from_secs(5), Duration::from_secs(10));
        clock.advance(Duration::from_secs(10));
        sync.record(
            true,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_010),
        );
        let err = sync.ready().unwrap_err();
        assert!(
            err.starts_with("the agent SVID expired at ") && err.ends_with("re-attest the agent"),
            "{err}"
        );
    }
}
