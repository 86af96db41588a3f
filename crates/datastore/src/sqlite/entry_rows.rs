//! Reading entry rows and their children (selectors, DNS names, federated trust domains).

use std::collections::HashMap;

use lanyard_spiffe::{Selector, SpiffeId, TrustDomain};
use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite};

use crate::error::DatastoreError;
use crate::id::EntryId;
use crate::model::Entry;

/// Entry IDs per `IN (...)` list when loading children, well under SQLite's bind limit.
const ID_CHUNK: usize = 500;

/// One row of `registered_entries`.
#[derive(sqlx::FromRow)]
pub(super) struct EntryRow {
    pub(super) id: String,
    spiffe_id: String,
    parent_id: String,
    x509_svid_ttl: i32,
    jwt_svid_ttl: i32,
    admin: bool,
    downstream: bool,
    expires_at: i64,
    store_svid: bool,
    hint: String,
    revision_number: i64,
    created_at: i64,
}

/// The columns of [`EntryRow`], as selected from `registered_entries e`.
pub(super) const ENTRY_COLUMNS: &str = "SELECT e.id, e.spiffe_id, e.parent_id, e.x509_svid_ttl, \
     e.jwt_svid_ttl, e.admin, e.downstream, e.expires_at, e.store_svid, e.hint, \
     e.revision_number, e.created_at FROM registered_entries e";

/// Children of entries, grouped by entry ID.
#[derive(Default)]
pub(super) struct Children {
    selectors: HashMap<String, Vec<Selector>>,
    dns_names: HashMap<String, Vec<String>>,
    federates_with: HashMap<String, Vec<TrustDomain>>,
}

/// Loads the children of `rows` (in chunks of IDs) and builds the entries, keeping row order.
pub(super) async fn with_children(
    conn: &mut SqliteConnection,
    rows: Vec<EntryRow>,
) -> Result<Vec<Entry>, DatastoreError> {
    let mut children = Children::default();
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    for chunk in ids.chunks(ID_CHUNK) {
        let mut q =
            QueryBuilder::<Sqlite>::new("SELECT entry_id, type, value FROM entry_selectors");
        push_id_list(&mut q, chunk);
        q.push(" ORDER BY entry_id, type, value");
        children.add_selectors(q.build_query_as().fetch_all(&mut *conn).await?)?;

        let mut q = QueryBuilder::<Sqlite>::new("SELECT entry_id, name FROM entry_dns_names");
        push_id_list(&mut q, chunk);
        q.push(" ORDER BY entry_id, position");
        children.add_dns_names(q.build_query_as().fetch_all(&mut *conn).await?);

        let mut q =
            QueryBuilder::<Sqlite>::new("SELECT entry_id, trust_domain FROM entry_federates_with");
        push_id_list(&mut q, chunk);
        q.push(" ORDER BY entry_id, trust_domain");
        children.add_federates_with(q.build_query_as().fetch_all(&mut *conn).await?)?;
    }
    rows.into_iter().map(|row| children.build(row)).collect()
}

/// ` WHERE entry_id IN (?, ?, ...)`.
fn push_id_list(query: &mut QueryBuilder<Sqlite>, ids: &[&str]) {
    query.push(" WHERE entry_id IN (");
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind((*id).to_owned());
    }
    query.push(")");
}

impl Children {
    pub(super) fn add_selectors(
        &mut self,
        rows: Vec<(String, String, String)>,
    ) -> Result<(), DatastoreError> {
        for (entry_id, kind, value) in rows {
            let selector = Selector::new(&kind, &value).map_err(|e| {
                DatastoreError::Corrupt(format!("selector of entry '{entry_id}': {e}"))
            })?;
            self.selectors.entry(entry_id).or_default().push(selector);
        }
        Ok(())
    }

    pub(super) fn add_dns_names(&mut self, rows: Vec<(String, String)>) {
        for (entry_id, name) in rows {
            self.dns_names.entry(entry_id).or_default().push(name);
        }
    }

    pub(super) fn add_federates_with(
        &mut self,
        rows: Vec<(String, String)>,
    ) -> Result<(), DatastoreError> {
        for (entry_id, name) in rows {
            let td = TrustDomain::new(&name).map_err(|e| {
                DatastoreError::Corrupt(format!(
                    "federated trust domain of entry '{entry_id}': {e}"
                ))
            })?;
            self.federates_with.entry(entry_id).or_default().push(td);
        }
        Ok(())
    }

    pub(super) fn build(&mut self, row: EntryRow) -> Result<Entry, DatastoreError> {
        let corrupt = |what: &str, e: &dyn std::fmt::Display| {
            DatastoreError::Corrupt(format!("{what} of entry '{}': {e}", row.id))
        };
        let id = EntryId::parse(&row.id).map_err(|e| corrupt("id", &e))?;
        let spiffe_id = SpiffeId::parse(&row.spiffe_id).map_err(|e| corrupt("spiffe_id", &e))?;
        let parent_id = SpiffeId::parse(&row.parent_id).map_err(|e| corrupt("parent_id", &e))?;
        Ok(Entry {
            selectors: self.selectors.remove(&row.id).unwrap_or_default(),
            dns_names: self.dns_names.remove(&row.id).unwrap_or_default(),
            federates_with: self.federates_with.remove(&row.id).unwrap_or_default(),
            id,
            spiffe_id,
            parent_id,
            x509_svid_ttl: row.x509_svid_ttl,
            jwt_svid_ttl: row.jwt_svid_ttl,
            admin: row.admin,
            downstream: row.downstream,
            expires_at: row.expires_at,
            store_svid: row.store_svid,
            hint: row.hint,
            revision_number: row.revision_number,
            created_at: row.created_at,
        })
    }
}
