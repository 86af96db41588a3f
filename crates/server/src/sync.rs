//! The change feed: keeps the in-memory entry index, agent map and bundle current with
//! writes made through other servers sharing the database.
//!
//! One task reads `changes_since(position)` every `cache_reload_interval` and re-reads each
//! changed object by its key. Applying a change means "make the cache match what the datastore
//! holds now", so applying one twice, or applying one that a local handler already applied, is
//! harmless. Handlers still update the caches right after their own writes, so a caller of
//! this server sees its write at once; the feed only adds what other servers wrote.
//!
//! Every server prunes feed rows older than [`RETENTION`] (SPIRE keeps its entry events 12 h).
//! A server that could not read the feed for half that long reloads everything instead, so
//! it never depends on rows another server may have pruned.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use lanyard_datastore::{Change, ChangeKind, EntryId};
use lanyard_spiffe::SpiffeId;

use crate::ServerError;
use crate::state::ServerState;

/// Changes read per datastore query; a longer backlog is read in several rounds at once.
const BATCH: u32 = 1000;

/// How long feed rows are kept.
const RETENTION: Duration = Duration::from_secs(12 * 3600);

/// How often this server prunes old feed rows.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Runs until `shutdown`, applying the change feed every `cache_reload_interval`.
pub(crate) async fn run(state: Arc<ServerState>, shutdown: impl Future<Output = ()> + Send) {
    let interval = state.config.cache_reload_interval;
    tokio::pin!(shutdown);
    let mut failures = 0u32;
    let mut last_read = Instant::now();
    let mut last_prune = Instant::now();
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(interval) => {}
        }
        let stale = last_read.elapsed() > RETENTION / 2;
        let result = if stale {
            tracing::info!("Change feed unread for too long; reloading entries and agents");
            reload(&state).await
        } else {
            catch_up(&state).await.map(|_| ())
        };
        if result.is_ok() {
            last_read = Instant::now();
        }
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = Instant::now();
            prune(&state).await;
        }
        match result {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(error = %e, "Reading the datastore change feed failed; retrying");
                } else {
                    tracing::debug!(error = %e, failures, "Change feed still failing");
                }
            }
        }
    }
}

/// Replaces the caches with fresh snapshots, then applies what changed meanwhile.
async fn reload(state: &ServerState) -> Result<(), ServerError> {
    let (entries, entries_position) = state.datastore.entries_snapshot().await?;
    let (agents, agents_position) = state.datastore.agents_snapshot().await?;
    state.replace_caches(entries, agents, entries_position.min(agents_position));
    state.reload_bundle().await?;
    catch_up(state).await.map(|_| ())
}

/// Deletes feed rows older than [`RETENTION`]; a failure only delays it.
async fn prune(state: &ServerState) {
    let retention = i64::try_from(RETENTION.as_secs()).unwrap_or(i64::MAX);
    let before = state.now_unix().saturating_sub(retention);
    match state.datastore.prune_changes(before).await {
        Ok(n) if n > 0 => tracing::debug!(pruned = n, "Old change feed rows pruned"),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "Pruning the change feed failed"),
    }
}

/// Applies every change after the current position; returns how many were applied.
pub(crate) async fn catch_up(state: &ServerState) -> Result<usize, ServerError> {
    let mut applied = 0;
    loop {
        let after = state.feed_position.load(Ordering::SeqCst);
        let changes = state.datastore.changes_since(after, BATCH).await?;
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok(applied);
        };
        let full = changes.len() >= BATCH as usize;
        let mut bundle_changed = false;
        for change in &changes {
            bundle_changed |= apply(state, change).await?;
        }
        if bundle_changed {
            state.reload_bundle().await?;
        }
        applied += changes.len();
        state.advance_feed(last);
        if !full {
            return Ok(applied);
        }
    }
}

/// Makes the caches match the datastore for one changed object; true when our own bundle
/// changed (reloaded once per round by the caller).
async fn apply(state: &ServerState, change: &Change) -> Result<bool, ServerError> {
    match change.kind {
        ChangeKind::Entry => {
            let Ok(id) = EntryId::parse(&change.key) else {
                tracing::warn!(change.seq = change.seq, key = %change.key, "Change feed names an invalid entry ID; skipped");
                return Ok(false);
            };
            match state.datastore.get_entry(&id).await? {
                Some(entry) => state.index_entries(vec![entry], &[]),
                None => state.index_entries(Vec::new(), std::slice::from_ref(&change.key)),
            }
            Ok(false)
        }
        ChangeKind::Agent => {
            let Ok(id) = SpiffeId::parse(&change.key) else {
                tracing::warn!(change.seq = change.seq, key = %change.key, "Change feed names an invalid agent ID; skipped");
                return Ok(false);
            };
            match state.datastore.get_agent(&id).await? {
                Some(agent) => state.remember_agent(agent),
                None => state.forget_agent(&id),
            }
            Ok(false)
        }
        ChangeKind::Bundle => Ok(change.key == state.trust_domain.name()),
        // Relationships are read from the datastore on every call; nothing is cached.
        ChangeKind::FederationRelationship => Ok(false),
    }
}
