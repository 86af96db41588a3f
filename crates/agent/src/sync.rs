//! The sync loop: every `sync_interval` (and right after start, and whenever the server pushes
//! a change notification, see `push.rs`), fetch the authorized entries and the bundle, renew
//! the agent SVID if it is past half life, and have the server sign an X509-SVID for every
//! entry that needs one. Failures are retried with backoff while the cache keeps being served.
//! The bundles of the trust domains the entries federate with are fetched on every round too;
//! a failed fetch keeps the last good copy without failing the round.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use lanyard_ca::{CaError, Clock, KeyError, KeyType};
use lanyard_proto::spire::api::server::svid::v1::{NewX509svidParams, batch_new_x509svid_response};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::jwt::JwtPublicKey;
use lanyard_spiffe::{JwtBundle, TrustDomain, X509Bundle, X509Svid};
use lanyard_telemetry::{AgentMetrics, SvidKind};
use rcgen::KeyPair;
use rustls_pki_types::CertificateDer;
use tokio_util::sync::CancellationToken;

use crate::bootstrap::bundle_from_wire;
use crate::cache::{Cache, issued_by_tainted};
use crate::check::{SvidCheckError, accept_svid};
use crate::client::{RpcError, ServerClient};
use crate::entry::WorkloadEntry;
use crate::federated::FederatedSync;
use crate::health::SyncHealth;
use crate::published::Published;
use crate::report::ErrorChain;
use crate::retry::{FailureLog, backoff};
use crate::schedule::{is_due, random_jitter, renew_at};
use crate::store::{AgentSvid, StateStore, StoreError};
use crate::timeutil::rfc3339;
use crate::tls::AgentCert;

/// Most CSRs sent in one `BatchNewX509SVID` request.
const MAX_BATCH: usize = 500;
/// Shortest wait before a scheduled renewal, so a renewal time a hair away does not spin.
const MIN_WAIT: Duration = Duration::from_millis(50);
/// How often an expired agent SVID is reported again (at most once per sync round).
const EXPIRED_REMINDER: Duration = Duration::from_secs(300);

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
    expired: ExpiryAlarm,
    /// Readiness: the last successful sync and the agent SVID's expiry.
    health: Arc<SyncHealth>,
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
            expired: ExpiryAlarm::default(),
            health,
        }
    }

    /// The task that keeps the server's change notifications flowing into this loop.
    pub(crate) fn push_channel(
        &self,
        cancel: CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        crate::push::run(Arc::clone(&self.p.client), Arc::clone(&self.p.wake), cancel)
    }

    /// What readiness reads from this loop.
    pub(crate) fn health(&self) -> Arc<SyncHealth> {
        Arc::clone(&self.health)
    }

    /// Syncs now, then again and again until `cancel` fires.
    ///
    /// # Cancel safety
    ///
    /// A round in flight is dropped at cancellation; files on disk stay consistent because
    /// every write is atomic and a renewal writes its key before its SVID.
    pub(crate) async fn run(mut self, cancel: CancellationToken) {
        loop {
            let started = Instant::now();
            let result = tokio::select! {
                () = cancel.cancelled() => break,
                r = self.sync_once() => r,
            };
            self.p
                .metrics
                .sync_finished(started.elapsed(), result.is_ok());
            self.health
                .record(result.is_ok(), self.p.agent.svid.not_after());
            if self.p.cache.take_dirty() {
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
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
                // Also during a failure's backoff: a notification means the server is back.
                () = self.p.wake.notified() => {}
            }
        }
        tracing::debug!("Sync loop stopped");
    }

    async fn sync_once(&mut self) -> Result<(), SyncError> {
        self.report_expiry();
        // The bundle goes first: a renewed agent SVID may come from a CA that is new in it.
        let fetched = self.fetch().await;
        self.renew_agent_now_if_tainted();
        match self.renew_agent_if_due().await {
            Ok(true) => self.renew_failures.succeeded(),
            Ok(false) => {}
            Err(e) => self.renew_failures.failed(&e),
        }
        let entries = fetched?;
        self.apply_entries(&entries);
        self.federated.sync(&mut self.p.cache, &self.p.client).await;
        self.sign_due().await
    }

    /// Fetches the authorized entries and the bundle, and applies the bundle.
    async fn fetch(&mut self) -> Result<Vec<types::Entry>, SyncError> {
        let entries = self.p.client.authorized_entries().await?;
        let wire = self.p.client.bundle().await?;
        let bundle = bundle_from_wire(&self.p.trust_domain, &wire).map_err(SyncError::Bundle)?;
        let tainted = tainted_from_wire(&self.p.trust_domain, &wire);
        self.apply_bundle(bundle, tainted, wire.sequence_number)
            .await?;
        self.apply_jwt_bundle(&wire.jwt_authorities);
        Ok(entries)
    }

    /// Renews the agent SVID past its half life; true when it did.
    async fn renew_agent_if_due(&mut self) -> Result<bool, SyncError> {
        let now = self.p.clock.now();
        let not_after = self.p.agent.svid.not_after();
        if !is_due(self.agent_renew_at, not_after, now) {
            return Ok(false);
        }
        let slot = self.p.agent.other_slot();
        let store = Arc::clone(&self.p.store);
        let key = blocking(move || store.generate_key(slot)).await??;
        let csr = lanyard_ca::make_csr(&key, None)?;
        let wire = self.p.client.renew_agent(csr).await?;
        let id = self.p.agent.svid.spiffe_id().clone();
        let svid = accept_svid(&wire, &key, &id, self.p.cache.bundle(), self.p.clock.now())?;

        let store = Arc::clone(&self.p.store);
        let chain = svid.chain().to_vec();
        blocking(move || store.save_svid(&chain)).await??;
        self.p.cert.set(&svid)?;
        // New connections present the new SVID; the server then retires the old one.
        self.p.client.reconnect();
        let received = self.p.clock.now();
        self.agent_renew_at = renew_at(
            svid.not_before(),
            svid.not_after(),
            received,
            random_jitter(),
        );
        tracing::info!(
            spiffe_id = %id,
            expires_at = %rfc3339(svid.not_after()),
            renew_at = %rfc3339(self.agent_renew_at),
            "Agent SVID renewed"
        );
        self.p.agent = AgentSvid { svid, slot };
        self.p.metrics.svid_renewed(SvidKind::X509Agent);
        Ok(true)
    }

    /// Moves the agent SVID's renewal to now when a tainted authority issued it, so the next
    /// step renews it as it would at half life: once that authority is revoked the server
    /// refuses the SVID.
    fn renew_agent_now_if_tainted(&mut self) {
        let now = self.p.clock.now();
        if self.agent_renew_at <= now
            || !issued_by_tainted(self.p.agent.svid.chain(), self.p.cache.tainted(), now)
        {
            return;
        }
        tracing::info!(
            spiffe_id = %self.p.agent.svid.spiffe_id(),
            "The agent SVID was issued by a tainted authority: renewing it now"
        );
        self.agent_renew_at = now;
    }

    /// Once the agent SVID has expired the server refuses it, renewal included, and only a new
    /// attestation helps. Workloads then see their SVIDs run out, so this is repeated (every
    /// [`EXPIRED_REMINDER`]) rather than said once.
    fn report_expiry(&mut self) {
        let not_after = self.p.agent.svid.not_after();
        if self.expired.due(not_after, self.p.clock.now()) {
            let expired_at = rfc3339(not_after);
            tracing::error!(
                spiffe_id = %self.p.agent.svid.spiffe_id(),
                %expired_at,
                "The agent SVID expired at {expired_at} and the server refuses it from now on: \
                 restart the agent with a new join token (`lanyard server token generate`)"
            );
        }
    }

    /// Takes the server's bundle when anything in it changed, the sequence number included:
    /// SVIDs it no longer covers, or that a tainted authority issued, come due at once.
    async fn apply_bundle(
        &mut self,
        bundle: X509Bundle,
        tainted: X509Bundle,
        sequence: u64,
    ) -> Result<(), SyncError> {
        let authorities = bundle.authorities().len();
        let tainted_count = tainted.authorities().len();
        let now = self.p.clock.now();
        if !self
            .p
            .cache
            .set_bundle(bundle.clone(), tainted, sequence, now)
        {
            return Ok(());
        }
        self.p.bundle.store(Arc::new(bundle.clone()));
        let store = Arc::clone(&self.p.store);
        blocking(move || store.save_bundle(&bundle)).await??;
        tracing::info!(
            authorities,
            tainted = tainted_count,
            sequence,
            "Trust bundle updated"
        );
        Ok(())
    }

    /// Keeps the server's JWT keys; a key that cannot be used is left out with a warning.
    fn apply_jwt_bundle(&mut self, keys: &[types::JwtKey]) {
        let mut bundle = JwtBundle::new(self.p.trust_domain.clone());
        let mut tainted = BTreeSet::new();
        for k in keys {
            match JwtPublicKey::from_spki_der(&k.public_key) {
                Ok(key) => {
                    bundle.insert(k.key_id.clone(), key);
                    if k.tainted {
                        tainted.insert(k.key_id.clone());
                    }
                }
                Err(e) => {
                    tracing::warn!(kid = %k.key_id, error = %e, "Ignoring an unusable JWT key");
                }
            }
        }
        let kids = bundle.len();
        let tainted_count = tainted.len();
        if self.p.cache.set_jwt_bundle(bundle, tainted) {
            tracing::info!(keys = kids, tainted = tainted_count, "JWT keys updated");
        }
    }

    fn apply_entries(&mut self, wire: &[types::Entry]) {
        let mut entries = Vec::with_capacity(wire.len());
        for w in wire {
            match WorkloadEntry::from_wire(w) {
                Ok(e) => entries.push(e),
                Err(e) if self.bad_entries.insert(w.id.clone()) => {
                    tracing::warn!(entry.id = %w.id, error = %e, "Ignoring an unusable entry");
                }
                Err(_) => {}
            }
        }
        let changes = self.p.cache.set_entries(entries);
        for e in &changes.added {
            tracing::debug!(entry.id = %e.id, spiffe_id = %e.spiffe_id, "Entry added");
        }
        for e in &changes.updated {
            tracing::debug!(entry.id = %e.id, spiffe_id = %e.spiffe_id, "Entry changed");
        }
        for e in &changes.removed {
            self.entry_failures.remove(&e.id);
            tracing::debug!(entry.id = %e.id, spiffe_id = %e.spiffe_id, "Entry removed");
        }
    }

    /// Signs SVIDs for every due entry, in batches.
    async fn sign_due(&mut self) -> Result<(), SyncError> {
        let due = self.p.cache.due(self.p.clock.now());
        for batch in due.chunks(MAX_BATCH) {
            let entries = batch.to_vec();
            let key_type = self.p.key_type;
            let prepared = blocking(move || prepare(entries, key_type)).await??;
            let params = prepared
                .iter()
                .map(|(entry, _, csr)| NewX509svidParams {
                    entry_id: entry.id.clone(),
                    csr: csr.clone(),
                })
                .collect();
            let results = self.p.client.new_x509_svids(params).await?;
            for ((entry, key, _), result) in prepared.into_iter().zip(results) {
                match self.accept(&entry, &key, result) {
                    Ok(svid) => self.store_svid(&entry, svid),
                    Err(e) => self.entry_failed(&entry, &e),
                }
            }
        }
        Ok(())
    }

    fn accept(
        &self,
        entry: &WorkloadEntry,
        key: &KeyPair,
        result: batch_new_x509svid_response::Result,
    ) -> Result<X509Svid, String> {
        if let Some(status) = result.status.filter(|s| s.code != 0) {
            return Err(format!(
                "the server refused to sign (code {}): {}",
                status.code, status.message
            ));
        }
        let wire = result.svid.ok_or("the server's result carries no SVID")?;
        accept_svid(
            &wire,
            key,
            &entry.spiffe_id,
            self.p.cache.bundle(),
            self.p.clock.now(),
        )
        .map_err(|e| ErrorChain(&e).to_string())
    }

    fn store_svid(&mut self, entry: &WorkloadEntry, svid: X509Svid) {
        let expires_at = rfc3339(svid.not_after());
        let received = self.p.clock.now();
        if self
            .p
            .cache
            .insert_svid(entry, svid, received, random_jitter())
        {
            self.p.metrics.svid_renewed(SvidKind::X509Workload);
            tracing::debug!(entry.id = %entry.id, spiffe_id = %entry.spiffe_id, %expires_at, "X509-SVID signed");
        }
        if let Some(failures) = self.entry_failures.remove(&entry.id) {
            tracing::info!(entry.id = %entry.id, failures, "X509-SVID signing works again");
        }
    }

    fn entry_failed(&mut self, entry: &WorkloadEntry, error: &str) {
        let failures = self.entry_failures.entry(entry.id.clone()).or_insert(0);
        *failures += 1;
        if *failures == 1 {
            tracing::warn!(entry.id = %entry.id, spiffe_id = %entry.spiffe_id, error, "X509-SVID signing failed");
        } else {
            tracing::debug!(entry.id = %entry.id, failures = *failures, error, "X509-SVID signing failed again");
        }
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

/// Decides when to report that the agent SVID has expired: at the first round past expiry,
/// then again every [`EXPIRED_REMINDER`]; quiet again once a renewed SVID is valid.
#[derive(Debug, Default)]
struct ExpiryAlarm {
    /// When the next report is due; `None` while the SVID is valid.
    next: Option<SystemTime>,
}

impl ExpiryAlarm {
    /// Whether to report now, for an SVID valid until `not_after`.
    fn due(&mut self, not_after: SystemTime, now: SystemTime) -> bool {
        if now < not_after {
            self.next = None;
            return false;
        }
        if self.next.is_some_and(|next| now < next) {
            return false;
        }
        self.next = Some(now + EXPIRED_REMINDER);
        true
    }
}

/// The X.509 authorities of `wire` the server marked tainted, as a bundle of `td`.
fn tainted_from_wire(td: &TrustDomain, wire: &types::Bundle) -> X509Bundle {
    let tainted = wire
        .x509_authorities
        .iter()
        .filter(|a| a.tainted)
        .map(|a| CertificateDer::from(a.asn1.clone()))
        .collect();
    X509Bundle::new(td.clone(), tainted)
}

/// A count as a gauge value (saturating).
fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Keys and CSRs for `entries` (slow for RSA, so run on the blocking pool).
fn prepare(
    entries: Vec<WorkloadEntry>,
    key_type: KeyType,
) -> Result<Vec<(WorkloadEntry, KeyPair, Vec<u8>)>, SyncError> {
    entries
        .into_iter()
        .map(|entry| {
            let key = lanyard_ca::generate_key_pair(key_type)?;
            let csr = lanyard_ca::make_csr(&key, None)?;
            Ok((entry, key, csr))
        })
        .collect()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SyncError::Task(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    #[test]
    fn expired_agent_svid_is_reported_at_once_then_every_reminder_interval() {
        let mut alarm = ExpiryAlarm::default();
        let not_after = t(100);
        assert!(!alarm.due(not_after, t(99)), "still valid");
        assert!(alarm.due(not_after, t(100)), "first round past expiry");
        assert!(!alarm.due(not_after, t(101)));
        assert!(!alarm.due(not_after, t(100 + 299)));
        assert!(alarm.due(not_after, t(100 + 300)), "reminder");
        assert!(!alarm.due(not_after, t(100 + 301)));
    }

    #[test]
    fn renewed_agent_svid_silences_the_expiry_report() {
        let mut alarm = ExpiryAlarm::default();
        assert!(alarm.due(t(100), t(150)));
        assert!(!alarm.due(t(10_000), t(160)), "renewed");
        assert!(
            alarm.due(t(200), t(200)),
            "a later expiry is reported at once"
        );
    }
}
