//! Join tokens: single use, stored only as a SHA-256 hash.

use aws_lc_rs::digest;
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnection;

use crate::error::DatastoreError;
use crate::model::TokenUse;

/// Longest join token accepted, in bytes.
const MAX_TOKEN_LEN: usize = 1024;

/// Stores a new token.
pub(super) async fn create(
    pool: &SqlitePool,
    token: &str,
    expires_at: i64,
) -> Result<(), DatastoreError> {
    let hash = token_hash(token)?;
    let inserted = sqlx::query(
        "INSERT INTO join_tokens (token_hash, expires_at, used_at) VALUES (?, ?, NULL)",
    )
    .bind(hash)
    .bind(expires_at)
    .execute(pool)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(DatastoreError::TokenAlreadyExists)
        }
        Err(e) => Err(e.into()),
    }
}

/// Uses up a token if it is unused and unexpired, and otherwise says why not. Runs inside the
/// caller's write transaction: the conditional `UPDATE` is what makes a token single use, the
/// `SELECT` after it only explains a refusal.
pub(super) async fn consume(
    conn: &mut SqliteConnection,
    token: &str,
    now: i64,
) -> Result<TokenUse, DatastoreError> {
    // A token that cannot have been created cannot be known.
    let Ok(hash) = token_hash(token) else {
        return Ok(TokenUse::Unknown);
    };

    let updated = sqlx::query(
        "UPDATE join_tokens SET used_at = ? \
         WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
    )
    .bind(now)
    .bind(&hash)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 1 {
        return Ok(TokenUse::Accepted);
    }

    let row: Option<(i64, Option<i64>)> =
        sqlx::query_as("SELECT expires_at, used_at FROM join_tokens WHERE token_hash = ?")
            .bind(&hash)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match row {
        None => TokenUse::Unknown,
        // A reuse is the more telling fact when a used token has also expired since.
        Some((_, Some(_))) => TokenUse::AlreadyUsed,
        Some((_, None)) => TokenUse::Expired,
    })
}

/// Deletes tokens that expired before `before`.
pub(super) async fn prune(pool: &SqlitePool, before: i64) -> Result<u64, DatastoreError> {
    let done = sqlx::query("DELETE FROM join_tokens WHERE expires_at < ?")
        .bind(before)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

fn token_hash(token: &str) -> Result<String, DatastoreError> {
    if token.is_empty() {
        return Err(DatastoreError::InvalidInput(
            "join token is empty: it must have at least one character".to_owned(),
        ));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(DatastoreError::InvalidInput(format!(
            "join token of {} bytes is too long: it must have at most {MAX_TOKEN_LEN} bytes",
            token.len()
        )));
    }
    Ok(hex::encode(
        digest::digest(&digest::SHA256, token.as_bytes()).as_ref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{file, memory};
    use super::*;
    use crate::Datastore;

    const NOW: i64 = 1_700_000_000;

    #[tokio::test]
    async fn a_token_is_accepted_once_then_reported_as_reused() {
        let store = memory().await;
        store.create_join_token("tok-1", NOW + 600).await.unwrap();
        assert_eq!(
            store.consume_join_token("tok-1", NOW).await.unwrap(),
            TokenUse::Accepted
        );
        assert_eq!(
            store.consume_join_token("tok-1", NOW + 1).await.unwrap(),
            TokenUse::AlreadyUsed
        );
        // Still a reuse, not an expiry, once the token's lifetime is over.
        assert_eq!(
            store.consume_join_token("tok-1", NOW + 601).await.unwrap(),
            TokenUse::AlreadyUsed
        );
    }

    #[tokio::test]
    async fn an_expired_token_is_refused_and_stays_unused() {
        let store = memory().await;
        store.create_join_token("tok-2", NOW).await.unwrap();
        assert_eq!(
            store.consume_join_token("tok-2", NOW).await.unwrap(),
            TokenUse::Expired
        );
        assert_eq!(
            store.consume_join_token("tok-2", NOW + 5).await.unwrap(),
            TokenUse::Expired
        );
        assert_eq!(
            store.consume_join_token("tok-2", NOW - 1).await.unwrap(),
            TokenUse::Accepted
        );
    }

    #[tokio::test]
    async fn unknown_and_malformed_tokens_are_unknown() {
        let store = memory().await;
        store.create_join_token("tok-3", NOW + 600).await.unwrap();
        assert_eq!(
            store.consume_join_token("tok-4", NOW).await.unwrap(),
            TokenUse::Unknown
        );
        assert_eq!(
            store.consume_join_token("", NOW).await.unwrap(),
            TokenUse::Unknown
        );
        let huge = "x".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            store.consume_join_token(&huge, NOW).await.unwrap(),
            TokenUse::Unknown
        );
    }

    #[tokio::test]
    async fn rejects_repeated_empty_and_oversized_tokens() {
        let store = memory().await;
        store.create_join_token("tok-5", NOW).await.unwrap();
        let err = store.create_join_token("tok-5", NOW + 1).await.unwrap_err();
        assert!(matches!(err, DatastoreError::TokenAlreadyExists));
        assert!(
            !err.to_string().contains("tok-5"),
            "the message must not repeat the secret"
        );
        assert!(matches!(
            store.create_join_token("", NOW).await,
            Err(DatastoreError::InvalidInput(_))
        ));
        let huge = "x".repeat(MAX_TOKEN_LEN + 1);
        assert!(matches!(
            store.create_join_token(&huge, NOW).await,
            Err(DatastoreError::InvalidInput(_))
        ));
    }

    #[tokio::test]
    async fn stores_only_a_hash_of_the_token() {
        let store = memory().await;
        store
            .create_join_token("secret-token-value", NOW)
            .await
            .unwrap();
        let stored: String = sqlx::query_scalar("SELECT token_hash FROM join_tokens")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(stored.len(), 64);
        assert!(!stored.contains("secret"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_consumers_get_exactly_one_acceptance() {
        let (_dir, store) = file().await;
        store.create_join_token("shared", NOW + 600).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.consume_join_token("shared", NOW).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap().unwrap());
        }
        let accepted = outcomes
            .iter()
            .filter(|o| **o == TokenUse::Accepted)
            .count();
        assert_eq!(accepted, 1, "{outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, TokenUse::Accepted | TokenUse::AlreadyUsed))
        );
    }

    #[tokio::test]
    async fn pruning_removes_only_tokens_expired_before_the_cutoff() {
        let store = memory().await;
        store.create_join_token("old", NOW - 10).await.unwrap();
        store.create_join_token("new", NOW + 10).await.unwrap();
        assert_eq!(store.prune_join_tokens(NOW).await.unwrap(), 1);
        assert_eq!(
            store.consume_join_token("old", NOW - 20).await.unwrap(),
            TokenUse::Unknown
        );
        assert_eq!(
            store.consume_join_token("new", NOW).await.unwrap(),
            TokenUse::Accepted
        );
    }
}
