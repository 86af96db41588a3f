//! The entries step of a sync round: `SyncAuthorizedEntries` against the revisions the cache
//! holds, or `GetAuthorizedEntries` against a server that predates it, then the cache update.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use lanyard_proto::spire::api::types;

use super::{SyncError, Syncer};
use crate::client::AuthorizedEntries;
use crate::entry::WorkloadEntry;

/// How long the agent keeps to `GetAuthorizedEntries` after a server answered
/// `SyncAuthorizedEntries` with `Unimplemented`, before it tries again: the server may be
/// upgraded meanwhile, or the agent may fail over to a newer one.
const LEGACY_RETRY: Duration = Duration::from_secs(600);

/// Which RPC fetches the entries.
#[derive(Debug, Default)]
pub(super) struct EntryRpc {
    /// Until when `GetAuthorizedEntries` is used; `None` while the server syncs by revision.
    legacy_until: Option<SystemTime>,
}

impl Syncer {
    /// The authorized entries: those changed since the cache's copies when the server syncs
    /// by revision, else all of them.
    pub(super) async fn fetch_entries(&mut self) -> Result<AuthorizedEntries, SyncError> {
        let now = self.p.clock.now();
        if self.entry_rpc.legacy_until.is_none_or(|until| now >= until) {
            let cache = &self.p.cache;
            let synced = self
                .p
                .client
                .sync_authorized_entries(|id| cache.revision(id))
                .await;
            match synced {
                Ok(entries) => {
                    self.entry_rpc.legacy_until = None;
                    return Ok(entries);
                }
                Err(e) if e.code == tonic::Code::Unimplemented => {
                    if self.entry_rpc.legacy_until.is_none() {
                        tracing::info!(
                            error = %e,
                            "The server cannot sync entries by revision: fetching them all"
                        );
                    }
                    self.entry_rpc.legacy_until = Some(now + LEGACY_RETRY);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(AuthorizedEntries::Full(
            self.p.client.authorized_entries().await?,
        ))
    }

    /// Brings the cache to the fetched entry set.
    pub(super) fn apply_entries(&mut self, fetched: AuthorizedEntries) {
        let changes = match fetched {
            AuthorizedEntries::Full(wire) => {
                let (entries, _) = self.parse_entries(&wire);
                self.p.cache.set_entries(entries)
            }
            AuthorizedEntries::Diff { ids, changed } => {
                let (entries, unusable) = self.parse_entries(&changed);
                // An entry that changed into something unusable is not kept at its old value.
                let keep = |id: &str| ids.contains(id) && !unusable.contains(id);
                self.p.cache.update_entries(keep, entries)
            }
        };
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

    /// The usable entries of `wire`, and the IDs of the others (each reported once).
    fn parse_entries(&mut self, wire: &[types::Entry]) -> (Vec<WorkloadEntry>, HashSet<String>) {
        let mut entries = Vec::with_capacity(wire.len());
        let mut unusable = HashSet::new();
        for w in wire {
            match WorkloadEntry::from_wire(w) {
                Ok(e) => entries.push(e),
                Err(e) => {
                    if self.bad_entries.insert(w.id.clone()) {
                        tracing::warn!(entry.id = %w.id, error = %e, "Ignoring an unusable entry");
                    }
                    unusable.insert(w.id.clone());
                }
            }
        }
        (entries, unusable)
    }
}
