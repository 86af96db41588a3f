//! The signing step of a sync round: an X509-SVID for every entry that needs one, with at
//! most [`MAX_BATCH`] CSRs per `BatchNewX509SVID` call, within the cache's size bound. The
//! same step runs between rounds when a workload asks for an SVID the cache lacks.

use lanyard_ca::KeyType;
use lanyard_proto::spire::api::server::svid::v1::{NewX509svidParams, batch_new_x509svid_response};
use lanyard_spiffe::X509Svid;
use lanyard_telemetry::SvidKind;
use rcgen::KeyPair;

use super::{SyncError, Syncer, blocking};
use crate::check::accept_svid;
use crate::entry::WorkloadEntry;
use crate::report::ErrorChain;
use crate::schedule::random_jitter;
use crate::timeutil::rfc3339;

/// Most CSRs sent in one `BatchNewX509SVID` request: SPIRE's limit (its server's per-agent
/// signing rate limit); a Lanyard server takes up to 10,000.
pub(super) const MAX_BATCH: usize = 500;

impl Syncer {
    /// Takes what workloads are using into the cache, signs what is due and evicts what the
    /// size bound leaves no room for.
    pub(super) async fn sign_and_evict(&mut self) -> Result<(), SyncError> {
        let demand = self.demand.take();
        self.p.cache.apply_demand(&demand);
        let signed = self.sign_due().await;
        let evicted = self.p.cache.evict();
        if evicted > 0 {
            tracing::debug!(
                evicted,
                "Dropped least recently used X509-SVIDs past the cache size"
            );
        }
        signed
    }

    /// Signs SVIDs for every due entry, in batches.
    pub(super) async fn sign_due(&mut self) -> Result<(), SyncError> {
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
