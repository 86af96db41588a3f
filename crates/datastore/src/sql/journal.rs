//! The CA journal: one opaque blob in a one-row table.

use super::exec::{Sql, Tx, blob};
use crate::error::DatastoreError;

/// The saved blob, if any.
pub(super) async fn load(tx: &mut Tx) -> Result<Option<Vec<u8>>, DatastoreError> {
    tx.fetch_optional(Sql::new("SELECT data FROM ca_journal WHERE id = 1"))
        .await?
        .map(|row| blob(&row, 0))
        .transpose()
}

/// Replaces the blob inside the caller's write transaction. Update-then-insert rather than an
/// engine-specific upsert, so the statement pair works unchanged on every engine (writers are
/// serialized, so no other writer can insert in between).
pub(super) async fn save(tx: &mut Tx, data: &[u8], now: i64) -> Result<(), DatastoreError> {
    let exists = tx
        .fetch_optional(Sql::new("SELECT id FROM ca_journal WHERE id = 1"))
        .await?
        .is_some();
    let q = if exists {
        Sql::new("UPDATE ca_journal SET data = ?, updated_at = ? WHERE id = 1")
    } else {
        Sql::new("INSERT INTO ca_journal (id, data, updated_at) VALUES (1, ?, ?)")
    };
    tx.execute(q.bind(data).bind(now)).await?;
    Ok(())
}
