//! The server's change counter: one `tokio::sync::watch` channel that every change an agent
//! syncs bumps (the entry index, the agent map, the published bundle), whatever made it (a local
//! write, the change feed, a CA rotation). Watch streams (`api/notify.rs`) wait on it and then
//! work out whether the change concerns their agent.
//!
//! A watch channel holds only the latest value, so a burst of changes wakes each waiter once,
//! and a stream costs one receiver, never a queue.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

/// The change counter and the revisions at which each kind of state last changed.
pub(crate) struct Changes {
    revision: watch::Sender<u64>,
    /// The revision of the last change to the entry index.
    entries: AtomicU64,
    /// The sequence number of our trust domain's bundle as last stored or read.
    bundle_sequence: AtomicU64,
}

impl Changes {
    /// A counter starting at `start`. Seeding it with the start time keeps revisions growing
    /// across server restarts, so an agent that reconnects to a restarted server never sees a
    /// revision it already saw.
    pub(crate) fn new(start: u64) -> Self {
        let (revision, _) = watch::channel(start);
        Self {
            revision,
            entries: AtomicU64::new(start),
            bundle_sequence: AtomicU64::new(0),
        }
    }

    /// A receiver that wakes after every change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// The current revision.
    #[cfg(test)]
    pub(crate) fn revision(&self) -> u64 {
        *self.revision.borrow()
    }

    /// The revision of the last change to the entry index.
    pub(crate) fn entries_revision(&self) -> u64 {
        self.entries.load(Ordering::SeqCst)
    }

    /// The sequence number of the bundle as last stored or read.
    pub(crate) fn bundle_sequence(&self) -> u64 {
        self.bundle_sequence.load(Ordering::SeqCst)
    }

    /// Records that the entry index changed (call after the index holds the change).
    pub(crate) fn entries_changed(&self) {
        // The entry revision is raised before the receivers are woken (`send_modify` notifies
        // after its closure): a stream woken first would compare against the old revision,
        // find nothing new and never hear of this change again.
        self.revision.send_modify(|r| {
            *r = r.saturating_add(1);
            self.entries.fetch_max(*r, Ordering::SeqCst);
        });
    }

    /// Records that an agent's record changed or went away.
    pub(crate) fn agent_changed(&self) {
        self.bump();
    }

    /// Records the sequence number of the bundle just stored or read; a change only when it
    /// grew (sequences rise with every content change, see `StoredBundle::sequence`).
    pub(crate) fn bundle_stored(&self, sequence: u64) {
        if self.bundle_sequence.fetch_max(sequence, Ordering::SeqCst) < sequence {
            self.bump();
        }
    }

    /// Raises the revision; wakes every receiver even when none is left to hear it. What the
    /// receivers compare must be updated before this is called.
    fn bump(&self) {
        self.revision.send_modify(|r| *r = r.saturating_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_changes_wakes_a_receiver_once_with_the_latest_revision() {
        let changes = Changes::new(100);
        let mut rx = changes.subscribe();
        rx.borrow_and_update();
        changes.entries_changed();
        changes.agent_changed();
        changes.entries_changed();
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow_and_update(), 103);
        assert_eq!(changes.entries_revision(), 103);
        assert!(!rx.has_changed().unwrap(), "one wake for the whole burst");
    }

    #[test]
    fn only_a_larger_bundle_sequence_is_a_change() {
        let changes = Changes::new(0);
        changes.bundle_stored(3);
        assert_eq!(changes.revision(), 1);
        changes.bundle_stored(3);
        changes.bundle_stored(2);
        assert_eq!(
            changes.revision(),
            1,
            "replays and stale reads change nothing"
        );
        assert_eq!(changes.bundle_sequence(), 3);
        changes.bundle_stored(4);
        assert_eq!(changes.revision(), 2);
    }
}
