//! Filters as SQL conditions: the set comparisons of [`SelectorMatch`] on a child table
//! (entry selectors, entry trust domains, agent selectors), with every value bound.

use lanyard_spiffe::{Selector, TrustDomain};

use super::canonical::{canonical_selectors, selector_key};
use super::exec::Sql;
use crate::model::{EntryFilter, SelectorMatch};

/// The rows of a child table that form one set per parent row.
pub(super) struct ChildSet {
    /// The child table, aliased `s` in the generated SQL.
    table: &'static str,
    /// Its column referring to the parent.
    owner: &'static str,
    /// The parent's key column, as named in the outer query.
    parent: &'static str,
    /// The members of the given set, each a list of (column, value) that identify it.
    given: Vec<Vec<(&'static str, String)>>,
}

impl ChildSet {
    /// The selector set of entries (`registered_entries e`).
    pub(super) fn entry_selectors(given: &[Selector]) -> Self {
        Self::selectors("entry_selectors", "entry_id", "e.id", given)
    }

    /// The selector set of agents (`attested_agents a`).
    pub(super) fn agent_selectors(given: &[Selector]) -> Self {
        Self::selectors("agent_selectors", "agent_id", "a.spiffe_id", given)
    }

    fn selectors(
        table: &'static str,
        owner: &'static str,
        parent: &'static str,
        given: &[Selector],
    ) -> Self {
        let given = canonical_selectors(given.to_vec())
            .iter()
            .map(|s| {
                vec![
                    ("type", s.kind().to_owned()),
                    ("value", s.value().to_owned()),
                ]
            })
            .collect();
        ChildSet {
            table,
            owner,
            parent,
            given,
        }
    }

    /// The federated trust domain set of entries (`registered_entries e`).
    pub(super) fn entry_trust_domains(given: &[TrustDomain]) -> Self {
        let mut names: Vec<&str> = given.iter().map(TrustDomain::name).collect();
        names.sort_unstable();
        names.dedup();
        ChildSet {
            table: "entry_federates_with",
            owner: "entry_id",
            parent: "e.id",
            given: names
                .into_iter()
                .map(|n| vec![("trust_domain", n.to_owned())])
                .collect(),
        }
    }

    /// Appends ` AND <the parent's set matches the given set in this mode>`, with the set
    /// semantics of [`SelectorMatch::matches`] (an empty set is a subset of every set).
    pub(super) fn push_match(&self, q: &mut Sql, mode: SelectorMatch) {
        match mode {
            SelectorMatch::Exact => {
                self.push_none_outside(q);
                self.push_each_present(q);
            }
            SelectorMatch::Subset => self.push_none_outside(q),
            SelectorMatch::Superset => self.push_each_present(q),
            SelectorMatch::Any => {
                q.push(" AND ").push(self.parent).push(" IN (SELECT s.");
                q.push(self.owner)
                    .push(" FROM ")
                    .push(self.table)
                    .push(" s WHERE ");
                self.push_alternatives(q);
                q.push(")");
            }
        }
    }

    /// ` AND NOT EXISTS (a member of the parent's set outside the given set)`.
    fn push_none_outside(&self, q: &mut Sql) {
        q.push(" AND NOT EXISTS (SELECT 1 FROM ").push(self.table);
        q.push(" s WHERE s.")
            .push(self.owner)
            .push(" = ")
            .push(self.parent);
        q.push(" AND NOT (");
        self.push_alternatives(q);
        q.push("))");
    }

    /// ` AND EXISTS (member 1) AND EXISTS (member 2) ...`.
    fn push_each_present(&self, q: &mut Sql) {
        for member in &self.given {
            q.push(" AND EXISTS (SELECT 1 FROM ").push(self.table);
            q.push(" s WHERE s.")
                .push(self.owner)
                .push(" = ")
                .push(self.parent);
            for (column, value) in member {
                q.push(" AND s.")
                    .push(column)
                    .push(" = ")
                    .push_bind(value.as_str());
            }
            q.push(")");
        }
    }

    /// `(s.a = ? AND s.b = ?) OR ...`, or a false condition for an empty set.
    fn push_alternatives(&self, q: &mut Sql) {
        if self.given.is_empty() {
            q.push("1 = 0");
            return;
        }
        for (i, member) in self.given.iter().enumerate() {
            q.push(if i == 0 { "(" } else { " OR (" });
            for (j, (column, value)) in member.iter().enumerate() {
                if j > 0 {
                    q.push(" AND ");
                }
                q.push("s.")
                    .push(column)
                    .push(" = ")
                    .push_bind(value.as_str());
            }
            q.push(")");
        }
    }
}

/// Appends the entry filter's conditions (on `registered_entries e`).
pub(super) fn push_entry_filter(q: &mut Sql, filter: &EntryFilter) {
    if let Some(id) = &filter.spiffe_id {
        q.push(" AND e.spiffe_id = ").push_bind(id.as_str());
    }
    if let Some(id) = &filter.parent_id {
        q.push(" AND e.parent_id = ").push_bind(id.as_str());
    }
    if let Some(hint) = &filter.hint {
        q.push(" AND e.hint = ").push_bind(hint.as_str());
    }
    if let Some(downstream) = filter.downstream {
        q.push(" AND e.downstream = ").push_bind(downstream);
    }
    if let Some((selectors, mode)) = &filter.selectors {
        let set = ChildSet::entry_selectors(selectors);
        match mode {
            // Every entry has selectors, so the stored selector key answers equality exactly
            // and through an index.
            SelectorMatch::Exact => {
                let key = selector_key(&canonical_selectors(selectors.clone()));
                q.push(" AND e.selector_key = ").push_bind(key);
            }
            // Narrow to entries having one of the selectors (an index lookup) first.
            SelectorMatch::Subset => {
                set.push_match(q, SelectorMatch::Any);
                set.push_match(q, SelectorMatch::Subset);
            }
            mode => set.push_match(q, *mode),
        }
    }
    if let Some((domains, mode)) = &filter.federates_with {
        ChildSet::entry_trust_domains(domains).push_match(q, *mode);
    }
}
