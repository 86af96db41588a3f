//! The [`Datastore`] trait: what the server needs from storage.

use async_trait::async_trait;

use crate::bundle::{BundleDeleteMode, FederationRelationship, StoredBundle};
use crate::change::Change;
use crate::error::DatastoreError;
use crate::id::EntryId;
use crate::model::{
    AgentFilter, AttestedAgent, Entry, EntryFilter, EntryUpdate, NewEntry, TokenUse,
};
use lanyard_spiffe::{SpiffeId, TrustDomain};

/// Storage for registration entries, join tokens, attested agents, bundles, federation
/// relationships, the change feed and each server's CA journal (see [`ServerJournal`](crate::ServerJournal)).
///
/// Times are unix seconds. Every method is one transaction: it either happens completely or not
/// at all. All methods are cancel safe in that sense: dropping the future before it completes
/// rolls back whatever it had started.
#[async_trait]
pub trait Datastore: Send + Sync {
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

    /// Stores a batch of new entries in one transaction (one disk sync). Each item succeeds or
    /// fails on its own, with the errors of [`Datastore::create_entry`]; an item that
    /// duplicates an earlier item of the same batch is [`DatastoreError::AlreadyExists`].
    ///
    /// # Errors
    ///
    /// The outer error is for database failures only, and then nothing was stored.
    async fn create_entries(
        &self,
        batch: Vec<NewEntry>,
    ) -> Result<Vec<Result<Entry, DatastoreError>>, DatastoreError>;

    /// Applies `u` to an entry in one transaction and bumps its revision number by one.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::EntryNotFound`] if there is no such entry;
    /// [`DatastoreError::AlreadyExists`] carrying the other entry if the result would have
    /// the same SPIFFE ID, parent ID and selector set as another entry;
    /// [`DatastoreError::InvalidInput`] if the result breaks a rule of
    /// [`Datastore::create_entry`].
    async fn update_entry(&self, id: &EntryId, u: EntryUpdate) -> Result<Entry, DatastoreError>;

    /// How many entries match `filter`.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn count_entries(&self, filter: &EntryFilter) -> Result<u64, DatastoreError>;

    /// Every entry plus the change-feed position read before them, in one snapshot:
    /// replaying [`Datastore::changes_since`] that position onto the entries misses nothing.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn entries_snapshot(&self) -> Result<(Vec<Entry>, u64), DatastoreError>;

    /// Agents matching `filter`, in ID order, `page_size` at a time (0 returns all), with an
    /// opaque token for the next page when more may follow.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::InvalidInput`] if `page_token` was not returned by this method.
    async fn query_agents(
        &self,
        filter: &AgentFilter,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<(Vec<AttestedAgent>, Option<String>), DatastoreError>;

    /// How many agents match `filter`.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn count_agents(&self, filter: &AgentFilter) -> Result<u64, DatastoreError>;

    /// Evicts an agent: its record and node selectors go, so it must attest again. Returns the
    /// agent, or `None` if there was none.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn delete_agent(&self, id: &SpiffeId) -> Result<Option<AttestedAgent>, DatastoreError>;

    /// Bans an agent: it may neither renew nor re-attest, and its serials are cleared (an empty
    /// serial matches no presented certificate). Returns the agent as now stored.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::AgentNotFound`] if the agent is unknown.
    async fn set_agent_banned(&self, id: &SpiffeId) -> Result<AttestedAgent, DatastoreError>;

    /// Replaces an attested agent's attestation type, serial, expiry, re-attestation flag and
    /// node selectors with those of `a`, and clears its pending new serial.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::AgentNotFound`] if the agent is unknown;
    /// [`DatastoreError::InvalidInput`] naming the agent if it is banned.
    async fn reattest_agent(&self, a: &AttestedAgent) -> Result<(), DatastoreError>;

    /// Every agent plus the change-feed position read before them, like
    /// [`Datastore::entries_snapshot`].
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn agents_snapshot(&self) -> Result<(Vec<AttestedAgent>, u64), DatastoreError>;

    /// Bundles in trust domain order, `page_size` at a time (0 returns all), with an opaque
    /// token for the next page when more may follow.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::InvalidInput`] if `page_token` was not returned by this method.
    async fn list_bundles(
        &self,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<(Vec<StoredBundle>, Option<String>), DatastoreError>;

    /// How many bundles are stored.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn count_bundles(&self) -> Result<u64, DatastoreError>;

    /// Stores a new bundle at its given sequence (0 becomes 1). Returns it as stored.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::BundleAlreadyExists`] if the trust domain has one;
    /// [`DatastoreError::InvalidInput`] if a tainted certificate is not among the authorities
    /// or a JWT key ID is empty or repeated.
    async fn create_bundle(&self, b: &StoredBundle) -> Result<StoredBundle, DatastoreError>;

    /// Creates a bundle or replaces every field of the stored one. The sequence becomes the
    /// given one if that is higher than the stored one; otherwise the stored one plus one if
    /// the content changed, else it stays. Returns the bundle as stored.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::InvalidInput`] as for [`Datastore::create_bundle`].
    async fn put_bundle(&self, b: &StoredBundle) -> Result<StoredBundle, DatastoreError>;

    /// Replaces a stored bundle, with the sequence rule of [`Datastore::put_bundle`].
    ///
    /// # Errors
    ///
    /// [`DatastoreError::BundleNotFound`] if there is none; otherwise as for
    /// [`Datastore::put_bundle`].
    async fn update_bundle(&self, b: &StoredBundle) -> Result<StoredBundle, DatastoreError>;

    /// Deletes a trust domain's bundle, doing with the entries that federate with it what
    /// `mode` says. Returns the deleted bundle.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::BundleNotFound`] if there is none; [`DatastoreError::BundleInUse`]
    /// in [`BundleDeleteMode::Restrict`] when entries federate with the trust domain.
    async fn delete_bundle(
        &self,
        td: &TrustDomain,
        mode: BundleDeleteMode,
    ) -> Result<StoredBundle, DatastoreError>;

    /// Stores a new federation relationship.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::FederationRelationshipAlreadyExists`] if the trust domain has one;
    /// [`DatastoreError::InvalidInput`] if the endpoint URL is not an `https://` URL of at most
    /// 2048 bytes.
    async fn create_federation_relationship(
        &self,
        r: &FederationRelationship,
    ) -> Result<FederationRelationship, DatastoreError>;

    /// The federation relationship with `td`, if any.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn get_federation_relationship(
        &self,
        td: &TrustDomain,
    ) -> Result<Option<FederationRelationship>, DatastoreError>;

    /// Federation relationships in trust domain order, `page_size` at a time (0 returns all).
    ///
    /// # Errors
    ///
    /// [`DatastoreError::InvalidInput`] if `page_token` was not returned by this method.
    async fn list_federation_relationships(
        &self,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<(Vec<FederationRelationship>, Option<String>), DatastoreError>;

    /// Replaces a federation relationship.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::FederationRelationshipNotFound`] if there is none;
    /// [`DatastoreError::InvalidInput`] as for [`Datastore::create_federation_relationship`].
    async fn update_federation_relationship(
        &self,
        r: &FederationRelationship,
    ) -> Result<FederationRelationship, DatastoreError>;

    /// Deletes the federation relationship with `td` (its bundle stays).
    ///
    /// # Errors
    ///
    /// [`DatastoreError::FederationRelationshipNotFound`] if there is none.
    async fn delete_federation_relationship(&self, td: &TrustDomain) -> Result<(), DatastoreError>;

    /// Changes after position `after`, in order, at most `limit` of them (0: all).
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn changes_since(&self, after: u64, limit: u32) -> Result<Vec<Change>, DatastoreError>;

    /// The newest change's position; 0 when there was never a change.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn latest_change(&self) -> Result<u64, DatastoreError>;

    /// Deletes changes recorded before `before` (unix seconds), never the newest one, so
    /// [`Datastore::latest_change`] never goes back. Returns how many went.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn prune_changes(&self, before: i64) -> Result<u64, DatastoreError>;

    /// How many SQL statements this datastore has run since it was opened.
    fn query_count(&self) -> u64;

    /// Finishes pending work and closes the connections; for SQLite this folds the
    /// write-ahead log back into the database file, so a copy of that file alone is complete.
    /// Called once at shutdown; nothing may use the datastore afterwards.
    async fn close(&self);

    /// The CA journal last saved by the server `server_id`. A server with none of its own
    /// adopts the single journal of a database written before journals were kept per server,
    /// provided no server has saved a per-server journal since.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn load_ca_journal(&self, server_id: &str) -> Result<Option<Vec<u8>>, DatastoreError>;

    /// Replaces the CA journal of the server `server_id`; durable when it returns. Other
    /// servers' journals are untouched.
    ///
    /// # Errors
    ///
    /// Database failures only.
    async fn save_ca_journal(&self, server_id: &str, blob: &[u8]) -> Result<(), DatastoreError>;

    /// Records `td` as the trust domain this database serves when none is recorded, or checks
    /// it against the recorded one. A server calls it at start: servers of one trust domain
    /// may share a database, servers of different ones must not (each would publish its CA
    /// into the other's bundles).
    ///
    /// # Errors
    ///
    /// [`DatastoreError::TrustDomainMismatch`] when the database serves another trust domain.
    async fn claim_trust_domain(&self, td: &TrustDomain) -> Result<(), DatastoreError>;
}
