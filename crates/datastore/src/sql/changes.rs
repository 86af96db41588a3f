//! The change feed: one row per write to an entry, agent, bundle or federation relationship,
//! appended inside the writing transaction.

use super::exec::{Sql, Tx, int, text};
use crate::change::{Change, ChangeKind};
use crate::error::DatastoreError;

/// Appends a change row; the caller's transaction commits it with the write it describes.
pub(super) async fn record(
    tx: &mut Tx,
    kind: ChangeKind,
    key: &str,
    now: i64,
) -> Result<(), DatastoreError> {
    tx.execute(
        Sql::new("INSERT INTO changes (kind, object_key, created_at) VALUES (?, ?, ?)")
            .bind(kind.as_str())
            .bind(key)
            .bind(now),
    )
    .await?;
    Ok(())
}

/// Changes after sequence number `after`, in sequence order, at most `limit` (0: all).
pub(super) async fn since(
    tx: &mut Tx,
    after: u64,
    limit: u32,
) -> Result<Vec<Change>, DatastoreError> {
    let mut q = Sql::new("SELECT seq, kind, object_key FROM changes WHERE seq > ");
    q.push_bind(i64::try_from(after).unwrap_or(i64::MAX));
    q.push(" ORDER BY seq");
    if limit > 0 {
        q.push(" LIMIT ").push_bind(i64::from(limit));
    }
    let rows = tx.fetch_all(q).await?;
    rows.iter()
        .map(|row| {
            let seq = int(row, 0)?;
            let kind = text(row, 1)?;
            let corrupt = |what: &str| DatastoreError::Corrupt(format!("change {seq} has {what}"));
            Ok(Change {
                seq: u64::try_from(seq).map_err(|_| corrupt("a negative sequence number"))?,
                kind: ChangeKind::from_name(&kind)
                    .ok_or_else(|| corrupt(&format!("unknown kind '{kind}'")))?,
                key: text(row, 2)?,
            })
        })
        .collect()
}

/// The newest sequence number, 0 when there was never a change.
pub(super) async fn latest(tx: &mut Tx) -> Result<u64, DatastoreError> {
    let seq = tx
        .fetch_int(Sql::new("SELECT COALESCE(MAX(seq), 0) FROM changes"))
        .await?;
    u64::try_from(seq)
        .map_err(|_| DatastoreError::Corrupt(format!("newest change has sequence number {seq}")))
}

/// Deletes changes recorded before `before` (unix seconds), except the newest, which keeps
/// [`latest`] from going back.
pub(super) async fn prune(tx: &mut Tx, before: i64) -> Result<u64, DatastoreError> {
    let newest = latest(tx).await?;
    tx.execute(
        Sql::new("DELETE FROM changes WHERE created_at < ? AND seq < ?")
            .bind(before)
            .bind(i64::try_from(newest).unwrap_or(i64::MAX)),
    )
    .await
}
