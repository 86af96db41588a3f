//! [`KeyedEntry`]: a shared entry that hashes, compares and orders by its entry ID, so that
//! sets of entries can be looked up by ID without keeping a copy of every ID as a map key.
//!
//! The index holds every entry in a hash set and again in its parent's ordered set. Maps keyed
//! by `String` kept two more copies of each ID besides the one in the entry: for UUID IDs some
//! 100 bytes per entry with the allocator's overhead, and two allocations per entry at start.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use lanyard_datastore::Entry;

/// An entry in a set keyed by its ID.
///
/// `Hash`, `Eq` and `Ord` look at the ID only, exactly as `str` does, which is what makes
/// `Borrow<str>` sound: a set of `KeyedEntry` can be searched with a plain `&str`.
#[derive(Clone, Debug)]
pub(crate) struct KeyedEntry(pub(crate) Arc<Entry>);

impl KeyedEntry {
    fn id(&self) -> &str {
        self.0.id.as_str()
    }
}

impl Borrow<str> for KeyedEntry {
    fn borrow(&self) -> &str {
        self.id()
    }
}

impl Hash for KeyedEntry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

impl PartialEq for KeyedEntry {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for KeyedEntry {}

impl PartialOrd for KeyedEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyedEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.id().cmp(other.id())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use super::*;
    use crate::authorized::tests::entry;

    fn keyed(n: u32, spiffe: &str) -> KeyedEntry {
        KeyedEntry(Arc::new(entry(
            n,
            spiffe,
            "/spire/agent/a",
            &["unix:uid:1"],
        )))
    }

    #[test]
    fn sets_find_entries_by_their_id_string_whatever_else_they_hold() {
        let hashed: HashSet<KeyedEntry> = [keyed(1, "/a"), keyed(2, "/b")].into_iter().collect();
        assert_eq!(hashed.get("e2").map(|e| e.0.spiffe_id.path()), Some("/b"));
        assert!(!hashed.contains("e3"));
        assert!(
            hashed.contains(&keyed(1, "/other")),
            "equal IDs are the same key, as for a map keyed by ID"
        );

        let ordered: BTreeSet<KeyedEntry> = [keyed(3, "/c"), keyed(1, "/a"), keyed(2, "/b")]
            .into_iter()
            .collect();
        let ids: Vec<&str> = ordered.iter().map(|e| e.0.id.as_str()).collect();
        assert_eq!(ids, ["e1", "e2", "e3"]);
        assert!(ordered.contains("e3"));
    }
}
