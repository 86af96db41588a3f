//! [`ServerJournal`]: one server's CA journal in a shared datastore, as the CA manager's
//! [`JournalStore`].

use std::sync::Arc;

use async_trait::async_trait;
use lanyard_ca::{JournalError, JournalStore};

use crate::datastore::Datastore;

/// The CA journal of one server. Servers sharing a database each sign with their own keys, kept
/// in their own data directories, so each keeps its own journal under its own server ID; one
/// journal per database would let the last server to start overwrite the others' CA state.
#[derive(Clone)]
pub struct ServerJournal {
    store: Arc<dyn Datastore>,
    server_id: String,
}

impl ServerJournal {
    /// The journal of `server_id` in `store`.
    pub fn new(store: Arc<dyn Datastore>, server_id: impl Into<String>) -> Self {
        ServerJournal {
            store,
            server_id: server_id.into(),
        }
    }

    /// The server this journal belongs to.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }
}

impl std::fmt::Debug for ServerJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerJournal")
            .field("server_id", &self.server_id)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl JournalStore for ServerJournal {
    async fn load_journal(&self) -> Result<Option<Vec<u8>>, JournalError> {
        self.store
            .load_ca_journal(&self.server_id)
            .await
            .map_err(JournalError::storage)
    }

    async fn save_journal(&self, blob: &[u8]) -> Result<(), JournalError> {
        self.store
            .save_ca_journal(&self.server_id, blob)
            .await
            .map_err(JournalError::storage)
    }
}
