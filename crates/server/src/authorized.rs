//! Which entries an agent may hold SVIDs for.
//!
//! An agent is authorized for the entries parented to its own ID, the entries parented to
//! node aliases whose selectors it satisfies (aliases are parented to the server ID), and,
//! recursively, every entry parented to the SPIFFE ID of an entry already authorized.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use lanyard_datastore::{AttestedAgent, Entry};
use lanyard_spiffe::SpiffeId;

use crate::keyed_entry::KeyedEntry;

/// Every registration entry, indexed by parent, kept current by the handlers that write
/// entries and by the datastore's change feed. Entries are shared (`Arc`): an agent's
/// authorized set is a list of handles, not copies, so a lookup costs O(result) pointer copies.
/// Both sets are keyed by the ID inside each entry ([`KeyedEntry`]), so no ID is stored twice.
#[derive(Default)]
pub(crate) struct EntryIndex {
    entries: HashSet<KeyedEntry>,
    /// The children of each parent ID, in entry ID order, so a lookup walks them without a
    /// second map access per entry.
    by_parent: HashMap<SpiffeId, BTreeSet<KeyedEntry>>,
    /// How many `admin = true` entries name each SPIFFE ID, for authorizing admin callers.
    admins: HashMap<SpiffeId, usize>,
}

impl EntryIndex {
    pub(crate) fn new(entries: Vec<Entry>) -> Self {
        let mut index = Self {
            entries: HashSet::with_capacity(entries.len()),
            ..Self::default()
        };
        for e in entries {
            index.insert(e);
        }
        index
    }

    /// Adds or replaces one entry; false when the index already held it as it is.
    pub(crate) fn insert(&mut self, entry: Entry) -> bool {
        if self
            .entries
            .get(entry.id.as_str())
            .is_some_and(|held| *held.0 == entry)
        {
            return false;
        }
        self.remove(entry.id.as_str());
        let entry = Arc::new(entry);
        if entry.admin {
            *self.admins.entry(entry.spiffe_id.clone()).or_default() += 1;
        }
        // Cloning the parent ID only for a new parent (most entries share theirs).
        let sibling = KeyedEntry(Arc::clone(&entry));
        if let Some(siblings) = self.by_parent.get_mut(&entry.parent_id) {
            siblings.insert(sibling);
        } else {
            self.by_parent
                .insert(entry.parent_id.clone(), BTreeSet::from([sibling]));
        }
        self.entries.insert(KeyedEntry(entry));
        true
    }

    /// How many entries the index holds.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Forgets one entry; false when there was none.
    pub(crate) fn remove(&mut self, id: &str) -> bool {
        let Some(KeyedEntry(old)) = self.entries.take(id) else {
            return false;
        };
        if let Some(siblings) = self.by_parent.get_mut(&old.parent_id) {
            siblings.remove(id);
            if siblings.is_empty() {
                self.by_parent.remove(&old.parent_id);
            }
        }
        if old.admin
            && let Some(count) = self.admins.get_mut(&old.spiffe_id)
        {
            *count -= 1;
            if *count == 0 {
                self.admins.remove(&old.spiffe_id);
            }
        }
        true
    }

    /// Whether an entry with `admin = true` names `id` as its SPIFFE ID.
    pub(crate) fn is_admin(&self, id: &SpiffeId) -> bool {
        self.admins.contains_key(id)
    }

    fn children<'a>(&'a self, parent: &SpiffeId) -> impl Iterator<Item = &'a Arc<Entry>> + 'a {
        self.by_parent
            .get(parent)
            .into_iter()
            .flat_map(BTreeSet::iter)
            .map(|e| &e.0)
    }

    /// The entries `agent` is authorized for, each once, ordered by entry ID. Costs
    /// O(authorized entries), whatever the total.
    pub(crate) fn authorized(
        &self,
        agent: &AttestedAgent,
        server_id: &SpiffeId,
    ) -> Vec<Arc<Entry>> {
        self.walk(agent, server_id).into_iter().cloned().collect()
    }

    /// A digest of what [`Self::authorized`] returns, without copying it: the ID, revision
    /// number and creation time of every authorized entry. Any create, update or delete among
    /// them changes it (an update raises the revision; an entry deleted and created again
    /// under the same ID differs in creation time unless both happened in the same second).
    /// Watch streams compare it to decide whether an index change concerns their agent.
    pub(crate) fn authorized_digest(&self, agent: &AttestedAgent, server_id: &SpiffeId) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for entry in self.walk(agent, server_id) {
            (entry.id.as_str(), entry.revision_number, entry.created_at).hash(&mut hasher);
        }
        hasher.finish()
    }

    /// The entries `agent` is authorized for, by entry ID.
    fn walk<'a>(&'a self, agent: &AttestedAgent, server_id: &SpiffeId) -> Vec<&'a Arc<Entry>> {
        let node_selectors: BTreeSet<_> = agent.selectors.iter().collect();
        let mut queue: VecDeque<&SpiffeId> = VecDeque::from([&agent.id]);
        // Entries are deduplicated by identity (one `Arc` per entry in the index), which is
        // cheaper than comparing IDs.
        let mut taken: HashSet<*const Entry> = HashSet::new();
        let mut chosen: Vec<&Arc<Entry>> = Vec::new();
        for alias in self.children(server_id) {
            if !alias.selectors.is_empty()
                && alias.selectors.iter().all(|s| node_selectors.contains(s))
                && taken.insert(Arc::as_ptr(alias))
            {
                // Aliases themselves are delivered too, as SPIRE does.
                chosen.push(alias);
                queue.push_back(&alias.spiffe_id);
            }
        }

        let mut seen_ids: HashSet<&SpiffeId> = HashSet::new();
        while let Some(parent) = queue.pop_front() {
            if !seen_ids.insert(parent) {
                continue;
            }
            for child in self.children(parent) {
                if taken.insert(Arc::as_ptr(child)) {
                    chosen.push(child);
                    // Only an ID that parents entries can add more.
                    if self.by_parent.contains_key(&child.spiffe_id) {
                        queue.push_back(&child.spiffe_id);
                    }
                }
            }
        }
        // Each parent's children come in ID order, so this merges a few sorted runs (the
        // stable sort detects runs) rather than sorting from scratch.
        chosen.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        chosen
    }
}

/// The entries `agent` is authorized for, from a plain list (tests and one-off callers).
#[cfg(test)]
pub(crate) fn authorized_entries(
    entries: &[Entry],
    agent: &AttestedAgent,
    server_id: &SpiffeId,
) -> Vec<Entry> {
    EntryIndex::new(entries.to_vec())
        .authorized(agent, server_id)
        .into_iter()
        .map(|e| (*e).clone())
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lanyard_datastore::EntryId;
    use lanyard_spiffe::Selector;

    fn id(path: &str) -> SpiffeId {
        SpiffeId::parse(&format!("spiffe://example.org{path}")).unwrap()
    }

    pub(crate) fn entry(n: u32, spiffe: &str, parent: &str, selectors: &[&str]) -> Entry {
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

    pub(crate) fn agent(path: &str, selectors: &[&str]) -> AttestedAgent {
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
    fn admin_flag_follows_inserts_updates_and_removals() {
        let mut index = EntryIndex::default();
        let mut admin = entry(1, "/ops", "/spire/agent/x/1", &["unix:uid:0"]);
        admin.admin = true;
        index.insert(admin.clone());
        assert!(index.is_admin(&id("/ops")));

        // An update that clears the flag takes the admin right away.
        admin.admin = false;
        index.insert(admin.clone());
        assert!(!index.is_admin(&id("/ops")));

        admin.admin = true;
        index.insert(admin);
        let mut second = entry(2, "/ops", "/spire/agent/x/2", &["unix:uid:0"]);
        second.admin = true;
        index.insert(second);
        index.remove("e1");
        assert!(
            index.is_admin(&id("/ops")),
            "the second entry still grants it"
        );
        index.remove("e2");
        assert!(!index.is_admin(&id("/ops")));
    }

    #[test]
    fn digest_follows_the_agents_entries_and_ignores_the_rest() {
        let a = "/spire/agent/x/1";
        let mut index = EntryIndex::new(vec![entry(1, "/web", a, &["unix:uid:1"])]);
        let me = agent(a, &[]);
        let server = id("/spire/server");
        let before = index.authorized_digest(&me, &server);

        assert!(index.insert(entry(2, "/other", "/spire/agent/x/2", &["unix:uid:1"])));
        assert_eq!(index.authorized_digest(&me, &server), before);
        assert!(
            !index.insert(entry(2, "/other", "/spire/agent/x/2", &["unix:uid:1"])),
            "the same entry again changes nothing"
        );

        let mut updated = entry(1, "/web", a, &["unix:uid:2"]);
        updated.revision_number = 1;
        assert!(index.insert(updated));
        let after_update = index.authorized_digest(&me, &server);
        assert_ne!(after_update, before);

        assert!(index.insert(entry(3, "/web/child", "/web", &["unix:uid:3"])));
        assert_ne!(index.authorized_digest(&me, &server), after_update);
        assert!(index.remove("e3"));
        assert!(!index.remove("e3"));
        assert_eq!(index.authorized_digest(&me, &server), after_update);
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
