//! `--only`: which groups of benchmarks a run includes.
//!
//! Benchmarks that share their setup run as one group, so asking for one of them runs the
//! whole group: the fleet (S2); the workload group (S8, S9, S12, and the agent's memory row,
//! also numbered S6); the in-memory lookup (S4); the server start (S5, and S6 for the server's
//! memory, both read from the same starts); the durable writes (S7); S8 across many real
//! agents (`S8A`: its rows are numbered S8 like the one-agent row, which `S8` selects); the
//! idle agents (S13); the first fetches of identities not cached (S10); Lanyard beside SPIRE
//! (`VS`, see `versus/`).

use std::collections::BTreeSet;

/// A group of benchmarks that share their setup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Group {
    /// S2: the simulated agent fleet.
    Fleet,
    /// S8, S9, S12 and the agent's memory: a real agent serving this process.
    Workload,
    /// S4: the server's authorized-entries index, in process.
    Lookup,
    /// S5 and S6: server starts on prepared datastores.
    Start,
    /// S7: entry writes through the admin API.
    Writes,
    /// S8 across agents: many real agents, one stream each, changes pushed to one of them.
    Push,
    /// S13: idle agents sampled for CPU and memory.
    Idle,
    /// S10: first fetches of identities the agent has not signed yet.
    Uncached,
    /// VS: Lanyard beside SPIRE.
    Versus,
}

/// The IDs `--only` accepts and the group each selects.
const IDS: &[(&str, Group)] = &[
    ("S2", Group::Fleet),
    ("S4", Group::Lookup),
    ("S5", Group::Start),
    ("S6", Group::Start),
    ("S7", Group::Writes),
    ("S8", Group::Workload),
    ("S9", Group::Workload),
    ("S12", Group::Workload),
    ("S8A", Group::Push),
    ("S13", Group::Idle),
    ("S10", Group::Uncached),
    ("VS", Group::Versus),
];

/// The groups a run includes, and whether `--only` named them.
#[derive(Clone, Debug)]
pub(crate) struct Selection {
    groups: BTreeSet<Group>,
    named: bool,
}

impl Selection {
    /// Every group (no `--only`), or the groups of the IDs given (`S4`, `s5`, ...).
    pub(crate) fn new(only: &[String]) -> anyhow::Result<Self> {
        if only.is_empty() {
            return Ok(Self {
                groups: IDS.iter().map(|(_, g)| *g).collect(),
                named: false,
            });
        }
        let mut groups = BTreeSet::new();
        for id in only {
            let wanted = id.trim().to_ascii_uppercase();
            let group = IDS
                .iter()
                .find(|(known, _)| *known == wanted)
                .map(|(_, g)| *g)
                .ok_or_else(|| {
                    let known: Vec<&str> = IDS.iter().map(|(k, _)| *k).collect();
                    anyhow::anyhow!(
                        "--only {id}: no such benchmark in this harness; known are {}",
                        known.join(", ")
                    )
                })?;
            groups.insert(group);
        }
        Ok(Self {
            groups,
            named: true,
        })
    }

    /// Whether the run includes `group`.
    pub(crate) fn has(&self, group: Group) -> bool {
        self.groups.contains(&group)
    }

    /// Whether `--only` asked for `group` by name (a run of everything skips what it cannot
    /// run; a run that names it fails instead).
    pub(crate) fn named(&self, group: Group) -> bool {
        self.named && self.has(group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_list_selects_every_group() {
        let all = Selection::new(&[]).unwrap();
        for g in [
            Group::Fleet,
            Group::Workload,
            Group::Lookup,
            Group::Start,
            Group::Writes,
            Group::Push,
            Group::Idle,
        ] {
            assert!(all.has(g), "{g:?}");
        }
    }

    #[test]
    fn a_list_selects_only_the_groups_it_names() {
        let some = Selection::new(&ids(&["s4", " S6"])).unwrap();
        assert!(some.has(Group::Lookup));
        assert!(some.has(Group::Start));
        assert!(!some.has(Group::Writes));
        assert!(!some.has(Group::Fleet));
        assert!(!some.has(Group::Workload));
    }

    #[test]
    fn rejects_an_unknown_id_and_names_it() {
        let err = Selection::new(&ids(&["S4", "S3"])).unwrap_err().to_string();
        assert!(err.contains("S3"), "{err}");
        assert!(err.contains("S12"), "{err}");
    }
}
