//! Registration entries as the agent keeps them, and how they match a workload.

use std::collections::BTreeSet;

use lanyard_proto::spire::api::types;
use lanyard_spiffe::{Selector, SpiffeId, TrustDomain};

/// An authorized entry, parsed from the server's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WorkloadEntry {
    /// The entry ID.
    pub(crate) id: String,
    /// The identity SVIDs of this entry carry.
    pub(crate) spiffe_id: SpiffeId,
    /// The selectors a workload must all have, sorted and without duplicates.
    pub(crate) selectors: Vec<Selector>,
    /// Requested X509-SVID lifetime in seconds (0: the server's default).
    pub(crate) x509_svid_ttl: i32,
    /// DNS SANs of the SVID.
    pub(crate) dns_names: Vec<String>,
    /// Hint handed to workloads with the SVID.
    pub(crate) hint: String,
    /// The server's revision of the entry.
    pub(crate) revision_number: i64,
    /// Creation time (Unix seconds), for a stable order of a workload's SVIDs.
    pub(crate) created_at: i64,
    /// Foreign trust domains whose bundles workloads with this identity receive.
    pub(crate) federates_with: BTreeSet<TrustDomain>,
}

/// An entry from the server that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("entry {id:?}: {field}: {reason}")]
pub struct EntryError {
    /// The entry ID as sent.
    pub id: String,
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl WorkloadEntry {
    /// Parses a server API entry.
    pub(crate) fn from_wire(wire: &types::Entry) -> Result<Self, EntryError> {
        let invalid = |field, reason: String| EntryError {
            id: wire.id.clone(),
            field,
            reason,
        };
        if wire.id.is_empty() {
            return Err(invalid("id", "is empty".into()));
        }
        let spiffe_id = wire_id(wire.spiffe_id.as_ref()).map_err(|r| invalid("spiffe_id", r))?;
        let selectors = wire
            .selectors
            .iter()
            .map(|s| Selector::new(&s.r#type, &s.value))
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(|e| invalid("selectors", e.to_string()))?;
        let federates_with = wire
            .federates_with
            .iter()
            .map(|name| federated_td(name))
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(|r| invalid("federates_with", r))?;
        Ok(Self {
            id: wire.id.clone(),
            spiffe_id,
            selectors: selectors.into_iter().collect(),
            x509_svid_ttl: wire.x509_svid_ttl,
            dns_names: wire.dns_names.clone(),
            hint: wire.hint.clone(),
            revision_number: wire.revision_number,
            created_at: wire.created_at,
            federates_with,
        })
    }

    /// Whether an SVID signed for `self` is still right for `current` (the entry as the
    /// server now describes it). Selector changes alone do not need a new SVID.
    pub(crate) fn same_svid_inputs(&self, current: &WorkloadEntry) -> bool {
        self.spiffe_id == current.spiffe_id
            && self.dns_names == current.dns_names
            && self.x509_svid_ttl == current.x509_svid_ttl
            && self.hint == current.hint
            && self.revision_number == current.revision_number
    }

    /// Whether a workload with the selectors `caller` gets this entry's identity: the entry
    /// has selectors and the caller has every one of them.
    pub(crate) fn matches(&self, caller: &BTreeSet<Selector>) -> bool {
        !self.selectors.is_empty() && self.selectors.iter().all(|s| caller.contains(s))
    }

    /// The order of a workload's SVIDs: oldest entry first (its default identity), ties
    /// broken by entry ID.
    pub(crate) fn order_key(&self) -> (i64, &str) {
        (self.created_at, &self.id)
    }
}

/// A `federates_with` item: SPIRE's API sends bare names but accepts the `spiffe://` form too,
/// so both are taken.
fn federated_td(name: &str) -> Result<TrustDomain, String> {
    let bare = name.strip_prefix("spiffe://").unwrap_or(name);
    TrustDomain::new(bare).map_err(|e| format!("{name:?}: {e}"))
}

fn wire_id(id: Option<&types::Spiffeid>) -> Result<SpiffeId, String> {
    let id = id.ok_or("is missing")?;
    let td = TrustDomain::new(&id.trust_domain).map_err(|e| e.to_string())?;
    SpiffeId::from_path(&td, &id.path).map_err(|e| e.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn entry(id: &str, spiffe_path: &str, selectors: &[&str]) -> WorkloadEntry {
        let td = TrustDomain::new("example.org").unwrap();
        WorkloadEntry {
            id: id.into(),
            spiffe_id: SpiffeId::from_path(&td, spiffe_path).unwrap(),
            selectors: selectors
                .iter()
                .map(|s| Selector::parse(s).unwrap())
                .collect(),
            x509_svid_ttl: 0,
            dns_names: vec![],
            hint: String::new(),
            revision_number: 0,
            created_at: 0,
            federates_with: BTreeSet::new(),
        }
    }

    fn caller(selectors: &[&str]) -> BTreeSet<Selector> {
        selectors
            .iter()
            .map(|s| Selector::parse(s).unwrap())
            .collect()
    }

    #[test]
    fn entry_matches_when_the_caller_has_all_its_selectors() {
        let e = entry("e1", "/web", &["unix:uid:1000", "unix:gid:100"]);
        assert!(e.matches(&caller(&["unix:uid:1000", "unix:gid:100", "unix:user:ann"])));
        assert!(!e.matches(&caller(&["unix:uid:1000"])));
        assert!(!e.matches(&caller(&["unix:uid:1001", "unix:gid:100"])));
    }

    #[test]
    fn selector_values_are_compared_whole_and_by_type() {
        let e = entry("e1", "/web", &["unix:uid:100"]);
        assert!(!e.matches(&caller(&["unix:uid:1000"])));
        assert!(!e.matches(&caller(&["docker:uid:100"])));
    }

    #[test]
    fn entry_without_selectors_matches_nobody() {
        assert!(!entry("e1", "/web", &[]).matches(&caller(&["unix:uid:0"])));
    }

    #[test]
    fn alias_entry_never_matches_unix_selectors() {
        let alias = entry(
            "a",
            "/node",
            &["spiffe_id:spiffe://example.org/spire/agent/join_token/t"],
        );
        assert!(!alias.matches(&caller(&["unix:uid:0", "unix:gid:0", "unix:user:root"])));
    }

    #[test]
    fn parses_wire_entries_and_names_the_broken_field() {
        let mut wire = types::Entry {
            id: "e1".into(),
            spiffe_id: Some(types::Spiffeid {
                trust_domain: "example.org".into(),
                path: "/web".into(),
            }),
            selectors: vec![
                types::Selector {
                    r#type: "unix".into(),
                    value: "uid:1".into(),
                },
                types::Selector {
                    r#type: "unix".into(),
                    value: "uid:1".into(),
                },
            ],
            ..Default::default()
        };
        let parsed = WorkloadEntry::from_wire(&wire).unwrap();
        assert_eq!(parsed.spiffe_id.as_str(), "spiffe://example.org/web");
        assert_eq!(parsed.selectors.len(), 1, "duplicates collapse");

        wire.federates_with = vec!["partner.org".into(), "spiffe://other.org".into()];
        let parsed = WorkloadEntry::from_wire(&wire).unwrap();
        let names: Vec<_> = parsed
            .federates_with
            .iter()
            .map(TrustDomain::name)
            .collect();
        assert_eq!(names, ["other.org", "partner.org"]);

        wire.federates_with = vec!["Partner.org".into()];
        let err = WorkloadEntry::from_wire(&wire).unwrap_err().to_string();
        assert!(
            err.starts_with("entry \"e1\": federates_with: \"Partner.org\""),
            "{err}"
        );

        wire.federates_with.clear();
        wire.spiffe_id = None;
        let err = WorkloadEntry::from_wire(&wire).unwrap_err().to_string();
        assert_eq!(err, "entry \"e1\": spiffe_id: is missing");
    }

    #[test]
    fn changed_revision_or_id_needs_a_new_svid_but_selectors_do_not() {
        let old = entry("e1", "/web", &["unix:uid:1"]);
        let mut new = old.clone();
        new.selectors = vec![Selector::parse("unix:uid:2").unwrap()];
        assert!(old.same_svid_inputs(&new));
        new.revision_number = 1;
        assert!(!old.same_svid_inputs(&new));
        let moved = entry("e1", "/api", &["unix:uid:1"]);
        assert!(!old.same_svid_inputs(&moved));
    }
}
