//! The agent's authorized entries and the workload X509-SVIDs signed for them.
//!
//! Owned by the sync loop; workloads read immutable [`Snapshot`]s of it. Nothing here is
//! persisted: a restarted agent signs every SVID anew.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use lanyard_spiffe::x509::verify_chain;
use lanyard_spiffe::{JwtBundle, TrustDomain, X509Bundle, X509Svid};
use rustls_pki_types::CertificateDer;

use crate::entry::WorkloadEntry;
use crate::federated::{FederatedBundle, FederatedBundles, FederatedMap};
use crate::schedule::{is_due, renew_at};

#[path = "cache_demand.rs"]
pub(crate) mod demand;
#[path = "cache_lru.rs"]
mod lru;
pub(crate) use lru::DEFAULT_SVID_LIMIT;

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
    /// How many X509-SVIDs to keep (see `cache_lru.rs`); `None`: one for every entry.
    svid_limit: Option<usize>,
    /// Entries whose SVIDs workloads are using now: signed whatever the limit, never evicted.
    pinned: HashSet<String>,
    /// Counts the rounds that took workload demand; a slot's `last_used` is one of them.
    tick: u64,
    /// Whether the server's entry list has been taken at least once.
    synced: bool,
}

struct Slot {
    /// Shared with every published snapshot, so publishing copies a pointer per entry.
    entry: Arc<WorkloadEntry>,
    svid: Option<CachedSvid>,
    /// The demand round in which a workload last asked for this entry (0: never).
    last_used: u64,
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
    /// Whether the entries are the server's: `false` until the first sync brought them, when
    /// a caller matching nothing may simply be early rather than entitled to nothing.
    pub(crate) synced: bool,
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
            synced: false,
        }
    }
}

/// One entry in a snapshot.
pub(crate) struct Identity {
    pub(crate) entry: Arc<WorkloadEntry>,
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
            svid_limit: None,
            pinned: HashSet::new(),
            tick: 0,
            synced: false,
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
        let keep: HashSet<String> = entries.iter().map(|e| e.id.clone()).collect();
        self.update_entries(|id| keep.contains(id), entries)
    }

    /// Keeps the entries for which `keep` holds, dropping the others with their SVIDs, then
    /// adds or updates `changed` (which `keep` must accept) as [`Cache::set_entries`] does.
    pub(crate) fn update_entries(
        &mut self,
        keep: impl Fn(&str) -> bool,
        changed: Vec<WorkloadEntry>,
    ) -> EntryChanges {
        if !self.synced {
            // The first entry list is news even when it is empty: callers stop being told
            // the agent is not synced yet.
            self.synced = true;
            self.dirty = true;
        }
        let mut changes = EntryChanges::default();
        self.slots.retain(|id, slot| {
            let kept = keep(id);
            if !kept {
                changes.removed.push(WorkloadEntry::clone(&slot.entry));
            }
            kept
        });
        for entry in changed {
            match self.slots.get_mut(&entry.id) {
                Some(slot) if *slot.entry == entry => {}
                Some(slot) => {
                    changes.updated.push(entry.clone());
                    slot.entry = Arc::new(entry);
                }
                None => {
                    changes.added.push(entry.clone());
                    self.slots.insert(
                        entry.id.clone(),
                        Slot {
                            entry: Arc::new(entry),
                            svid: None,
                            last_used: 0,
                        },
                    );
                }
            }
        }
        if changes != EntryChanges::default() {
            self.dirty = true;
        }
        changes
    }

    /// The server's revision of the held entry `id`.
    pub(crate) fn revision(&self, id: &str) -> Option<i64> {
        self.slots.get(id).map(|s| s.entry.revision_number)
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
    /// an older version of the entry, or no longer chaining to the bundle. Under a size limit
    /// an entry without SVID is due only when a workload uses it or while there is room
    /// (see `cache_lru.rs`).
    pub(crate) fn due(&self, now: SystemTime) -> Vec<WorkloadEntry> {
        let mut due = Vec::new();
        let mut waiting = Vec::new();
        for slot in self.slots.values() {
            match &slot.svid {
                None if self.is_pinned(&slot.entry.id) => {
                    due.push(WorkloadEntry::clone(&slot.entry));
                }
                None => waiting.push(&slot.entry),
                Some(c)
                    if c.stale
                        || !c.signed_for.same_svid_inputs(&slot.entry)
                        || is_due(c.renew_at, c.svid.not_after(), now) =>
                {
                    due.push(WorkloadEntry::clone(&slot.entry));
                }
                Some(_) => {}
            }
        }
        let pinned_new = due
            .iter()
            .filter(|e| self.slots.get(&e.id).is_some_and(|s| s.svid.is_none()))
            .count();
        let room = self
            .svid_room()
            .map_or(usize::MAX, |room| room.saturating_sub(pinned_new));
        due.extend(
            waiting
                .into_iter()
                .take(room)
                .map(|e| WorkloadEntry::clone(e)),
        );
        due.sort_by(|a, b| a.id.cmp(&b.id));
        due
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
                entry: Arc::clone(&slot.entry),
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
            synced: self.synced,
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
#[path = "cache_tests.rs"]
mod tests;
