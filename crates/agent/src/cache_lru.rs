//! The size bound of the X509-SVID cache (SPIRE's `x509_svid_cache_max_size`): past it, the
//! SVIDs least recently asked for are dropped, except those of workloads being served now;
//! they are signed again when a workload asks.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use lanyard_spiffe::Selector;

use super::demand::Demand;
use super::{Cache, Slot};

/// SPIRE's default `x509_svid_cache_max_size`, also used for 0 as SPIRE does.
pub(crate) const DEFAULT_SVID_LIMIT: usize = 1000;

impl Cache {
    /// Keeps at most `max` X509-SVIDs (0: [`DEFAULT_SVID_LIMIT`]). A soft bound: SVIDs of
    /// workloads being served are kept beyond it.
    pub(crate) fn set_svid_limit(&mut self, max: usize) {
        self.svid_limit = Some(if max == 0 { DEFAULT_SVID_LIMIT } else { max });
    }

    /// Takes what workloads are using: the entries of open calls are pinned, those that
    /// called since the last round count as just used. Without a limit nothing is tracked,
    /// since nothing is evicted.
    pub(crate) fn apply_demand(&mut self, demand: &Demand) {
        if self.svid_limit.is_none() {
            return;
        }
        self.tick += 1;
        let tick = self.tick;
        for id in matching_ids(&self.slots, &demand.asked) {
            if let Some(slot) = self.slots.get_mut(&id) {
                slot.last_used = tick;
            }
        }
        let mut pinned = matching_ids(&self.slots, &demand.watched);
        // Asked for since the last round: signed even past the bound, like a watched one.
        pinned.extend(matching_ids(&self.slots, &demand.asked));
        self.pinned = pinned;
    }

    /// How many more unpinned entries may get an SVID; `None` without a limit.
    pub(super) fn svid_room(&self) -> Option<usize> {
        let limit = self.svid_limit?;
        let held = self.slots.values().filter(|s| s.svid.is_some()).count();
        Some(limit.saturating_sub(held))
    }

    /// Whether entry `id` must have an SVID whatever the bound.
    pub(super) fn is_pinned(&self, id: &str) -> bool {
        self.pinned.contains(id)
    }

    /// Drops SVIDs past the bound, least recently used first, never a pinned one; returns how
    /// many were dropped.
    pub(crate) fn evict(&mut self) -> usize {
        let Some(limit) = self.svid_limit else {
            return 0;
        };
        let mut candidates: Vec<(u64, String)> = self
            .slots
            .iter()
            .filter(|(id, slot)| slot.svid.is_some() && !self.pinned.contains(*id))
            .map(|(id, slot)| (slot.last_used, id.clone()))
            .collect();
        let held = self.slots.values().filter(|s| s.svid.is_some()).count();
        let excess = held.saturating_sub(limit).min(candidates.len());
        if excess == 0 {
            return 0;
        }
        candidates.sort_unstable();
        for (_, id) in candidates.into_iter().take(excess) {
            if let Some(slot) = self.slots.get_mut(&id) {
                slot.svid = None;
            }
        }
        self.dirty = true;
        excess
    }
}

/// The IDs of the entries a workload with one of `sets` gets. Entries are found through their
/// first selector (a match must have it), so the cost follows the callers, not the entries.
fn matching_ids(
    slots: &std::collections::BTreeMap<String, Slot>,
    sets: &[Arc<BTreeSet<Selector>>],
) -> HashSet<String> {
    if sets.is_empty() {
        return HashSet::new();
    }
    let mut by_first: HashMap<&Selector, Vec<&Slot>> = HashMap::new();
    for slot in slots.values() {
        if let Some(first) = slot.entry.selectors.first() {
            by_first.entry(first).or_default().push(slot);
        }
    }
    let mut ids = HashSet::new();
    for set in sets {
        for selector in set.iter() {
            let candidates = by_first
                .get(selector)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for slot in candidates {
                if slot.entry.matches(set) {
                    ids.insert(slot.entry.id.clone());
                }
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use lanyard_ca::{KeyType, generate_key_pair};
    use lanyard_spiffe::X509Svid;
    use rustls_pki_types::PrivatePkcs8KeyDer;

    use super::*;
    use crate::entry::WorkloadEntry;
    use crate::entry::tests::entry;
    use crate::test_support::TestCa;

    fn set(s: &[&str]) -> Arc<BTreeSet<Selector>> {
        Arc::new(s.iter().map(|s| Selector::parse(s).unwrap()).collect())
    }

    /// Entries `e0..en`, entry `i` for workloads with `unix:uid:<i>`.
    fn entries(n: usize) -> Vec<WorkloadEntry> {
        (0..n)
            .map(|i| {
                entry(
                    &format!("e{i}"),
                    &format!("/w{i}"),
                    &[&format!("unix:uid:{i}")],
                )
            })
            .collect()
    }

    /// Signs what is due, as the sync loop would, and evicts; returns the IDs signed.
    fn sign_due(ca: &TestCa, cache: &mut Cache) -> Vec<String> {
        let now = SystemTime::now();
        let due = cache.due(now);
        for e in &due {
            let key = generate_key_pair(KeyType::EcP256).unwrap();
            let chain = ca.sign(&key, e.spiffe_id.path(), Duration::from_secs(600));
            let svid =
                X509Svid::from_parts(chain, PrivatePkcs8KeyDer::from(key.serialize_der())).unwrap();
            assert!(cache.insert_svid(e, svid, now, 0.0));
        }
        cache.evict();
        due.into_iter().map(|e| e.id).collect()
    }

    fn held(cache: &Cache) -> BTreeSet<String> {
        cache
            .snapshot()
            .identities
            .iter()
            .filter(|i| i.svid.is_some())
            .map(|i| i.entry.id.clone())
            .collect()
    }

    fn ids(s: &[&str]) -> BTreeSet<String> {
        s.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn without_a_limit_every_entry_gets_an_svid() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        cache.set_entries(entries(5));
        cache.apply_demand(&Demand::default());
        assert_eq!(sign_due(&ca, &mut cache).len(), 5);
        assert_eq!(cache.evict(), 0);
    }

    #[test]
    fn only_the_limit_is_signed_ahead_and_an_asked_entry_is_signed_past_it() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        cache.set_svid_limit(3);
        cache.set_entries(entries(5));
        cache.apply_demand(&Demand::default());
        assert_eq!(sign_due(&ca, &mut cache), ["e0", "e1", "e2"]);
        assert!(sign_due(&ca, &mut cache).is_empty(), "the cache is full");

        let asked = Demand {
            watched: vec![],
            asked: vec![set(&["unix:uid:4"])],
        };
        cache.apply_demand(&asked);
        assert_eq!(sign_due(&ca, &mut cache), ["e4"], "signed on demand");
        assert_eq!(held(&cache).len(), 3, "one other SVID made room");
        assert!(held(&cache).contains("e4"));
    }

    #[test]
    fn eviction_takes_the_least_recently_used_and_never_a_watched_one() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        cache.set_svid_limit(2);
        cache.set_entries(entries(4));
        let watching = set(&["unix:uid:0"]);
        cache.apply_demand(&Demand {
            watched: vec![Arc::clone(&watching)],
            asked: vec![Arc::clone(&watching)],
        });
        assert_eq!(sign_due(&ca, &mut cache), ["e0", "e1"]);

        // e0 stays watched and unused since; e2 then e3 are asked for.
        for uid in [2, 3] {
            cache.apply_demand(&Demand {
                watched: vec![Arc::clone(&watching)],
                asked: vec![set(&[&format!("unix:uid:{uid}")])],
            });
            sign_due(&ca, &mut cache);
        }
        assert_eq!(held(&cache), ids(&["e0", "e3"]), "e1 then e2 were dropped");

        // Nobody watches any more: the bound holds, least recently used goes first.
        cache.apply_demand(&Demand::default());
        assert_eq!(cache.evict(), 0, "already within the bound");
        cache.set_svid_limit(1);
        assert_eq!(cache.evict(), 1);
        assert_eq!(held(&cache), ids(&["e3"]), "e0 was used longest ago");
    }

    #[test]
    fn watched_entries_are_kept_past_the_bound() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        cache.set_svid_limit(1);
        cache.set_entries(entries(3));
        let all = Demand {
            watched: (0..3).map(|i| set(&[&format!("unix:uid:{i}")])).collect(),
            asked: vec![],
        };
        cache.apply_demand(&all);
        assert_eq!(sign_due(&ca, &mut cache).len(), 3);
        assert_eq!(held(&cache).len(), 3, "a soft bound");
    }

    #[test]
    fn matching_needs_every_selector_of_the_entry() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        cache.set_entries(vec![
            entry("both", "/both", &["unix:uid:1", "unix:gid:1"]),
            entry("uid", "/uid", &["unix:uid:1"]),
        ]);
        let found = matching_ids(&cache.slots, &[set(&["unix:uid:1"])]);
        assert_eq!(found, ["uid".to_string()].into());
        let found = matching_ids(&cache.slots, &[set(&["unix:uid:1", "unix:gid:1"])]);
        assert_eq!(found.len(), 2);
    }
}
