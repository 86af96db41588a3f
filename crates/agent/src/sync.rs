//! The sync loop: every `sync_interval` (and right after start, and whenever the server pushes
//! a change notification, see `push.rs`), fetch the authorized entries and the bundle, renew
//! the agent SVID if it is past half life, and have the server sign an X509-SVID for every
//! entry that needs one. Failures are retried with backoff while the cache keeps being served.
//! The bundles of the trust domains the entries federate with are fetched on every round too;
//! a failed fetch keeps the last good copy without failing the round.
//!
//! Entries come by revision (`sync_entries.rs`), so a round over an unchanged set moves IDs and
//! revision numbers only. With a bounded SVID cache (`cache_lru.rs`), what workloads use is
//! read from [`SvidDemand`] each round, and between rounds when a workload asks for an SVID
//! the cache lacks, which is then signed at once (`sync_sign.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use lanyard_ca::{CaError, Clock, KeyError, KeyType};
use lanyard_spiffe::{TrustDomain, X509Bundle};
use lanyard_telemetry::AgentMetrics;
use tokio_util::sync::CancellationToken;

use crate::bootstrap::bundle_from_wire;
use crate::cache::Cache;
use crate::cache::demand::SvidDemand;
use crate::check::SvidCheckError;
use crate::client::{AuthorizedEntries, RpcError, ServerClient};
use crate::federated::FederatedSync;
use crate::health::SyncHealth;
use crate::published::Published;
use crate::refusal::{AgentRefused, Reattest};
use crate::retry::{FailureLog, backoff};
use crate::schedule::{random_jitter, renew_at};
use crate::store::{AgentSvid, StateStore, StoreError};
use crate::tls::AgentCert;

#[path = "sync_agent.rs"]
mod agent;
#[path = "sync_bundle.rs"]
mod bundle;
#[path = "sync_entries.rs"]
mod entries;
#[cfg(test)]
#[path = "sync_fake.rs"]
mod fake;
#[path = "sync_reattest.rs"]
mod reattest;
#[path = "sync_rebootstrap.rs"]
mod rebootstrap;
#[path = "sync_sign.rs"]
mod sign;
#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;

/// Shortest wait before a scheduled renewal, so a renewal time a hair away does not spin.
const MIN_WAIT: Duration = Duration::from_millis(50);
/// Why one sync round failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A server RPC failed.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The server's bundle is unusable.
    #[error("bundle from the server: {0}")]
    Bundle(String),
    /// The renewed agent SVID is unusable.
    #[error("the renewed agent SVID is unusable")]
    AgentSvid(#[from] SvidCheckError),
    /// The data directory.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Generating a workload key.
    #[error("cannot generate a workload key")]
    Key(#[from] KeyError),
    /// Making a CSR.
    #[error("cannot make a CSR")]
    Csr(#[from] CaError),
    /// Loading the renewed agent SVID into TLS.
    #[error("cannot use the renewed agent SVID as TLS client certificate")]
    Tls(#[from] rustls::Error),
    /// A blocking task did not finish.
    #[error("background task failed: {0}")]
    Task(String),
}

/// Everything the sync loop works with.
pub(crate) struct SyncParts {
    pub(crate) trust_domain: TrustDomain,
    pub(crate) client: Arc<ServerClient>,
    pub(crate) cert: Arc<AgentCert>,
    pub(crate) bundle: Arc<ArcSwap<X509Bundle>>,
    pub(crate) store: Arc<StateStore>,
    pub(crate) agent: AgentSvid,
    pub(crate) cache: Cache,
    pub(crate) published: Arc<Published>,
    pub(crate) interval: Duration,
    pub(crate) key_type: KeyType,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: AgentMetrics,
    /// Notified when the server announces a change: the loop syncs at once.
    pub(crate) wake: Arc<tokio::sync::Notify>,
}

/// The sync loop's state.
pub(crate) struct Syncer {
    p: SyncParts,
    agent_renew_at: SystemTime,
    sync_failures: FailureLog,
    renew_failures: FailureLog,
    entry_failures: HashMap<String, u64>,
    bad_entries: HashSet<String>,
    federated: FederatedSync,
    expired: agent::ExpiryAlarm,
    /// Which RPC fetches the entries.
    entry_rpc: entries::EntryRpc,
    /// What workloads are using, written by the Workload API.
    demand: Arc<SvidDemand>,
    /// Signing between rounds, for workloads that asked.
    demand_failures: FailureLog,
    /// Readiness: the last successful sync and the agent SVID's expiry.
    health: Arc<SyncHealth>,
    /// How to attest again when the server stops accepting the agent; `None`: never.
    reattest: Option<Reattest>,
    /// Since when the server has not been authenticated by the agent's bundle.
    distrust: rebootstrap::Distrust,
}

impl Syncer {
    pub(crate) fn new(parts: SyncParts) -> Self {
        let svid = &parts.agent.svid;
        let now = parts.clock.now();
        let agent_renew_at = renew_at(svid.not_before(), svid.not_after(), now, random_jitter());
        let health = Arc::new(SyncHealth::new(
            Arc::clone(&parts.clock),
            parts.interval,
            svid.not_after(),
        ));
        Self {
            p: parts,
            agent_renew_at,
            sync_failures: FailureLog::new("Sync with the server"),
            renew_failures: FailureLog::new("Agent SVID renewal"),
            entry_failures: HashMap::new(),
            bad_entries: HashSet::new(),
            federated: FederatedSync::default(),
            expired: agent::ExpiryAlarm::default(),
            entry_rpc: entries::EntryRpc::default(),
            demand: Arc::new(SvidDemand::default()),
            demand_failures: FailureLog::new("Signing an X509-SVID a workload asked for"),
            health,
            reattest: None,
            distrust: rebootstrap::Distrust::default(),
        }
    }

    /// Lets the loop attest again by itself when the server no longer accepts the agent SVID
    /// (evicted), with what `reattest` allows.
    pub(crate) fn with_reattest(mut self, reattest: Reattest) -> Self {
        self.reattest = Some(reattest);
        self
    }

    /// The task that keeps the server's change notifications flowing into this loop.
    pub(crate) fn push_channel(
        &self,
        cancel: CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        crate::push::run(Arc::clone(&self.p.client), Arc::clone(&self.p.wake), cancel)
    }

    /// Where the Workload API reports what workloads use, for the SVID cache's size bound
    /// and signing on demand.
    #[cfg(test)]
    pub(crate) fn demand(&self) -> Arc<SvidDemand> {
        Arc::clone(&self.demand)
    }

    /// Reads what workloads use from `demand`, the registry the Workload API reports its calls
    /// to, and bounds the X509-SVID cache to `max` SVIDs (SPIRE's `x509_svid_cache_max_size`,
    /// 0 for its default). The bound needs the registry: without it SVIDs in use could be
    /// evicted and would not be signed again on demand.
    pub(crate) fn with_demand(mut self, demand: Arc<SvidDemand>, max: usize) -> Self {
        self.demand = demand;
        self.p.cache.set_svid_limit(max);
        self
    }

    /// Bounds the X509-SVID cache without a registry of its own (tests drive
    /// [`Syncer::demand`] by hand).
    #[cfg(test)]
    pub(crate) fn with_svid_cache_max_size(mut self, max: usize) -> Self {
        self.p.cache.set_svid_limit(max);
        self
    }

    /// What readiness reads from this loop.
    pub(crate) fn health(&self) -> Arc<SyncHealth> {
        Arc::clone(&self.health)
    }

    /// Syncs now, then again and again until `cancel` fires.
    ///
    /// # Errors
    ///
    /// [`AgentRefused`] when the server refuses the agent itself (banned, or evicted without a
    /// way to attest again): the loop has then stopped serving workloads and removed the
    /// stored SVID, and the agent should stop.
    ///
    /// # Cancel safety
    ///
    /// A round in flight is dropped at cancellation; files on disk stay consistent because
    /// every write is atomic and a renewal writes its key before its SVID.
    pub(crate) async fn run(mut self, cancel: CancellationToken) -> Result<(), AgentRefused> {
        loop {
            let started = Instant::now();
            let result = tokio::select! {
                () = cancel.cancelled() => break,
                r = self.sync_once() => r,
            };
            let result = match result {
                Err(SyncError::Rpc(e)) => match e.denial {
                    Some(denial) => match self.refused(denial, e, &cancel).await? {
                        reattest::Handled::Reattested => continue,
                        reattest::Handled::Cancelled => break,
                    },
                    None => Err(SyncError::Rpc(e)),
                },
                other => other,
            };
            match &result {
                Ok(()) => self.distrust.trusted(),
                Err(SyncError::Rpc(e)) if e.server_not_trusted() => {
                    match self.server_untrusted(&cancel).await {
                        Some(reattest::Handled::Reattested) => continue,
                        Some(reattest::Handled::Cancelled) => break,
                        None => {}
                    }
                }
                Err(_) => {}
            }
            self.p
                .metrics
                .sync_finished(started.elapsed(), result.is_ok());
            self.health
                .record(result.is_ok(), self.p.agent.svid.not_after());
            self.publish_if_dirty();
            let wait = match result {
                Ok(()) => {
                    self.sync_failures.succeeded();
                    self.next_wait()
                }
                Err(e) => {
                    self.sync_failures.failed(&e);
                    if matches!(&e, SyncError::Rpc(rpc) if rpc.is_transient()) {
                        self.p.client.reconnect();
                    }
                    backoff(self.p.interval, self.sync_failures.count)
                }
            };
            if !self.wait(wait, &cancel).await {
                break;
            }
        }
        tracing::debug!("Sync loop stopped");
        Ok(())
    }

    /// Waits `wait`, or less when the server announces a change (also during a failure's
    /// backoff: a notification means the server is back). Meanwhile signs what workloads ask
    /// for. False when cancelled.
    async fn wait(&mut self, wait: Duration, cancel: &CancellationToken) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        let wake = Arc::clone(&self.p.wake);
        let demand = Arc::clone(&self.demand);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return false,
                () = tokio::time::sleep_until(deadline) => return true,
                () = wake.notified() => return true,
                () = demand.signing_requested() => {}
            }
            let signed = tokio::select! {
                () = cancel.cancelled() => return false,
                r = self.sign_and_evict() => r,
            };
            match signed {
                Ok(()) => self.demand_failures.succeeded(),
                Err(e) => self.demand_failures.failed(&e),
            }
            self.publish_if_dirty();
        }
    }

    /// Hands the cache to the Workload API if it changed.
    fn publish_if_dirty(&mut self) {
        if !self.p.cache.take_dirty() {
            return;
        }
        let snapshot = self.p.cache.snapshot();
        let svids = snapshot
            .identities
            .iter()
            .filter(|i| i.svid.is_some())
            .count();
        self.p
            .metrics
            .cache_entries
            .set(gauge_value(snapshot.identities.len()));
        self.p.metrics.cache_svids.set(gauge_value(svids));
        self.p.published.publish(snapshot);
    }

    async fn sync_once(&mut self) -> Result<(), SyncError> {
        self.report_expiry();
        // The bundle goes first: a renewed agent SVID may come from a CA that is new in it.
        let fetched = self.fetch().await;
        self.renew_agent_now_if_tainted();
        match self.renew_agent_if_due().await {
            Ok(true) => self.renew_failures.succeeded(),
            Ok(false) => {}
            // The server refusing the agent is not a renewal problem: the loop handles it.
            Err(SyncError::Rpc(e)) if e.denial.is_some() => return Err(e.into()),
            Err(e) => self.renew_failures.failed(&e),
        }
        let entries = fetched?;
        self.apply_entries(entries);
        self.federated.sync(&mut self.p.cache, &self.p.client).await;
        self.sign_and_evict().await
    }

    /// Fetches the authorized entries and the bundle, and applies the bundle.
    async fn fetch(&mut self) -> Result<AuthorizedEntries, SyncError> {
        let entries = self.fetch_entries().await?;
        let wire = self.p.client.bundle().await?;
        let bundle = bundle_from_wire(&self.p.trust_domain, &wire).map_err(SyncError::Bundle)?;
        let tainted = bundle::tainted_from_wire(&self.p.trust_domain, &wire);
        self.apply_bundle(bundle, tainted, wire.sequence_number)
            .await?;
        self.apply_jwt_bundle(&wire.jwt_authorities);
        Ok(entries)
    }

    /// Until the next sync: the interval, or sooner if an SVID comes due before it.
    fn next_wait(&self) -> Duration {
        let now = self.p.clock.now();
        [self.p.cache.next_renewal(), Some(self.agent_renew_at)]
            .into_iter()
            .flatten()
            .filter_map(|at| at.duration_since(now).ok())
            .map(|until| until.max(MIN_WAIT))
            .fold(self.p.interval, Duration::min)
    }
}

/// A count as a gauge value (saturating).
fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SyncError::Task(e.to_string()))
}
