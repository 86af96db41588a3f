//! The entries an agent may get SVIDs for, kept between its signing calls.
//!
//! Working out an agent's authorized entries walks the index (its own entries, those of the
//! node aliases it matches, and their descendants): milliseconds for an agent with 10,000
//! entries. An agent signing on demand calls once per missing SVID, so the answer is kept per
//! agent until anything changes: it is used only while the entry revision and the agent's
//! selectors are those it was computed for.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use lanyard_datastore::{AttestedAgent, Entry};
use lanyard_spiffe::{Selector, SpiffeId};

/// Agents whose answers are kept; the least recently computed goes first. Signing rounds
/// come from a few agents at a time, so a small number covers them without holding every
/// agent's entries twice.
const KEPT_AGENTS: usize = 256;

/// An agent's authorized entries by entry ID.
pub(crate) type ById = Arc<HashMap<String, Arc<Entry>>>;

/// The kept answers.
#[derive(Default)]
pub(crate) struct AuthorizedCache {
    inner: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    by_agent: HashMap<SpiffeId, Answer>,
    /// Agents in the order their answers were computed.
    order: VecDeque<SpiffeId>,
}

struct Answer {
    revision: u64,
    selectors: Vec<Selector>,
    by_id: ById,
}

impl AuthorizedCache {
    /// `agent`'s authorized entries at entry revision `revision`: the kept answer when it was
    /// computed at that revision for the same selectors, else `compute`'s, which is kept.
    ///
    /// `revision` must be read before `compute` runs: a change landing in between is then
    /// either in the answer or raises the revision past the one it is kept for.
    pub(crate) fn get(
        &self,
        agent: &AttestedAgent,
        revision: u64,
        compute: impl FnOnce() -> Vec<Arc<Entry>>,
    ) -> ById {
        let mut selectors = agent.selectors.clone();
        selectors.sort();
        if let Some(answer) = self.lock().by_agent.get(&agent.id)
            && answer.revision == revision
            && answer.selectors == selectors
        {
            return Arc::clone(&answer.by_id);
        }
        let by_id: ById = Arc::new(
            compute()
                .into_iter()
                .map(|e| (e.id.as_str().to_owned(), e))
                .collect(),
        );
        let mut kept = self.lock();
        if kept.by_agent.contains_key(&agent.id) {
            kept.order.retain(|id| id != &agent.id);
        } else if kept.by_agent.len() >= KEPT_AGENTS
            && let Some(oldest) = kept.order.pop_front()
        {
            kept.by_agent.remove(&oldest);
        }
        kept.order.push_back(agent.id.clone());
        kept.by_agent.insert(
            agent.id.clone(),
            Answer {
                revision,
                selectors,
                by_id: Arc::clone(&by_id),
            },
        );
        by_id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::authorized::tests::{agent, entry};

    fn one_entry() -> Vec<Arc<Entry>> {
        vec![Arc::new(entry(1, "/w", "/spire/agent/a", &["unix:uid:1"]))]
    }

    #[test]
    fn an_answer_is_reused_only_at_its_revision_and_for_the_same_selectors() {
        let cache = AuthorizedCache::default();
        let computed = Cell::new(0);
        let compute = || {
            computed.set(computed.get() + 1);
            one_entry()
        };
        let a = agent("/spire/agent/a", &["node:x"]);
        assert!(cache.get(&a, 5, compute).contains_key("e1"));
        cache.get(&a, 5, compute);
        assert_eq!(computed.get(), 1, "same revision: kept");
        cache.get(&a, 6, compute);
        assert_eq!(computed.get(), 2, "an entry changed");
        let moved = agent("/spire/agent/a", &["node:y"]);
        cache.get(&moved, 6, compute);
        assert_eq!(computed.get(), 3, "the agent's selectors changed");
        cache.get(&moved, 6, compute);
        assert_eq!(computed.get(), 3);
    }

    #[test]
    fn only_the_most_recent_agents_are_kept() {
        let cache = AuthorizedCache::default();
        for n in 0..=KEPT_AGENTS {
            cache.get(&agent(&format!("/spire/agent/{n}"), &[]), 1, one_entry);
        }
        let kept = cache.lock();
        assert_eq!(kept.by_agent.len(), KEPT_AGENTS);
        assert!(!kept.by_agent.contains_key(&agent("/spire/agent/0", &[]).id));
        assert_eq!(kept.order.len(), KEPT_AGENTS);
    }
}
