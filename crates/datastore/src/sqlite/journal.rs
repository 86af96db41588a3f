//! The CA journal: one opaque blob in a one-row table.

use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnection;

use crate::error::DatastoreError;

/// The saved blob, if any.
pub(super) async fn load(pool: &SqlitePool) -> Result<Option<Vec<u8>>, DatastoreError> {
    Ok(
        sqlx::query_scalar("SELECT data FROM ca_journal WHERE id = 1")
            .fetch_optional(pool)
            .await?,
    )
}

/// Replaces the blob inside the caller's write transaction. Update-then-insert rather than an
/// engine-specific upsert, so the statement pair works unchanged on every engine.
pub(super) async fn save(
    conn: &mut SqliteConnection,
    blob: &[u8],
    now: i64,
) -> Result<(), DatastoreError> {
    let updated = sqlx::query("UPDATE ca_journal SET data = ?, updated_at = ? WHERE id = 1")
        .bind(blob)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    if updated.rows_affected() == 0 {
        sqlx::query("INSERT INTO ca_journal (id, data, updated_at) VALUES (1, ?, ?)")
            .bind(blob)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use lanyard_ca::JournalStore;

    use super::super::test_support::memory;

    #[tokio::test]
    async fn journal_round_trips_and_keeps_only_the_last_blob() {
        let store = memory().await;
        assert_eq!(store.load_journal().await.unwrap(), None);
        store.save_journal(b"{\"version\":1}").await.unwrap();
        assert_eq!(
            store.load_journal().await.unwrap().unwrap(),
            b"{\"version\":1}"
        );
        store.save_journal(&[0, 1, 2, 255]).await.unwrap();
        assert_eq!(store.load_journal().await.unwrap().unwrap(), [0, 1, 2, 255]);
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ca_journal")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(rows, 1);
    }
}
