//! Which entries an agent may hold SVIDs for.
//!
//! An agent is authorized for the entries parented to its own ID, the entries parented to
//! node aliases whose selectors it satisfies (aliases are parented to the server ID), and,
//! recursively, every entry parented to the SPIFFE ID of an entry already authorized.

use std::collections::{BTreeSet, HashMap, VecDeque};

use lanyard_datastore::{AttestedAgent, Entry};
use lanyard_spiffe::SpiffeId;

/// The entries `agent` is authorized for, each once, in a stable order.
//
// TODO: this walks every entry on each call; issue #7 replaces it with an in-memory index
// kept current from the datastore's change feed.
pub(crate) fn authorized_entries(
    entries: &[Entry],
    agent: &AttestedAgent,
    server_id: &SpiffeId,
) -> Vec<Entry> {
    let mut by_parent: HashMap<&SpiffeId, Vec<usize>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        by_parent.entry(&e.parent_id).or_default().push(i);
    }

    let node_selectors: BTreeSet<_> = agent.selectors.iter().collect();
    let mut queue: VecDeque<&SpiffeId> = VecDeque::from([&agent.id]);
    for &i in by_parent.get(server_id).into_iter().flatten() {
        let alias = &entries[i];
        if !alias.selectors.is_empty() && alias.selectors.iter().all(|s| node_selectors.contains(s))
        {
            queue.push_back(&alias.spiffe_id);
        }
    }

    let mut seen_ids: BTreeSet<&SpiffeId> = BTreeSet::new();
    let mut chosen: BTreeSet<usize> = BTreeSet::new();
    // Aliases themselves are delivered too, as SPIRE does.
    for &i in by_parent.get(server_id).into_iter().flatten() {
        if queue.contains(&&entries[i].spiffe_id) {
            chosen.insert(i);
        }
    }
    while let Some(parent) = queue.pop_front() {
        if !seen_ids.insert(parent) {
            continue;
        }
        for &i in by_parent.get(parent).into_iter().flatten() {
            if chosen.insert(i) {
                queue.push_back(&entries[i].spiffe_id);
            }
        }
    }
    chosen.into_iter().map(|i| entries[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanyard_datastore::EntryId;
    use lanyard_spiffe::Selector;

    fn id(path: &str) -> SpiffeId {
        SpiffeId::parse(&format!("spiffe://example.org{path}")).unwrap()
    }

    fn entry(n: u32, spiffe: &str, parent: &str, selectors: &[&str]) -> Entry {
        Entry {
            id: EntryId::parse(&format!("e{n}")).unwrap(),
            spiffe_id: id(spiffe),
            parent_id: id(parent),
            selectors: selectors
                .iter()
                .map(|s| Selector::parse(s).unwrap())
                .collect(),
            x509_svid_ttl: 0,
            jwt_svid_ttl: 0,
            federates_with: vec![],
            admin: false,
            downstream: false,
            expires_at: 0,
            dns_names: vec![],
            revision_number: 0,
            store_svid: false,
            hint: String::new(),
            created_at: 0,
        }
    }

    fn agent(path: &str, selectors: &[&str]) -> AttestedAgent {
        AttestedAgent {
            id: id(path),
            attestation_type: "join_token".into(),
            serial: "1".into(),
            expires_at: 0,
            new_serial: None,
            new_expires_at: 0,
            banned: false,
            can_reattest: false,
            selectors: selectors
                .iter()
                .map(|s| Selector::parse(s).unwrap())
                .collect(),
        }
    }

    fn ids(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(|e| e.id.to_string()).collect()
    }

    #[test]
    fn follows_aliases_and_descendants_but_not_other_agents() {
        let a = "/spire/agent/join_token/t1";
        let entries = vec![
            entry(
                1,
                "/alias",
                a,
                &["spiffe_id:spiffe://example.org/spire/agent/join_token/t1"],
            ),
            entry(2, "/web", "/alias", &["unix:uid:1"]),
            entry(3, "/web/child", "/web", &["unix:uid:2"]),
            entry(4, "/other", "/spire/agent/join_token/t2", &["unix:uid:1"]),
            entry(5, "/direct", a, &["unix:uid:3"]),
        ];
        let got = authorized_entries(&entries, &agent(a, &[]), &id("/spire/server"));
        assert_eq!(ids(&got), ["e1", "e2", "e3", "e5"]);
    }

    #[test]
    fn node_alias_applies_only_when_all_its_selectors_match() {
        let a = "/spire/agent/x/1";
        let entries = vec![
            entry(1, "/cluster", "/spire/server", &["k8s:cluster:prod"]),
            entry(2, "/app", "/cluster", &["unix:uid:1"]),
            entry(
                3,
                "/strict",
                "/spire/server",
                &["k8s:cluster:prod", "k8s:zone:b"],
            ),
            entry(4, "/never", "/strict", &["unix:uid:1"]),
        ];
        let got = authorized_entries(
            &entries,
            &agent(a, &["k8s:cluster:prod"]),
            &id("/spire/server"),
        );
        assert_eq!(ids(&got), ["e1", "e2"]);
    }

    #[test]
    fn survives_cycles() {
        let a = "/spire/agent/x/1";
        let entries = vec![
            entry(1, "/loop-a", a, &["unix:uid:1"]),
            entry(2, "/loop-b", "/loop-a", &["unix:uid:1"]),
            entry(3, "/loop-a", "/loop-b", &["unix:uid:2"]),
        ];
        let got = authorized_entries(&entries, &agent(a, &[]), &id("/spire/server"));
        assert_eq!(ids(&got), ["e1", "e2", "e3"]);
    }
}
