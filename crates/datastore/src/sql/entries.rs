//! Registration entries: create (one or a batch), read, delete. Reading all of them is
//! `entry_snapshot`'s.

use super::canonical::{canonical_entry, selector_key};
use super::changes;
use super::entry_rows::{ENTRY_COLUMNS, fetch_rows, with_children};
use super::exec::{Sql, Tx, text};
use crate::change::ChangeKind;
use crate::error::DatastoreError;
use crate::id::EntryId;
use crate::model::{Entry, NewEntry};

/// Stores a new entry and records the change; the caller commits.
///
/// Every refusal (invalid entry, duplicate, ID in use) happens before the first write, so a
/// refused entry leaves nothing behind in the caller's transaction.
pub(super) async fn create(tx: &mut Tx, new: NewEntry, now: i64) -> Result<Entry, DatastoreError> {
    let entry = canonical_entry(new, now)?;
    let key = selector_key(&entry.selectors);

    // Entry IDs are never empty, so "" excludes nothing.
    if let Some(existing) = find_identity(tx, &entry, &key, "").await? {
        return Err(already_exists(tx, &existing).await);
    }
    let id_taken = tx
        .fetch_optional(
            Sql::new("SELECT id FROM registered_entries WHERE id = ?").bind(entry.id.as_str()),
        )
        .await?;
    if id_taken.is_some() {
        return Err(DatastoreError::EntryIdInUse(entry.id));
    }

    tx.execute(
        Sql::new(
            "INSERT INTO registered_entries (id, spiffe_id, parent_id, selector_key, \
             x509_svid_ttl, jwt_svid_ttl, admin, downstream, expires_at, store_svid, hint, \
             revision_number, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(entry.id.as_str())
        .bind(entry.spiffe_id.as_str())
        .bind(entry.parent_id.as_str())
        .bind(key)
        .bind(entry.x509_svid_ttl)
        .bind(entry.jwt_svid_ttl)
        .bind(entry.admin)
        .bind(entry.downstream)
        .bind(entry.expires_at)
        .bind(entry.store_svid)
        .bind(&entry.hint)
        .bind(entry.revision_number)
        .bind(entry.created_at),
    )
    .await?;
    insert_children(tx, &entry).await?;
    changes::record(tx, ChangeKind::Entry, entry.id.as_str(), now).await?;
    Ok(entry)
}

/// Stores each entry of a batch; every item succeeds or fails on its own. A database failure
/// ends the whole batch (the caller then drops the transaction, committing nothing).
pub(super) async fn create_batch(
    tx: &mut Tx,
    batch: Vec<NewEntry>,
    now: i64,
) -> Result<Vec<Result<Entry, DatastoreError>>, DatastoreError> {
    let mut outcomes = Vec::with_capacity(batch.len());
    for new in batch {
        match create(tx, new, now).await {
            Err(e) if is_database_failure(&e) => return Err(e),
            outcome => outcomes.push(outcome),
        }
    }
    Ok(outcomes)
}

/// The entry with this ID, if any.
pub(super) async fn get(tx: &mut Tx, id: &EntryId) -> Result<Option<Entry>, DatastoreError> {
    let mut q = Sql::new(ENTRY_COLUMNS);
    q.push(" WHERE e.id = ").push_bind(id.as_str());
    let rows = fetch_rows(tx, q).await?;
    Ok(with_children(tx, rows).await?.pop())
}

/// Deletes an entry (its children go by cascade), records the change and returns the entry;
/// the caller commits.
pub(super) async fn delete(
    tx: &mut Tx,
    id: &EntryId,
    now: i64,
) -> Result<Option<Entry>, DatastoreError> {
    let Some(entry) = get(tx, id).await? else {
        return Ok(None);
    };
    tx.execute(Sql::new("DELETE FROM registered_entries WHERE id = ?").bind(id.as_str()))
        .await?;
    changes::record(tx, ChangeKind::Entry, id.as_str(), now).await?;
    Ok(Some(entry))
}

/// The ID of an entry other than `except` with the same identity (SPIFFE ID, parent,
/// selector set) as `entry`.
pub(super) async fn find_identity(
    tx: &mut Tx,
    entry: &Entry,
    selector_key: &str,
    except: &str,
) -> Result<Option<String>, DatastoreError> {
    let row = tx
        .fetch_optional(
            Sql::new(
                "SELECT id FROM registered_entries WHERE parent_id = ? AND spiffe_id = ? \
                 AND selector_key = ? AND id <> ?",
            )
            .bind(entry.parent_id.as_str())
            .bind(entry.spiffe_id.as_str())
            .bind(selector_key)
            .bind(except),
        )
        .await?;
    row.map(|r| text(&r, 0)).transpose()
}

/// The error for a duplicate of entry `existing_id`, carrying that entry when it can be read.
pub(super) async fn already_exists(tx: &mut Tx, existing_id: &str) -> DatastoreError {
    let loaded = match EntryId::parse(existing_id) {
        Ok(id) => get(tx, &id).await,
        Err(e) => Err(DatastoreError::Corrupt(format!("stored entry id: {e}"))),
    };
    match loaded {
        Ok(Some(entry)) => DatastoreError::AlreadyExists(Box::new(entry)),
        Ok(None) => {
            DatastoreError::Corrupt(format!("entry '{existing_id}' vanished mid-transaction"))
        }
        Err(e) => e,
    }
}

/// Inserts the selector, DNS name and federation rows of `entry`.
pub(super) async fn insert_children(tx: &mut Tx, entry: &Entry) -> Result<(), DatastoreError> {
    for s in &entry.selectors {
        tx.execute(
            Sql::new("INSERT INTO entry_selectors (entry_id, type, value) VALUES (?, ?, ?)")
                .bind(entry.id.as_str())
                .bind(s.kind())
                .bind(s.value()),
        )
        .await?;
    }
    for (position, name) in entry.dns_names.iter().enumerate() {
        tx.execute(
            Sql::new("INSERT INTO entry_dns_names (entry_id, position, name) VALUES (?, ?, ?)")
                .bind(entry.id.as_str())
                .bind(i64::try_from(position).unwrap_or(i64::MAX))
                .bind(name),
        )
        .await?;
    }
    for td in &entry.federates_with {
        tx.execute(
            Sql::new("INSERT INTO entry_federates_with (entry_id, trust_domain) VALUES (?, ?)")
                .bind(entry.id.as_str())
                .bind(td.name()),
        )
        .await?;
    }
    Ok(())
}

/// Deletes the selector, DNS name and federation rows of entry `id`.
pub(super) async fn delete_children(tx: &mut Tx, id: &str) -> Result<(), DatastoreError> {
    for table in ["entry_selectors", "entry_dns_names", "entry_federates_with"] {
        let mut q = Sql::new("DELETE FROM ");
        q.push(table).push(" WHERE entry_id = ").push_bind(id);
        tx.execute(q).await?;
    }
    Ok(())
}

/// Whether `e` means the database failed (rather than the item being refused).
fn is_database_failure(e: &DatastoreError) -> bool {
    matches!(
        e,
        DatastoreError::Database(_) | DatastoreError::Corrupt(_) | DatastoreError::Migration(_)
    )
}
