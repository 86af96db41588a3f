//! CA journals: one opaque blob per server, keyed by the server ID kept in that server's data
//! directory, so several servers sharing a database never overwrite each other's CA state.

use super::exec::{Sql, Tx, blob};
use crate::error::DatastoreError;

/// The blob saved by `server_id`, if any. A server with no journal of its own adopts the
/// single journal of schema 1 (written before journals were per server) as long as no server
/// has saved a per-server journal yet: that is the one server that used the database then.
pub(super) async fn load(tx: &mut Tx, server_id: &str) -> Result<Option<Vec<u8>>, DatastoreError> {
    let own = tx
        .fetch_optional(
            Sql::new("SELECT data FROM ca_journals WHERE server_id = ?").bind(server_id),
        )
        .await?;
    if let Some(row) = own {
        return blob(&row, 0).map(Some);
    }
    let any_server = tx
        .fetch_optional(Sql::new("SELECT server_id FROM ca_journals"))
        .await?
        .is_some();
    if any_server {
        return Ok(None);
    }
    tx.fetch_optional(Sql::new("SELECT data FROM ca_journal WHERE id = 1"))
        .await?
        .map(|row| blob(&row, 0))
        .transpose()
}

/// Replaces `server_id`'s blob inside the caller's write transaction and retires the schema 1
/// journal, which from now on belongs to this server. Update-then-insert rather than an
/// engine-specific upsert, so the statements work unchanged on every engine (writers are
/// serialized, so no other writer can insert in between).
pub(super) async fn save(
    tx: &mut Tx,
    server_id: &str,
    data: &[u8],
    now: i64,
) -> Result<(), DatastoreError> {
    let exists = tx
        .fetch_optional(
            Sql::new("SELECT server_id FROM ca_journals WHERE server_id = ?").bind(server_id),
        )
        .await?
        .is_some();
    let q = if exists {
        Sql::new("UPDATE ca_journals SET data = ?, updated_at = ? WHERE server_id = ?")
            .bind(data)
            .bind(now)
            .bind(server_id)
    } else {
        Sql::new("INSERT INTO ca_journals (data, updated_at, server_id) VALUES (?, ?, ?)")
            .bind(data)
            .bind(now)
            .bind(server_id)
    };
    tx.execute(q).await?;
    tx.execute(Sql::new("DELETE FROM ca_journal WHERE id = 1"))
        .await?;
    Ok(())
}
