//! The records the datastore keeps: registration entries, attested agents, join token outcomes and
//! bundles.

use std::collections::BTreeSet;

use crate::id::EntryId;
use lanyard_spiffe::{Selector, SpiffeId, TrustDomain};

/// A registration entry to create. [`Entry`] is the stored form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    /// The entry's ID; `None` assigns a random UUID v4.
    pub id: Option<EntryId>,
    /// The SPIFFE ID issued to workloads (or nodes) that match.
    pub spiffe_id: SpiffeId,
    /// The agent ID or node alias ID under which the entry applies.
    pub parent_id: SpiffeId,
    /// Selectors that must all match. Order does not matter; duplicates are dropped and the stored
    /// entry lists them sorted. At least one is required.
    pub selectors: Vec<Selector>,
    /// X509-SVID lifetime in seconds; 0 means the server default.
    pub x509_svid_ttl: i32,
    /// JWT-SVID lifetime in seconds; 0 means the server default.
    pub jwt_svid_ttl: i32,
    /// Foreign trust domains whose bundles matching workloads also receive (stored sorted).
    pub federates_with: Vec<TrustDomain>,
    /// Whether the identity may use the server's admin APIs.
    pub admin: bool,
    /// Whether the identity belongs to a downstream SPIRE-style server.
    pub downstream: bool,
    /// When the entry itself expires (unix seconds); 0 means never. Data housekeeping, not a
    /// security control.
    pub expires_at: i64,
    /// DNS SANs for the X509-SVID, in order (the first also becomes the subject common name).
    pub dns_names: Vec<String>,
    /// Whether the SVID goes to an SVID store instead of the Workload API.
    pub store_svid: bool,
    /// A free-form hint returned with the SVID so a workload can tell its identities apart.
    pub hint: String,
}

impl NewEntry {
    /// An entry with a random ID, the given identity and selectors, and every other field at its
    /// default (server-default TTLs, no expiry, no DNS names, no federation, not admin).
    pub fn new(spiffe_id: SpiffeId, parent_id: SpiffeId, selectors: Vec<Selector>) -> Self {
        NewEntry {
            id: None,
            spiffe_id,
            parent_id,
            selectors,
            x509_svid_ttl: 0,
            jwt_svid_ttl: 0,
            federates_with: Vec::new(),
            admin: false,
            downstream: false,
            expires_at: 0,
            dns_names: Vec::new(),
            store_svid: false,
            hint: String::new(),
        }
    }
}

/// A stored registration entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The entry's ID.
    pub id: EntryId,
    /// See [`NewEntry::spiffe_id`].
    pub spiffe_id: SpiffeId,
    /// See [`NewEntry::parent_id`].
    pub parent_id: SpiffeId,
    /// The selector set, sorted and without duplicates.
    pub selectors: Vec<Selector>,
    /// See [`NewEntry::x509_svid_ttl`].
    pub x509_svid_ttl: i32,
    /// See [`NewEntry::jwt_svid_ttl`].
    pub jwt_svid_ttl: i32,
    /// See [`NewEntry::federates_with`]; sorted, without duplicates.
    pub federates_with: Vec<TrustDomain>,
    /// See [`NewEntry::admin`].
    pub admin: bool,
    /// See [`NewEntry::downstream`].
    pub downstream: bool,
    /// See [`NewEntry::expires_at`].
    pub expires_at: i64,
    /// See [`NewEntry::dns_names`]; order kept.
    pub dns_names: Vec<String>,
    /// See [`NewEntry::store_svid`].
    pub store_svid: bool,
    /// See [`NewEntry::hint`].
    pub hint: String,
    /// Bumped on every update; 0 for a freshly created entry.
    pub revision_number: i64,
    /// When the entry was created (unix seconds).
    pub created_at: i64,
}

/// How [`EntryFilter::selectors`] compares the given selectors with each entry's selector set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SelectorMatch {
    /// The entry's set equals the given set.
    #[default]
    Exact,
    /// The entry's set is contained in the given set: every selector of the entry is among the
    /// given ones (the question "which entries does a workload with these selectors get").
    Subset,
    /// The entry's set contains every given selector (and possibly more).
    Superset,
    /// The entry has at least one of the given selectors.
    Any,
}

impl SelectorMatch {
    /// Whether an entry with selectors `entry` passes a filter on `given` in this mode. Both are
    /// treated as sets. The datastore evaluates the same rule in SQL.
    pub fn matches(self, entry: &[Selector], given: &[Selector]) -> bool {
        let entry: BTreeSet<&Selector> = entry.iter().collect();
        let given: BTreeSet<&Selector> = given.iter().collect();
        match self {
            SelectorMatch::Exact => entry == given,
            SelectorMatch::Subset => entry.is_subset(&given),
            SelectorMatch::Superset => entry.is_superset(&given),
            SelectorMatch::Any => !entry.is_disjoint(&given),
        }
    }
}

/// Which entries [`Datastore::list_entries`](crate::Datastore::list_entries) returns. Every
/// field that is set must match; the default filter matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryFilter {
    /// Only entries with this SPIFFE ID.
    pub spiffe_id: Option<SpiffeId>,
    /// Only entries with this parent ID.
    pub parent_id: Option<SpiffeId>,
    /// Only entries whose selector set matches these selectors in this mode.
    pub selectors: Option<(Vec<Selector>, SelectorMatch)>,
    /// Only entries with exactly this hint.
    pub hint: Option<String>,
    /// Only entries with this downstream flag.
    pub downstream: Option<bool>,
    /// Only entries whose federated trust domain set matches these trust domains in this mode
    /// (the same four set comparisons as [`EntryFilter::selectors`], with
    /// [`SelectorMatch::matches`] semantics: an entry that federates with nothing matches
    /// `Exact` with an empty list and `Subset` with any list).
    pub federates_with: Option<(Vec<TrustDomain>, SelectorMatch)>,
}

/// Changes to a stored entry for
/// [`Datastore::update_entry`](crate::Datastore::update_entry): each field that is `Some`
/// replaces the stored value, `None` leaves it. The default changes nothing (but still bumps the
/// revision).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryUpdate {
    /// See [`NewEntry::spiffe_id`].
    pub spiffe_id: Option<SpiffeId>,
    /// See [`NewEntry::parent_id`].
    pub parent_id: Option<SpiffeId>,
    /// See [`NewEntry::selectors`]; must not be empty.
    pub selectors: Option<Vec<Selector>>,
    /// See [`NewEntry::x509_svid_ttl`].
    pub x509_svid_ttl: Option<i32>,
    /// See [`NewEntry::jwt_svid_ttl`].
    pub jwt_svid_ttl: Option<i32>,
    /// See [`NewEntry::federates_with`].
    pub federates_with: Option<Vec<TrustDomain>>,
    /// See [`NewEntry::admin`].
    pub admin: Option<bool>,
    /// See [`NewEntry::downstream`].
    pub downstream: Option<bool>,
    /// See [`NewEntry::expires_at`].
    pub expires_at: Option<i64>,
    /// See [`NewEntry::dns_names`].
    pub dns_names: Option<Vec<String>>,
    /// See [`NewEntry::store_svid`].
    pub store_svid: Option<bool>,
    /// See [`NewEntry::hint`].
    pub hint: Option<String>,
}

/// The outcome of presenting a join token, decided atomically by
/// [`Datastore::consume_join_token`](crate::Datastore::consume_join_token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenUse {
    /// The token was valid and unused; it is now used up.
    Accepted,
    /// No such token was ever created (or it was pruned).
    Unknown,
    /// The token exists and was never used, but its expiry has passed.
    Expired,
    /// The token was already consumed once; a second presentation is a reuse attempt.
    AlreadyUsed,
}

/// An agent that completed node attestation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestedAgent {
    /// The agent's SPIFFE ID.
    pub id: SpiffeId,
    /// The node attestor that vouched for it (`join_token`, `x509pop`, ...).
    pub attestation_type: String,
    /// Serial number (decimal) of the agent's current X509-SVID.
    pub serial: String,
    /// Expiry of the current X509-SVID (unix seconds).
    pub expires_at: i64,
    /// Serial of a renewed X509-SVID that the agent has not used yet.
    pub new_serial: Option<String>,
    /// Expiry of the renewed X509-SVID; 0 when there is none.
    pub new_expires_at: i64,
    /// Whether the agent is banned (it may neither renew nor re-attest).
    pub banned: bool,
    /// Whether the agent may attest again with the same ID (non-TOFU attestors).
    pub can_reattest: bool,
    /// Node selectors from attestation (and node resolvers); stored sorted without duplicates.
    pub selectors: Vec<Selector>,
}

/// Which agents [`Datastore::query_agents`](crate::Datastore::query_agents) returns. Every field
/// that is set must match; the default filter matches every agent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentFilter {
    /// Only agents attested by this node attestor.
    pub attestation_type: Option<String>,
    /// Only agents whose node selector set matches these selectors in this mode.
    pub selectors: Option<(Vec<Selector>, SelectorMatch)>,
    /// Only banned (`true`) or only unbanned (`false`) agents.
    pub banned: Option<bool>,
    /// Only agents that may (`true`) or may not (`false`) attest again.
    pub can_reattest: Option<bool>,
    /// Only agents whose current SVID expires before this time (unix seconds).
    pub expires_before: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sels(list: &[&str]) -> Vec<Selector> {
        list.iter().map(|s| Selector::parse(s).unwrap()).collect()
    }

    #[test]
    fn selector_match_modes_follow_set_semantics() {
        let entry = sels(&["unix:uid:0", "unix:gid:0"]);
        let same_reordered = sels(&["unix:gid:0", "unix:uid:0"]);
        let more = sels(&["unix:gid:0", "unix:uid:0", "k8s:ns:a"]);
        let one = sels(&["unix:uid:0"]);
        let other = sels(&["k8s:ns:a"]);

        assert!(SelectorMatch::Exact.matches(&entry, &same_reordered));
        assert!(!SelectorMatch::Exact.matches(&entry, &more));
        assert!(SelectorMatch::Subset.matches(&entry, &more));
        assert!(!SelectorMatch::Subset.matches(&entry, &one));
        assert!(SelectorMatch::Superset.matches(&entry, &one));
        assert!(!SelectorMatch::Superset.matches(&entry, &more));
        assert!(SelectorMatch::Any.matches(&entry, &one));
        assert!(!SelectorMatch::Any.matches(&entry, &other));
    }
}
