//! Updating entries: field-wise replacement with the rules of creation, and removing a trust
//! domain from every entry that federates with it.

use lanyard_spiffe::TrustDomain;

use super::canonical::{canonical_updated, selector_key};
use super::changes;
use super::entries::{already_exists, delete_children, find_identity, get, insert_children};
use super::exec::{Sql, Tx, text};
use crate::change::ChangeKind;
use crate::error::DatastoreError;
use crate::id::EntryId;
use crate::model::{Entry, EntryUpdate};

/// Applies `u` to entry `id`, bumps its revision and records the change; the caller commits.
pub(super) async fn update(
    tx: &mut Tx,
    id: &EntryId,
    u: EntryUpdate,
    now: i64,
) -> Result<Entry, DatastoreError> {
    let Some(mut entry) = get(tx, id).await? else {
        return Err(DatastoreError::EntryNotFound(id.clone()));
    };
    apply(&mut entry, u);
    entry.revision_number = entry.revision_number.saturating_add(1);
    let entry = canonical_updated(entry)?;
    let key = selector_key(&entry.selectors);
    if let Some(other) = find_identity(tx, &entry, &key, entry.id.as_str()).await? {
        return Err(already_exists(tx, &other).await);
    }
    store(tx, &entry, &key, now).await?;
    Ok(entry)
}

/// Removes `td` from the federation list of every entry that has it, bumping their revisions
/// and recording a change for each; returns how many entries changed.
pub(super) async fn dissociate(
    tx: &mut Tx,
    td: &TrustDomain,
    now: i64,
) -> Result<u64, DatastoreError> {
    let ids = federating_entries(tx, td).await?;
    for id in &ids {
        let Some(mut entry) = get(tx, id).await? else {
            continue;
        };
        entry.federates_with.retain(|t| t != td);
        entry.revision_number = entry.revision_number.saturating_add(1);
        let key = selector_key(&entry.selectors);
        store(tx, &entry, &key, now).await?;
    }
    Ok(u64::try_from(ids.len()).unwrap_or(u64::MAX))
}

/// The IDs of entries that federate with `td`, in ID order.
pub(super) async fn federating_entries(
    tx: &mut Tx,
    td: &TrustDomain,
) -> Result<Vec<EntryId>, DatastoreError> {
    let rows = tx
        .fetch_all(
            Sql::new(
                "SELECT entry_id FROM entry_federates_with WHERE trust_domain = ? \
                 ORDER BY entry_id",
            )
            .bind(td.name()),
        )
        .await?;
    rows.iter()
        .map(|row| {
            let id = text(row, 0)?;
            EntryId::parse(&id)
                .map_err(|e| DatastoreError::Corrupt(format!("stored entry id '{id}': {e}")))
        })
        .collect()
}

/// Overwrites the stored row and children of `entry` and records the change.
async fn store(tx: &mut Tx, entry: &Entry, key: &str, now: i64) -> Result<(), DatastoreError> {
    tx.execute(
        Sql::new(
            "UPDATE registered_entries SET spiffe_id = ?, parent_id = ?, selector_key = ?, \
             x509_svid_ttl = ?, jwt_svid_ttl = ?, admin = ?, downstream = ?, expires_at = ?, \
             store_svid = ?, hint = ?, revision_number = ? WHERE id = ?",
        )
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
        .bind(entry.id.as_str()),
    )
    .await?;
    delete_children(tx, entry.id.as_str()).await?;
    insert_children(tx, entry).await?;
    changes::record(tx, ChangeKind::Entry, entry.id.as_str(), now).await
}

fn apply(entry: &mut Entry, u: EntryUpdate) {
    let EntryUpdate {
        spiffe_id,
        parent_id,
        selectors,
        x509_svid_ttl,
        jwt_svid_ttl,
        federates_with,
        admin,
        downstream,
        expires_at,
        dns_names,
        store_svid,
        hint,
    } = u;
    if let Some(v) = spiffe_id {
        entry.spiffe_id = v;
    }
    if let Some(v) = parent_id {
        entry.parent_id = v;
    }
    if let Some(v) = selectors {
        entry.selectors = v;
    }
    if let Some(v) = x509_svid_ttl {
        entry.x509_svid_ttl = v;
    }
    if let Some(v) = jwt_svid_ttl {
        entry.jwt_svid_ttl = v;
    }
    if let Some(v) = federates_with {
        entry.federates_with = v;
    }
    if let Some(v) = admin {
        entry.admin = v;
    }
    if let Some(v) = downstream {
        entry.downstream = v;
    }
    if let Some(v) = expires_at {
        entry.expires_at = v;
    }
    if let Some(v) = dns_names {
        entry.dns_names = v;
    }
    if let Some(v) = store_svid {
        entry.store_svid = v;
    }
    if let Some(v) = hint {
        entry.hint = v;
    }
}
