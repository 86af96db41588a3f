//! Reading entry rows and their children (selectors, DNS names, federated trust domains).

use std::collections::HashMap;

use lanyard_spiffe::{Selector, SpiffeId, TrustDomain};
use sqlx::any::AnyRow;

use super::exec::{Sql, Tx, flag, int, text};
use crate::error::DatastoreError;
use crate::id::EntryId;
use crate::model::Entry;

/// Entry IDs per `IN (...)` list when loading children, well under every engine's bind limit.
const ID_CHUNK: usize = 500;

/// One row of `registered_entries`.
pub(super) struct EntryRow {
    pub(super) id: String,
    spiffe_id: String,
    parent_id: String,
    x509_svid_ttl: i64,
    jwt_svid_ttl: i64,
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

impl EntryRow {
    /// Reads a row selected with [`ENTRY_COLUMNS`].
    pub(super) fn from_row(row: &AnyRow) -> Result<Self, DatastoreError> {
        Ok(EntryRow {
            id: text(row, 0)?,
            spiffe_id: text(row, 1)?,
            parent_id: text(row, 2)?,
            x509_svid_ttl: int(row, 3)?,
            jwt_svid_ttl: int(row, 4)?,
            admin: flag(row, 5)?,
            downstream: flag(row, 6)?,
            expires_at: int(row, 7)?,
            store_svid: flag(row, 8)?,
            hint: text(row, 9)?,
            revision_number: int(row, 10)?,
            created_at: int(row, 11)?,
        })
    }
}

/// Runs a query selecting [`ENTRY_COLUMNS`] and reads its rows.
pub(super) async fn fetch_rows(tx: &mut Tx, sql: Sql) -> Result<Vec<EntryRow>, DatastoreError> {
    tx.fetch_all(sql)
        .await?
        .iter()
        .map(EntryRow::from_row)
        .collect()
}

/// Children of entries, grouped by entry ID.
#[derive(Default)]
pub(super) struct Children {
    selectors: HashMap<String, Vec<Selector>>,
    dns_names: HashMap<String, Vec<String>>,
    federates_with: HashMap<String, Vec<TrustDomain>>,
}

/// Loads the children of `rows` (in chunks of IDs) and builds the entries, keeping row order.
pub(super) async fn with_children(
    tx: &mut Tx,
    rows: Vec<EntryRow>,
) -> Result<Vec<Entry>, DatastoreError> {
    let mut children = Children::default();
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    for chunk in ids.chunks(ID_CHUNK) {
        let mut q =
            Sql::new("SELECT entry_id, type, value FROM entry_selectors WHERE entry_id IN ");
        q.push_list(chunk.iter().copied());
        children.add_selectors(tx.fetch_all(q).await?)?;

        let mut q = Sql::new("SELECT entry_id, name FROM entry_dns_names WHERE entry_id IN ");
        q.push_list(chunk.iter().copied());
        q.push(" ORDER BY entry_id, position");
        children.add_dns_names(tx.fetch_all(q).await?)?;

        let mut q =
            Sql::new("SELECT entry_id, trust_domain FROM entry_federates_with WHERE entry_id IN ");
        q.push_list(chunk.iter().copied());
        children.add_federates_with(tx.fetch_all(q).await?)?;
    }
    rows.into_iter().map(|row| children.build(row)).collect()
}

impl Children {
    fn add_selectors(&mut self, rows: Vec<AnyRow>) -> Result<(), DatastoreError> {
        for row in rows {
            let entry_id = text(&row, 0)?;
            let selector = Selector::new(&text(&row, 1)?, &text(&row, 2)?).map_err(|e| {
                DatastoreError::Corrupt(format!("selector of entry '{entry_id}': {e}"))
            })?;
            self.selectors.entry(entry_id).or_default().push(selector);
        }
        Ok(())
    }

    fn add_dns_names(&mut self, rows: Vec<AnyRow>) -> Result<(), DatastoreError> {
        for row in rows {
            self.dns_names
                .entry(text(&row, 0)?)
                .or_default()
                .push(text(&row, 1)?);
        }
        Ok(())
    }

    fn add_federates_with(&mut self, rows: Vec<AnyRow>) -> Result<(), DatastoreError> {
        for row in rows {
            let entry_id = text(&row, 0)?;
            let name = text(&row, 1)?;
            let td = TrustDomain::new(&name).map_err(|e| {
                DatastoreError::Corrupt(format!(
                    "federated trust domain of entry '{entry_id}': {e}"
                ))
            })?;
            self.federates_with.entry(entry_id).or_default().push(td);
        }
        Ok(())
    }

    /// The entry of `row` with its children. Selectors and trust domains are sorted here, in
    /// Rust, so the order does not depend on an engine's collation.
    pub(super) fn build(&mut self, row: EntryRow) -> Result<Entry, DatastoreError> {
        let corrupt = |what: &str, e: &dyn std::fmt::Display| {
            DatastoreError::Corrupt(format!("{what} of entry '{}': {e}", row.id))
        };
        let id = EntryId::parse(&row.id).map_err(|e| corrupt("id", &e))?;
        let spiffe_id = SpiffeId::parse(&row.spiffe_id).map_err(|e| corrupt("spiffe_id", &e))?;
        let parent_id = SpiffeId::parse(&row.parent_id).map_err(|e| corrupt("parent_id", &e))?;
        let x509_svid_ttl =
            i32::try_from(row.x509_svid_ttl).map_err(|e| corrupt("x509_svid_ttl", &e))?;
        let jwt_svid_ttl =
            i32::try_from(row.jwt_svid_ttl).map_err(|e| corrupt("jwt_svid_ttl", &e))?;
        let selectors = self.selectors.remove(&row.id).unwrap_or_default();
        let mut federates_with = self.federates_with.remove(&row.id).unwrap_or_default();
        federates_with.sort_by(|a, b| a.name().cmp(b.name()));
        let mut selectors = super::canonical::canonical_selectors(selectors);
        // Servers keep entries for their lifetime: no spare capacity.
        selectors.shrink_to_fit();
        Ok(Entry {
            selectors,
            dns_names: self.dns_names.remove(&row.id).unwrap_or_default(),
            federates_with,
            id,
            spiffe_id,
            parent_id,
            x509_svid_ttl,
            jwt_svid_ttl,
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
