//! Which identities workloads are using: the Workload API registers each call (a stream for
//! its whole life) here, and the sync loop reads it to keep those SVIDs in a size-bounded
//! cache and to sign missing ones at once.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use lanyard_spiffe::Selector;
use tokio::sync::Notify;

/// The selector sets of the workloads being served, shared by the Workload API (writers) and
/// the sync loop (the one reader).
#[derive(Default)]
pub(crate) struct SvidDemand {
    state: Mutex<State>,
    /// Wakes the sync loop to sign what a workload asked for and the cache lacks.
    signal: Notify,
}

#[derive(Default)]
struct State {
    /// Open calls by registration number.
    watching: HashMap<u64, Arc<BTreeSet<Selector>>>,
    next: u64,
    /// Selector sets that called since the sync loop last looked, without duplicates (so the
    /// set stays as small as the number of distinct workloads).
    asked: HashSet<Arc<BTreeSet<Selector>>>,
}

/// What the sync loop reads: the calls open now and the selector sets that called since it
/// last looked.
#[derive(Debug, Default)]
pub(crate) struct Demand {
    /// Selector sets of the calls open now: their SVIDs are never evicted.
    pub(crate) watched: Vec<Arc<BTreeSet<Selector>>>,
    /// Selector sets that called since the last look: their SVIDs count as just used, and
    /// are signed if missing.
    pub(crate) asked: Vec<Arc<BTreeSet<Selector>>>,
}

impl SvidDemand {
    /// Registers a call by a workload with `selectors`; its SVIDs stay cached until the
    /// returned guard is dropped (hold it for the life of the stream).
    pub(crate) fn watch(self: &Arc<Self>, selectors: Arc<BTreeSet<Selector>>) -> WatchGuard {
        let mut state = self.lock();
        let id = state.next;
        state.next += 1;
        state.watching.insert(id, Arc::clone(&selectors));
        state.asked.insert(selectors);
        WatchGuard {
            demand: Arc::clone(self),
            id,
        }
    }

    /// Asks the sync loop to sign now what the calls registered so far lack (a workload
    /// matched an entry whose SVID was evicted or not signed yet).
    pub(crate) fn sign_now(&self) {
        self.signal.notify_one();
    }

    /// Completes after [`SvidDemand::sign_now`] (at once if it was called since the last
    /// wait).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a request not yet seen stays pending.
    pub(crate) async fn signing_requested(&self) {
        self.signal.notified().await;
    }

    /// The current demand; the asked sets are handed over only once.
    pub(crate) fn take(&self) -> Demand {
        let mut state = self.lock();
        Demand {
            watched: state.watching.values().cloned().collect(),
            asked: state.asked.drain().collect(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keeps a workload's SVIDs from eviction while it lives.
pub(crate) struct WatchGuard {
    demand: Arc<SvidDemand>,
    id: u64,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.demand.lock().watching.remove(&self.id);
    }
}

impl std::fmt::Debug for WatchGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WatchGuard").field(&self.id).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &[&str]) -> Arc<BTreeSet<Selector>> {
        Arc::new(s.iter().map(|s| Selector::parse(s).unwrap()).collect())
    }

    #[test]
    fn a_call_is_watched_until_its_guard_drops_and_asked_once() {
        let demand = Arc::new(SvidDemand::default());
        let guard = demand.watch(set(&["unix:uid:1"]));
        let _again = demand.watch(set(&["unix:uid:1"]));
        let first = demand.take();
        assert_eq!(first.watched.len(), 2);
        assert_eq!(first.asked, [set(&["unix:uid:1"])], "one per selector set");

        drop(guard);
        let second = demand.take();
        assert_eq!(second.watched.len(), 1, "the other call is still open");
        assert!(second.asked.is_empty(), "handed over already");
    }

    #[tokio::test]
    async fn sign_now_wakes_a_later_wait() {
        let demand = SvidDemand::default();
        demand.sign_now();
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            demand.signing_requested(),
        )
        .await
        .expect("the request was kept for the waiter");
    }
}
