//! The hand-over point between the sync loop (one writer) and the Workload API (many readers).

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::sync::watch;

use crate::cache::Snapshot;
use crate::client::ServerClient;

/// The latest [`Snapshot`], a counter bumped each time it is replaced, and the server client
/// once the agent has an identity (JWT-SVIDs are signed on demand).
pub(crate) struct Published {
    snapshot: ArcSwap<Snapshot>,
    changes: watch::Sender<u64>,
    client: ArcSwapOption<ServerClient>,
}

impl Published {
    /// Starts with `initial`, generation 0.
    pub(crate) fn new(initial: Snapshot) -> Self {
        Self {
            snapshot: ArcSwap::from_pointee(initial),
            changes: watch::Sender::new(0),
            client: ArcSwapOption::empty(),
        }
    }

    /// Hands the server client to the Workload API.
    pub(crate) fn set_client(&self, client: Arc<ServerClient>) {
        self.client.store(Some(client));
    }

    /// The server client, once the agent has an identity.
    pub(crate) fn client(&self) -> Option<Arc<ServerClient>> {
        self.client.load_full()
    }

    /// The current snapshot.
    pub(crate) fn load(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Replaces the snapshot and wakes every subscriber.
    pub(crate) fn publish(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
        self.changes
            .send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    /// A receiver that sees every later [`Published::publish`].
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::test_support::TestCa;

    #[test]
    fn publishing_bumps_the_generation_seen_by_subscribers() {
        let ca = TestCa::new();
        let cache = Cache::new(ca.bundle());
        let published = Published::new(cache.snapshot());
        let mut rx = published.subscribe();
        assert!(!rx.has_changed().unwrap());
        published.publish(cache.snapshot());
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 1);
    }
}
