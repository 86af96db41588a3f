//! The agent's authorized entries and the workload X509-SVIDs signed for them.
//!
//! Owned by the sync loop; workloads read immutable [`Snapshot`]s of it. Nothing here is
//! persisted: a restarted agent signs every SVID anew.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use lanyard_spiffe::x509::verify_chain;
use lanyard_spiffe::{JwtBundle, TrustDomain, X509Bundle, X509Svid};
use rustls_pki_types::CertificateDer;

use crate::entry::WorkloadEntry;
use crate::federated::{FederatedBundle, FederatedBundles, FederatedMap};
use crate::schedule::{is_due, renew_at};

/// Entries and SVIDs, keyed by entry ID.
pub(crate) struct Cache {
    bundle: X509Bundle,
    /// The authorities of `bundle` the server marked tainted (same trust domain).
    tainted: X509Bundle,
    /// The server's sequence number of the bundle last taken.
    sequence: u64,
    jwt_bundle: Arc<JwtBundle>,
    /// The `kid`s of `jwt_bundle` the server marked tainted.
    tainted_kids: Arc<BTreeSet<String>>,
    slots: BTreeMap<String, Slot>,
    /// Bundles of the foreign trust domains the entries federate with.
    federated: FederatedBundles,
    dirty: bool,
}

struct Slot {
    entry: WorkloadEntry,
    svid: Option<CachedSvid>,
}

struct CachedSvid {
    svid: Arc<X509Svid>,
    /// The entry as it was when the SVID was requested.
    signed_for: WorkloadEntry,
    renew_at: SystemTime,
    /// The chain no longer verifies against the current bundle, or a tainted authority issued
    /// it.
    stale: bool,
}

/// How [`Cache::set_entries`] changed the entry set, for logging.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct EntryChanges {
    pub(crate) added: Vec<WorkloadEntry>,
    pub(crate) updated: Vec<WorkloadEntry>,
    pub(crate) removed: Vec<WorkloadEntry>,
}

/// What workloads are served from: the bundle and every entry with its SVID, if any.
pub(crate) struct Snapshot {
    /// The agent's trust domain.
    pub(crate) trust_domain: TrustDomain,
    /// Its bundle, concatenated DER.
    pub(crate) bundle_der: Vec<u8>,
    /// Entries in SVID order (see [`WorkloadEntry::order_key`]).
    pub(crate) identities: Vec<Identity>,
    /// The keys that sign its JWT-SVIDs.
    pub(crate) jwt_bundle: Arc<JwtBundle>,
    /// The `kid`s of `jwt_bundle` the server marked tainted: cached JWT-SVIDs they signed are
    /// not handed out again.
    pub(crate) tainted_kids: Arc<BTreeSet<String>>,
    /// Bundles of foreign trust domains, handed only to workloads whose identities name them.
    pub(crate) federated: Arc<FederatedMap>,
}

impl Snapshot {
    /// What workloads see before the agent has an identity: no entries, no bundle.
    pub(crate) fn empty(trust_domain: TrustDomain) -> Self {
        Self {
            jwt_bundle: Arc::new(JwtBundle::new(trust_domain.clone())),
            tainted_kids: Arc::default(),
            trust_domain,
            bundle_der: Vec::new(),
            identities: Vec::new(),
            federated: Arc::default(),
        }
    }
}

/// One entry in a snapshot.
pub(crate) struct Identity {
    pub(crate) entry: WorkloadEntry,
    pub(crate) svid: Option<Arc<X509Svid>>,
}

impl Cache {
    /// An empty cache trusting `bundle`.
    pub(crate) fn new(bundle: X509Bundle) -> Self {
        Self {
            jwt_bundle: Arc::new(JwtBundle::new(bundle.trust_domain().clone())),
            tainted_kids: Arc::default(),
            tainted: X509Bundle::new(bundle.trust_domain().clone(), Vec::new()),
            sequence: 0,
            bundle,
            slots: BTreeMap::new(),
            federated: FederatedBundles::default(),
            dirty: true,
        }
    }

    /// The current bundle.
    pub(crate) fn bundle(&self) -> &X509Bundle {
        &self.bundle
    }

    /// The authorities of the bundle that the server marked tainted.
    pub(crate) fn tainted(&self) -> &X509Bundle {
        &self.tainted
    }

    /// Takes the server's bundle `bundle` at `sequence`, with the `tainted` authorities among
    /// its certificates. SVIDs that no longer chain to it, or that a tainted authority issued,
    /// are marked for re-signing. Returns whether anything changed.
    pub(crate) fn set_bundle(
        &mut self,
        bundle: X509Bundle,
        tainted: X509Bundle,
        sequence: u64,
        now: SystemTime,
    ) -> bool {
        if bundle == self.bundle && tainted == self.tainted && sequence == self.sequence {
            return false;
        }
        for cached in self.slots.values_mut().filter_map(|s| s.svid.as_mut()) {
            let chain = cached.svid.chain();
            cached.stale = verify_chain(chain, &bundle, now).is_err()
                || issued_by_tainted(chain, &tainted, now);
        }
        self.bundle = bundle;
        self.tainted = tainted;
        self.sequence = sequence;
        self.dirty = true;
        true
    }

    /// Replaces the JWT signing keys and the tainted `kid`s among them; returns whether they
    /// changed.
    pub(crate) fn set_jwt_bundle(&mut self, bundle: JwtBundle, tainted: BTreeSet<String>) -> bool {
        if bundle == *self.jwt_bundle && tainted == *self.tainted_kids {
            return false;
        }
        // Always a new allocation: readers notice a change by pointer (see `JwtCache::prune`).
        self.jwt_bundle = Arc::new(bundle);
        self.tainted_kids = Arc::new(tainted);
        self.dirty = true;
        true
    }

    /// Replaces the entry set with `entries`: new ones are added (without SVID), gone ones are
    /// dropped with their SVIDs, changed ones keep their SVID until it is replaced.
    pub(crate) fn set_entries(&mut self, entries: Vec<WorkloadEntry>) -> EntryChanges {
        let mut changes = EntryChanges::default();
        let mut incoming: BTreeMap<String, WorkloadEntry> =
            entries.into_iter().map(|e| (e.id.clone(), e)).collect();
        self.slots.retain(|id, slot| {
            let keep = incoming.contains_key(id);
            if !keep {
                changes.removed.push(slot.entry.clone());
            }
            keep
        });
        for (id, entry) in std::mem::take(&mut incoming) {
            match self.slots.get_mut(&id) {
                Some(slot) if slot.entry == entry => {}
                Some(slot) => {
                    changes.updated.push(entry.clone());
                    slot.entry = entry;
                }
                None => {
                    changes.added.push(entry.clone());
                    self.slots.insert(id, Slot { entry, svid: None });
                }
            }
        }
        if changes != EntryChanges::default() {
            self.dirty = true;
        }
        changes
    }

    /// The foreign trust domains the entries federate with; the own one never counts (the
    /// server refuses it in `federates_with`, and its bundle is not a federated one).
    pub(crate) fn federated_trust_domains(&self) -> BTreeSet<TrustDomain> {
        self.slots
            .values()
            .flat_map(|slot| slot.entry.federates_with.iter())
            .filter(|td| *td != self.bundle.trust_domain())
            .cloned()
            .collect()
    }

    /// Stores a federated bundle; returns whether it changed.
    pub(crate) fn set_federated(&mut self, bundle: FederatedBundle) -> bool {
        let changed = self.federated.set(bundle);
        self.dirty |= changed;
        changed
    }

    /// Drops the federated bundles of trust domains not in `wanted`; returns those dropped.
    pub(crate) fn retain_federated(&mut self, wanted: &BTreeSet<TrustDomain>) -> Vec<TrustDomain> {
        let dropped = self.federated.retain(wanted);
        self.dirty |= !dropped.is_empty();
        dropped
    }

    /// Entries that need a (new) SVID at `now`: none yet, past its renewal time, signed for
    /// an older version of the entry, or no longer chaining to the bundle.
    pub(crate) fn due(&self, now: SystemTime) -> Vec<WorkloadEntry> {
        self.slots
            .values()
            .filter(|slot| match &slot.svid {
                None => true,
                Some(c) => {
                    c.stale
                        || !c.signed_for.same_svid_inputs(&slot.entry)
                        || is_due(c.renew_at, c.svid.not_after(), now)
                }
            })
            .map(|slot| slot.entry.clone())
            .collect()
    }

    /// Stores an SVID signed for `signed_for` and received at `received`; `jitter`
    /// (-1.0..=1.0) moves its renewal time. Returns false (and drops the SVID) if the entry is
    /// gone meanwhile.
    pub(crate) fn insert_svid(
        &mut self,
        signed_for: &WorkloadEntry,
        svid: X509Svid,
        received: SystemTime,
        jitter: f64,
    ) -> bool {
        let Some(slot) = self.slots.get_mut(&signed_for.id) else {
            return false;
        };
        slot.svid = Some(CachedSvid {
            renew_at: renew_at(svid.not_before(), svid.not_after(), received, jitter),
            svid: Arc::new(svid),
            signed_for: signed_for.clone(),
            stale: false,
        });
        self.dirty = true;
        true
    }

    /// The earliest renewal time of the held SVIDs.
    pub(crate) fn next_renewal(&self) -> Option<SystemTime> {
        self.slots
            .values()
            .filter_map(|s| s.svid.as_ref())
            .map(|c| c.renew_at.min(c.svid.not_after()))
            .min()
    }

    /// Whether anything changed since the last call.
    pub(crate) fn take_dirty(&mut self) -> bool {
        std::mem::replace(&mut self.dirty, false)
    }

    /// An immutable view for serving workloads.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut identities: Vec<Identity> = self
            .slots
            .values()
            .map(|slot| Identity {
                entry: slot.entry.clone(),
                svid: slot.svid.as_ref().map(|c| Arc::clone(&c.svid)),
            })
            .collect();
        identities.sort_by(|a, b| a.entry.order_key().cmp(&b.entry.order_key()));
        Snapshot {
            trust_domain: self.bundle.trust_domain().clone(),
            bundle_der: self.bundle.to_der(),
            identities,
            jwt_bundle: Arc::clone(&self.jwt_bundle),
            tainted_kids: Arc::clone(&self.tainted_kids),
            federated: self.federated.shared(),
        }
    }
}

/// Whether one of the `tainted` authorities issued `chain` (leaf first): it carries one of them,
/// or its leaf (through the rest of the chain) verifies with them as the only trust anchors.
///
/// Signatures rather than key identifiers decide, so a chain without an authority key identifier
/// is judged too. With an upstream authority the server's tainted certificate is an intermediate
/// in the SVID chain, which the first test catches.
pub(crate) fn issued_by_tainted(
    chain: &[CertificateDer<'_>],
    tainted: &X509Bundle,
    now: SystemTime,
) -> bool {
    if tainted.is_empty() {
        return false;
    }
    let carried = chain.iter().skip(1).any(|c| {
        tainted
            .authorities()
            .iter()
            .any(|t| t.as_ref() == c.as_ref())
    });
    carried || verify_chain(chain, tainted, now).is_ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lanyard_ca::{KeyType, generate_key_pair};
    use rustls_pki_types::PrivatePkcs8KeyDer;

    use super::*;
    use crate::entry::tests::entry;
    use crate::test_support::TestCa;

    /// An SVID for `e` valid from `start` for 100 s.
    fn svid_for(ca: &TestCa, e: &WorkloadEntry, start: SystemTime) -> X509Svid {
        let key = generate_key_pair(KeyType::EcP256).unwrap();
        let chain = ca.sign_at(&key, e.spiffe_id.path(), Duration::from_secs(100), start);
        X509Svid::from_parts(chain, PrivatePkcs8KeyDer::from(key.serialize_der())).unwrap()
    }

    /// No tainted authority.
    fn none(ca: &TestCa) -> X509Bundle {
        X509Bundle::new(ca.td.clone(), Vec::new())
    }

    fn ids(entries: &[WorkloadEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn new_entries_are_due_until_signed_then_again_from_half_life() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        let web = entry("e1", "/web", &["unix:uid:1"]);
        cache.set_entries(vec![web.clone()]);
        let start = SystemTime::now();
        assert_eq!(ids(&cache.due(start)), ["e1"]);

        let svid = svid_for(&ca, &web, start);
        let lifetime = svid.not_after().duration_since(start).unwrap();
        let half = start + lifetime / 2;
        assert!(cache.insert_svid(&web, svid, start, 0.0));
        assert!(cache.due(start).is_empty());
        assert!(cache.due(half - Duration::from_secs(1)).is_empty());
        assert_eq!(ids(&cache.due(half)), ["e1"]);
        assert_eq!(cache.next_renewal(), Some(half));
    }

    #[test]
    fn changed_entry_is_due_at_once_and_removed_entry_drops_its_svid() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        let web = entry("e1", "/web", &["unix:uid:1"]);
        let now = SystemTime::now();
        cache.set_entries(vec![web.clone()]);
        cache.insert_svid(&web, svid_for(&ca, &web, now), now, 0.0);

        let mut moved = web.clone();
        moved.spiffe_id = entry("e1", "/web2", &[]).spiffe_id;
        let changes = cache.set_entries(vec![moved.clone()]);
        assert_eq!(ids(&changes.updated), ["e1"]);
        assert_eq!(ids(&cache.due(now)), ["e1"]);

        let changes = cache.set_entries(vec![]);
        assert_eq!(ids(&changes.removed), ["e1"]);
        assert!(cache.snapshot().identities.is_empty());
        assert!(!cache.insert_svid(&moved, svid_for(&ca, &moved, now), now, 0.0));
    }

    #[test]
    fn svids_that_stop_chaining_to_a_new_bundle_are_due() {
        let ca = TestCa::new();
        let next = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        let web = entry("e1", "/web", &["unix:uid:1"]);
        let now = SystemTime::now();
        cache.set_entries(vec![web.clone()]);
        cache.insert_svid(&web, svid_for(&ca, &web, now), now, 0.0);
        cache.take_dirty();

        let mut both = ca.bundle().authorities().to_vec();
        both.extend(next.bundle().authorities().iter().cloned());
        assert!(cache.set_bundle(X509Bundle::new(ca.td.clone(), both), none(&ca), 1, now));
        assert!(
            cache.due(now).is_empty(),
            "the old authority is still trusted"
        );
        assert!(cache.set_bundle(next.bundle(), none(&ca), 2, now));
        assert_eq!(ids(&cache.due(now)), ["e1"]);
        assert!(
            !cache.set_bundle(next.bundle(), none(&ca), 2, now),
            "same bundle is no change"
        );
        assert!(cache.take_dirty());
    }

    #[test]
    fn svids_of_a_tainted_authority_are_due_at_once_and_others_are_not() {
        let old = TestCa::new();
        let new = TestCa::new();
        let both = X509Bundle::new(
            old.td.clone(),
            vec![old.authority.cert().clone(), new.authority.cert().clone()],
        );
        let mut cache = Cache::new(both.clone());
        let web = entry("e1", "/web", &["unix:uid:1"]);
        let db = entry("e2", "/db", &["unix:uid:2"]);
        let now = SystemTime::now();
        cache.set_entries(vec![web.clone(), db.clone()]);
        cache.insert_svid(&web, svid_for(&old, &web, now), now, 0.0);
        cache.insert_svid(&db, svid_for(&new, &db, now), now, 0.0);
        assert!(cache.due(now).is_empty());
        cache.take_dirty();

        let tainted = old.bundle();
        assert!(cache.set_bundle(both.clone(), tainted.clone(), 4, now));
        assert_eq!(
            ids(&cache.due(now)),
            ["e1"],
            "only the SVID of the tainted authority"
        );
        assert!(cache.take_dirty());

        cache.insert_svid(&web, svid_for(&new, &web, now), now, 0.0);
        assert!(
            cache.due(now).is_empty(),
            "re-signed by the active authority"
        );
    }

    #[test]
    fn a_new_sequence_alone_is_a_change() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        let now = SystemTime::now();
        assert!(cache.set_bundle(ca.bundle(), none(&ca), 3, now));
        assert!(!cache.set_bundle(ca.bundle(), none(&ca), 3, now));
        assert!(cache.set_bundle(ca.bundle(), none(&ca), 4, now));
        assert!(
            cache.set_bundle(ca.bundle(), ca.bundle(), 4, now),
            "taint flag alone"
        );
    }

    #[test]
    fn issued_by_tainted_matches_the_issuer_only() {
        let old = TestCa::new();
        let new = TestCa::new();
        let web = entry("e1", "/web", &["unix:uid:1"]);
        let now = SystemTime::now();
        let svid = svid_for(&old, &web, now);
        assert!(issued_by_tainted(svid.chain(), &old.bundle(), now));
        assert!(!issued_by_tainted(svid.chain(), &new.bundle(), now));
        assert!(!issued_by_tainted(svid.chain(), &none(&old), now));
    }

    #[test]
    fn snapshot_orders_by_creation_time_then_entry_id() {
        let ca = TestCa::new();
        let mut cache = Cache::new(ca.bundle());
        let mut a = entry("b-late", "/a", &["unix:uid:1"]);
        a.created_at = 20;
        let mut b = entry("z-early", "/b", &["unix:uid:1"]);
        b.created_at = 10;
        let mut c = entry("a-late", "/c", &["unix:uid:1"]);
        c.created_at = 20;
        cache.set_entries(vec![a, b, c]);
        let order: Vec<_> = cache
            .snapshot()
            .identities
            .iter()
            .map(|i| i.entry.id.clone())
            .collect();
        assert_eq!(order, ["z-early", "a-late", "b-late"]);
    }
}
