//! Reading every entry at once: what a server loads when it starts or reloads its cache.
//!
//! The general path (`entry_rows::with_children`) collects every row of every table before
//! building anything and keys children by entry ID strings: it held several copies of the
//! whole table at once (driver rows, row structs, hash maps with an owned key per selector),
//! 1.7 KB per entry at its peak for entries of 180 bytes, most of which stayed resident after
//! it was freed, and most of its time went into allocating and freeing them. Here
//! each table is scanned once, in storage order, and every row is turned into its final form
//! while the scan streams, so no copy of a table is ever held besides the entries themselves.
//!
//! The entries are read in storage order, which is cheap on every engine (an `ORDER BY id` on
//! SQLite walks the primary key index and looks each row up in the table, several times slower
//! than the scan), and sorted by ID in Rust. Children are read ordered by entry ID (an index
//! scan everywhere) and merged: each child belongs to the entry of the previous child or a
//! later one, found by a short forward step or, should an engine order IDs differently than
//! bytewise, by binary search.

use lanyard_spiffe::{Selector, SpiffeId, TrustDomain};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::entry_rows::ENTRY_COLUMNS;
use super::exec::{Sql, Tx, flag, int};
use crate::error::DatastoreError;
use crate::id::EntryId;
use crate::model::Entry;

/// Every entry in ID order, with its children.
pub(super) async fn all(tx: &mut Tx) -> Result<Vec<Entry>, DatastoreError> {
    let mut entries = Vec::new();
    tx.for_each_row(Sql::new(ENTRY_COLUMNS), |row| {
        entries.push(entry(row)?);
        Ok(())
    })
    .await?;
    entries.shrink_to_fit();
    entries.sort_unstable_by(|a, b| a.id.cmp(&b.id));

    let mut finder = Finder::default();
    selector_rows(tx, &mut entries, &mut finder).await?;
    tx.for_each_row(
        Sql::new("SELECT entry_id, name FROM entry_dns_names ORDER BY entry_id, position"),
        |row| {
            if let Some(i) = finder.find(&entries, str_at(row, 0)?) {
                entries[i].dns_names.push(str_at(row, 1)?.to_owned());
            }
            Ok(())
        },
    )
    .await?;
    tx.for_each_row(
        Sql::new("SELECT entry_id, trust_domain FROM entry_federates_with ORDER BY entry_id"),
        |row| {
            let id = str_at(row, 0)?;
            let Some(i) = finder.find(&entries, id) else {
                return Ok(());
            };
            let td = TrustDomain::new(str_at(row, 1)?).map_err(|e| {
                DatastoreError::Corrupt(format!("federated trust domain of entry '{id}': {e}"))
            })?;
            entries[i].federates_with.push(td);
            Ok(())
        },
    )
    .await?;

    for e in &mut entries {
        e.selectors = super::canonical::canonical_selectors(std::mem::take(&mut e.selectors));
        e.selectors.shrink_to_fit();
        e.federates_with.sort_by(|a, b| a.name().cmp(b.name()));
        e.federates_with.shrink_to_fit();
        e.dns_names.shrink_to_fit();
    }
    Ok(entries)
}

/// Adds the rows of `entry_selectors` to `entries` (sorted by ID), one row per selector.
async fn selector_rows(
    tx: &mut Tx,
    entries: &mut [Entry],
    finder: &mut Finder,
) -> Result<(), DatastoreError> {
    tx.for_each_row(
        Sql::new("SELECT entry_id, type, value FROM entry_selectors ORDER BY entry_id"),
        |row| {
            let id = str_at(row, 0)?;
            let Some(i) = finder.find(entries, id) else {
                return Ok(());
            };
            let selector = Selector::new(str_at(row, 1)?, str_at(row, 2)?)
                .map_err(|e| DatastoreError::Corrupt(format!("selector of entry '{id}': {e}")))?;
            entries[i].selectors.push(selector);
            Ok(())
        },
    )
    .await
}

/// Finds the entry a child row belongs to, by its ID, in entries sorted by ID.
#[derive(Default)]
struct Finder {
    /// The position of the entry the previous child belonged to.
    last: usize,
}

/// How many entries past the last one found are tried before a binary search: children of
/// consecutive entries mostly, with a few entries without children between them.
const STEPS: usize = 4;

impl Finder {
    /// The position of the entry with ID `id`, if any. The tables' foreign keys rule out a
    /// child without its entry; were there one (a file written with foreign keys off), it is
    /// skipped, as reading entries by ID skips it.
    fn find(&mut self, entries: &[Entry], id: &str) -> Option<usize> {
        let ahead = entries.get(self.last..).unwrap_or_default();
        let found = ahead
            .iter()
            .take(STEPS)
            .position(|e| e.id.as_str() == id)
            .map(|step| self.last + step)
            .or_else(|| entries.binary_search_by(|e| e.id.as_str().cmp(id)).ok())?;
        self.last = found;
        Some(found)
    }
}

/// The entry of a row selected with [`ENTRY_COLUMNS`], without children.
fn entry(row: &AnyRow) -> Result<Entry, DatastoreError> {
    let raw_id = str_at(row, 0)?;
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        DatastoreError::Corrupt(format!("{what} of entry '{raw_id}': {e}"))
    };
    let ttl = |i: usize, what: &str| {
        int(row, i).and_then(|v| i32::try_from(v).map_err(|e| corrupt(what, &e)))
    };
    Ok(Entry {
        id: EntryId::parse(raw_id).map_err(|e| corrupt("id", &e))?,
        spiffe_id: SpiffeId::parse(str_at(row, 1)?).map_err(|e| corrupt("spiffe_id", &e))?,
        parent_id: SpiffeId::parse(str_at(row, 2)?).map_err(|e| corrupt("parent_id", &e))?,
        x509_svid_ttl: ttl(3, "x509_svid_ttl")?,
        jwt_svid_ttl: ttl(4, "jwt_svid_ttl")?,
        admin: flag(row, 5)?,
        downstream: flag(row, 6)?,
        expires_at: int(row, 7)?,
        store_svid: flag(row, 8)?,
        hint: str_at(row, 9)?.to_owned(),
        revision_number: int(row, 10)?,
        created_at: int(row, 11)?,
        selectors: Vec::new(),
        dns_names: Vec::new(),
        federates_with: Vec::new(),
    })
}

/// Column `i` of `row` as text, borrowed from the row.
fn str_at(row: &AnyRow, i: usize) -> Result<&str, DatastoreError> {
    Ok(row.try_get::<&str, _>(i)?)
}
