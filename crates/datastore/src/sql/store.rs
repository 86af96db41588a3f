//! The [`Datastore`] implementation: each method is one transaction around the functions of the
//! sibling modules.

use async_trait::async_trait;
use lanyard_spiffe::{SpiffeId, TrustDomain};

use super::{
    SqlDatastore, agent_list, agents, bundle_rows, bundles, changes, entries, entry_list,
    entry_snapshot, entry_update, federation, journal, owner, page, tokens, unix_now,
};
use crate::bundle::{BundleDeleteMode, FederationRelationship, StoredBundle};
use crate::change::Change;
use crate::datastore::Datastore;
use crate::error::DatastoreError;
use crate::id::EntryId;
use crate::model::{
    AgentFilter, AttestedAgent, Entry, EntryFilter, EntryUpdate, NewEntry, TokenUse,
};

/// Runs `$body` (which uses `$tx`) in a read or write transaction and commits it.
macro_rules! in_tx {
    ($self:ident, $begin:ident, |$tx:ident| $body:expr) => {{
        let mut $tx = $self.$begin().await?;
        let out = $body;
        $tx.commit().await?;
        Ok(out)
    }};
}

#[async_trait]
impl Datastore for SqlDatastore {
    async fn close(&self) {
        SqlDatastore::close(self).await;
    }

    fn query_count(&self) -> u64 {
        SqlDatastore::query_count(self)
    }

    async fn create_entry(&self, e: NewEntry) -> Result<Entry, DatastoreError> {
        in_tx!(self, write_tx, |tx| entries::create(&mut tx, e, unix_now())
            .await?)
    }

    async fn create_entries(
        &self,
        batch: Vec<NewEntry>,
    ) -> Result<Vec<Result<Entry, DatastoreError>>, DatastoreError> {
        in_tx!(self, write_tx, |tx| entries::create_batch(
            &mut tx,
            batch,
            unix_now()
        )
        .await?)
    }

    async fn get_entry(&self, id: &EntryId) -> Result<Option<Entry>, DatastoreError> {
        in_tx!(self, read_tx, |tx| entries::get(&mut tx, id).await?)
    }

    async fn list_entries(
        &self,
        filter: &EntryFilter,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<(Vec<Entry>, Option<String>), DatastoreError> {
        let after = page_token
            .map(|t| page::decode(t, "list_entries"))
            .transpose()?;
        in_tx!(self, read_tx, |tx| entry_list::list(
            &mut tx,
            filter,
            page_size,
            after.as_deref()
        )
        .await?)
    }

    async fn count_entries(&self, filter: &EntryFilter) -> Result<u64, DatastoreError> {
        in_tx!(self, read_tx, |tx| entry_list::count(&mut tx, filter)
            .await?)
    }

    async fn update_entry(&self, id: &EntryId, u: EntryUpdate) -> Result<Entry, DatastoreError> {
        in_tx!(self, write_tx, |tx| entry_update::update(
            &mut tx,
            id,
            u,
            unix_now()
        )
        .await?)
    }

    async fn delete_entry(&self, id: &EntryId) -> Result<Option<Entry>, DatastoreError> {
        in_tx!(self, write_tx, |tx| entries::delete(
            &mut tx,
            id,
            unix_now()
        )
        .await?)
    }

    async fn all_entries(&self) -> Result<Vec<Entry>, DatastoreError> {
        in_tx!(self, read_tx, |tx| entry_snapshot::all(&mut tx).await?)
    }

    async fn entries_snapshot(&self) -> Result<(Vec<Entry>, u64), DatastoreError> {
        in_tx!(self, read_tx, |tx| {
            let position = changes::latest(&mut tx).await?;
            (entry_snapshot::all(&mut tx).await?, position)
        })
    }

    async fn create_join_token(&self, token: &str, expires_at: i64) -> Result<(), DatastoreError> {
        in_tx!(self, write_tx, |tx| tokens::create(
            &mut tx, token, expires_at
        )
        .await?)
    }

    async fn consume_join_token(&self, token: &str, now: i64) -> Result<TokenUse, DatastoreError> {
        in_tx!(self, write_tx, |tx| tokens::consume(&mut tx, token, now)
            .await?)
    }

    async fn create_agent(&self, a: &AttestedAgent) -> Result<(), DatastoreError> {
        in_tx!(self, write_tx, |tx| agents::create(&mut tx, a, unix_now())
            .await?)
    }

    async fn get_agent(&self, id: &SpiffeId) -> Result<Option<AttestedAgent>, DatastoreError> {
        in_tx!(self, read_tx, |tx| agents::get(&mut tx, id).await?)
    }

    async fn set_agent_new_serial(
        &self,
        id: &SpiffeId,
        serial: &str,
        expires_at: i64,
    ) -> Result<(), DatastoreError> {
        in_tx!(self, write_tx, |tx| agents::set_new_serial(
            &mut tx,
            id,
            serial,
            expires_at,
            unix_now()
        )
        .await?)
    }

    async fn promote_agent_serial(
        &self,
        id: &SpiffeId,
        serial: &str,
    ) -> Result<(), DatastoreError> {
        in_tx!(self, write_tx, |tx| agents::promote_serial(
            &mut tx,
            id,
            serial,
            unix_now()
        )
        .await?)
    }

    async fn list_agents(&self) -> Result<Vec<AttestedAgent>, DatastoreError> {
        in_tx!(self, read_tx, |tx| agents::list(&mut tx).await?)
    }

    async fn query_agents(
        &self,
        filter: &AgentFilter,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<(Vec<AttestedAgent>, Option<String>), DatastoreError> {
        let after = page_token
            .map(|t| page::decode(t, "query_agents"))
            .transpose()?;
        in_tx!(self, read_tx, |tx| agent_list::query(
            &mut tx,
            filter,
            page_size,
            after.as_deref()
        )
        .await?)
    }

    async fn count_agents(&self, filter: &AgentFilter) -> Result<u64, DatastoreError> {
        in_tx!(self, read_tx, |tx| agent_list::count(&mut tx, filter)
            .await?)
    }

    async fn delete_agent(&self, id: &SpiffeId) -> Result<Option<AttestedAgent>, DatastoreError> {
        in_tx!(self, write_tx, |tx| agent_list::delete(
            &mut tx,
            id,
            unix_now()
        )
        .await?)
    }

    async fn set_agent_banned(&self, id: &SpiffeId) -> Result<AttestedAgent, DatastoreError> {
        in_tx!(self, write_tx, |tx| agent_list::ban(
            &mut tx,
            id,
            unix_now()
        )
        .await?)
    }

    async fn reattest_agent(&self, a: &AttestedAgent) -> Result<(), DatastoreError> {
        in_tx!(self, write_tx, |tx| agent_list::reattest(
            &mut tx,
            a,
            unix_now()
        )
        .await?)
    }

    async fn agents_snapshot(&self) -> Result<(Vec<AttestedAgent>, u64), DatastoreError> {
        in_tx!(self, read_tx, |tx| {
            let position = changes::latest(&mut tx).await?;
            (agents::list(&mut tx).await?, position)
        })
    }

    async fn get_bundle(&self, td: &TrustDomain) -> Result<Option<StoredBundle>, DatastoreError> {
        in_tx!(self, read_tx, |tx| bundle_rows::get(&mut tx, td).await?)
    }

    async fn set_bundle_authorities(
        &self,
        td: &TrustDomain,
        x509: Vec<Vec<u8>>,
    ) -> Result<StoredBundle, DatastoreError> {
        in_tx!(self, write_tx, |tx| bundles::set_authorities(
            &mut tx,
            td,
            x509,
            unix_now()
        )
        .await?)
    }

    async fn bump_bundle_sequence(
        &self,
        td: &TrustDomain,
    ) -> Result<Option<StoredBundle>, DatastoreError> {
        in_tx!(self, write_tx, |tx| bundles::bump_sequence(
            &mut tx,
            td,
            unix_now()
        )
        .await?)
    }

    async fn list_bundles(
        &self,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<(Vec<StoredBundle>, Option<String>), DatastoreError> {
        let after = page_token
            .map(|t| page::decode(t, "list_bundles"))
            .transpose()?;
        in_tx!(self, read_tx, |tx| bundles::list(
            &mut tx,
            page_size,
            after.as_deref()
        )
        .await?)
    }

    async fn count_bundles(&self) -> Result<u64, DatastoreError> {
        in_tx!(self, read_tx, |tx| bundles::count(&mut tx).await?)
    }

    async fn create_bundle(&self, b: &StoredBundle) -> Result<StoredBundle, DatastoreError> {
        in_tx!(self, write_tx, |tx| bundles::create(&mut tx, b, unix_now())
            .await?)
    }

    async fn put_bundle(&self, b: &StoredBundle) -> Result<StoredBundle, DatastoreError> {
        in_tx!(self, write_tx, |tx| bundles::put(
            &mut tx,
            b,
            false,
            unix_now()
        )
        .await?)
    }

    async fn update_bundle(&self, b: &StoredBundle) -> Result<StoredBundle, DatastoreError> {
        in_tx!(self, write_tx, |tx| bundles::put(
            &mut tx,
            b,
            true,
            unix_now()
        )
        .await?)
    }

    async fn delete_bundle(
        &self,
        td: &TrustDomain,
        mode: BundleDeleteMode,
    ) -> Result<StoredBundle, DatastoreError> {
        in_tx!(self, write_tx, |tx| bundles::delete(
            &mut tx,
            td,
            mode,
            unix_now()
        )
        .await?)
    }

    async fn create_federation_relationship(
        &self,
        r: &FederationRelationship,
    ) -> Result<FederationRelationship, DatastoreError> {
        in_tx!(self, write_tx, |tx| federation::create(
            &mut tx,
            r,
            unix_now()
        )
        .await?)
    }

    async fn get_federation_relationship(
        &self,
        td: &TrustDomain,
    ) -> Result<Option<FederationRelationship>, DatastoreError> {
        in_tx!(self, read_tx, |tx| federation::get(&mut tx, td).await?)
    }

    async fn list_federation_relationships(
        &self,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<(Vec<FederationRelationship>, Option<String>), DatastoreError> {
        let after = page_token
            .map(|t| page::decode(t, "list_federation_relationships"))
            .transpose()?;
        in_tx!(self, read_tx, |tx| federation::list(
            &mut tx,
            page_size,
            after.as_deref()
        )
        .await?)
    }

    async fn update_federation_relationship(
        &self,
        r: &FederationRelationship,
    ) -> Result<FederationRelationship, DatastoreError> {
        in_tx!(self, write_tx, |tx| federation::update(
            &mut tx,
            r,
            unix_now()
        )
        .await?)
    }

    async fn delete_federation_relationship(&self, td: &TrustDomain) -> Result<(), DatastoreError> {
        in_tx!(self, write_tx, |tx| federation::delete(
            &mut tx,
            td,
            unix_now()
        )
        .await?)
    }

    async fn changes_since(&self, after: u64, limit: u32) -> Result<Vec<Change>, DatastoreError> {
        in_tx!(self, read_tx, |tx| changes::since(&mut tx, after, limit)
            .await?)
    }

    async fn latest_change(&self) -> Result<u64, DatastoreError> {
        in_tx!(self, read_tx, |tx| changes::latest(&mut tx).await?)
    }

    async fn prune_changes(&self, before: i64) -> Result<u64, DatastoreError> {
        in_tx!(self, write_tx, |tx| changes::prune(&mut tx, before).await?)
    }

    async fn load_ca_journal(&self, server_id: &str) -> Result<Option<Vec<u8>>, DatastoreError> {
        in_tx!(self, read_tx, |tx| journal::load(&mut tx, server_id)
            .await?)
    }

    async fn save_ca_journal(&self, server_id: &str, blob: &[u8]) -> Result<(), DatastoreError> {
        in_tx!(self, write_tx, |tx| journal::save(
            &mut tx,
            server_id,
            blob,
            unix_now()
        )
        .await?)
    }

    async fn claim_trust_domain(&self, td: &TrustDomain) -> Result<(), DatastoreError> {
        in_tx!(self, write_tx, |tx| owner::claim(&mut tx, td, unix_now())
            .await?)
    }
}
