//! Benchmark support for `lanyard-bench`: the server's own in-memory structures, built from
//! plain data, so the harness times the code that agent RPCs run instead of a copy of it.
//!
//! Hidden from the documentation and not a supported API: it follows the server's internals
//! and changes with them.

use std::collections::HashMap;

use lanyard_datastore::{AttestedAgent, Entry};
use lanyard_spiffe::{SpiffeId, TrustDomain};

use crate::ServerError;
use crate::authorized::EntryIndex;

/// The entry index and agent cache a server builds at start, for timing the authorized-entries
/// lookup that `GetAuthorizedEntries` and every SVID request run.
pub struct AuthorizedLookup {
    index: EntryIndex,
    agents: HashMap<SpiffeId, AttestedAgent>,
    server_id: SpiffeId,
}

impl AuthorizedLookup {
    /// Indexes `entries` and `agents` as a server for `trust_domain` does when it starts.
    ///
    /// # Errors
    ///
    /// [`ServerError::Internal`] if the trust domain yields no valid server ID (a bug).
    pub fn new(
        trust_domain: &TrustDomain,
        entries: Vec<Entry>,
        agents: Vec<AttestedAgent>,
    ) -> Result<Self, ServerError> {
        let server_id = SpiffeId::from_segments(trust_domain, &["spire", "server"])
            .map_err(|e| ServerError::Internal(format!("server ID: {e}")))?;
        Ok(Self {
            index: EntryIndex::new(entries),
            agents: agents.into_iter().map(|a| (a.id.clone(), a)).collect(),
            server_id,
        })
    }

    /// The server's own ID, `spiffe://<td>/spire/server`: node aliases are parented to it.
    pub fn server_id(&self) -> &SpiffeId {
        &self.server_id
    }

    /// How many entries the index holds.
    pub fn entries(&self) -> usize {
        self.index.len()
    }

    /// What an agent RPC computes for the agent `agent`: the cached agent record, then the
    /// entries it is authorized for (built and dropped, as a handler does after encoding them).
    /// Returns how many there were, or `None` for an agent the cache does not hold.
    pub fn authorized_count(&self, agent: &SpiffeId) -> Option<usize> {
        let agent = self.agents.get(agent)?;
        Some(self.index.authorized(agent, &self.server_id).len())
    }
}
