//! The [`Datastore`] trait: what the server needs from storage.

use async_trait::async_trait;

use crate::error::DatastoreError;
use crate::id::EntryId;
use crate::model::{AttestedAgent, Entry, EntryFilter, NewEntry, StoredBundle, TokenUse};
use lanyard_ca::JournalStore;
use lanyard_spiffe::{SpiffeId, TrustDomain};

/// Storage for registration entries, join tokens, attested agents, bundles and (through
/// [`JournalStore`]) the CA journal.
///
/// Times are unix seconds. Every method is one transaction: it either happens completely or not
/// at all. All methods are cancel safe in that sense: dropping the future before it completes
/// rolls back whatever it had started.
#[async_trait]
pub trait Datastore: JournalStore + Send + Sync {
    /// Stores a new registration entry with its selectors, DNS names and federation list.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::AlreadyExists`] carrying the existing entry if one has the same SPIFFE
    /// ID, parent ID and selector set (in any order); [`DatastoreError::EntryIdInUse`] if a
    /// caller-chosen ID is taken; [`DatastoreError::InvalidInput`] if the entry has no selectors,
    /// a negative TTL or expiry, an oversized hint or an empty or oversized DNS name.
    async fn create_entry(&self, e: NewEntry) -> Result<Entry, DatastoreError>;

    /// The entry with this ID, if any.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn get_entry(&self, id: &EntryId) -> Result<Option<Entry>, DatastoreError>;

    /// Entries matching `filter`, in ID order, `page_size` at a time (0 returns all). Returns the
    /// page and, when more entries may follow, an opaque token for the next page.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::InvalidInput`] if `page_token` was not returned by this method.
    async fn list_entries(
        &self,
        filter: &EntryFilter,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<(Vec<Entry>, Option<String>), DatastoreError>;

    /// Deletes an entry and returns it, or `None` if there was none.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn delete_entry(&self, id: &EntryId) -> Result<Option<Entry>, DatastoreError>;

    /// Every entry, in ID order, read from one consistent snapshot.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn all_entries(&self) -> Result<Vec<Entry>, DatastoreError>;

    /// Stores a single-use join token valid until `expires_at` (exclusive).
    ///
    /// # Errors
    ///
    /// [`DatastoreError::TokenAlreadyExists`] for a repeated token;
    /// [`DatastoreError::InvalidInput`] for an empty or oversized one.
    async fn create_join_token(&self, token: &str, expires_at: i64) -> Result<(), DatastoreError>;

    /// Atomically uses up a join token. Of two concurrent calls with the same token, exactly one
    /// gets [`TokenUse::Accepted`].
    ///
    /// # Errors
    ///
    /// Database failures only; every token outcome is a [`TokenUse`].
    async fn consume_join_token(&self, token: &str, now: i64) -> Result<TokenUse, DatastoreError>;

    /// Records a newly attested agent with its node selectors.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::AgentAlreadyExists`] if the ID is already attested.
    async fn create_agent(&self, a: &AttestedAgent) -> Result<(), DatastoreError>;

    /// The attested agent with this ID, if any.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn get_agent(&self, id: &SpiffeId) -> Result<Option<AttestedAgent>, DatastoreError>;

    /// Records the serial and expiry of a renewed agent SVID as the agent's *new* serial; the
    /// current serial stays valid until [`Datastore::promote_agent_serial`].
    ///
    /// # Errors
    ///
    /// [`DatastoreError::AgentNotFound`] if the agent is unknown.
    async fn set_agent_new_serial(
        &self,
        id: &SpiffeId,
        serial: &str,
        expires_at: i64,
    ) -> Result<(), DatastoreError>;

    /// Makes the new serial current once the agent presents it (`serial`). Presenting the
    /// current serial is a no-op.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::AgentNotFound`] if the agent is unknown;
    /// [`DatastoreError::SerialMismatch`] if `serial` is neither its current nor its new serial.
    async fn promote_agent_serial(&self, id: &SpiffeId, serial: &str)
    -> Result<(), DatastoreError>;

    /// Every attested agent, in ID order.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn list_agents(&self) -> Result<Vec<AttestedAgent>, DatastoreError>;

    /// The bundle of a trust domain, if one is stored.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn get_bundle(&self, td: &TrustDomain) -> Result<Option<StoredBundle>, DatastoreError>;

    /// Replaces the X.509 authorities of a trust domain's bundle (creating it at sequence 1).
    /// The sequence grows only when the set of certificates changed; setting the same set in
    /// another order changes nothing. Returns the bundle as now stored.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn set_bundle_authorities(
        &self,
        td: &TrustDomain,
        x509: Vec<Vec<u8>>,
    ) -> Result<StoredBundle, DatastoreError>;

    /// Raises the sequence of a trust domain's bundle by one without changing its
    /// certificates, for changes the certificate set does not show (an authority tainted, a
    /// JWT key added). Returns the bundle as now stored, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn bump_bundle_sequence(
        &self,
        td: &TrustDomain,
    ) -> Result<Option<StoredBundle>, DatastoreError>;

    /// Finishes pending work and closes the connections; for SQLite this folds the
    /// write-ahead log back into the database file, so a copy of that file alone is complete.
    /// Called once at shutdown; nothing may use the datastore afterwards.
    async fn close(&self);
}
