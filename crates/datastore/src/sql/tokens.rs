//! Join tokens: single use, stored only as a SHA-256 hash.

use aws_lc_rs::digest;

use sqlx::Row;

use super::exec::{Sql, Tx};

use crate::error::DatastoreError;
use crate::model::TokenUse;

/// Longest join token accepted, in bytes.
const MAX_TOKEN_LEN: usize = 1024;

/// Stores a new token inside the caller's write transaction.
pub(super) async fn create(
    tx: &mut Tx,
    token: &str,
    expires_at: i64,
) -> Result<(), DatastoreError> {
    let hash = token_hash(token)?;
    let known = tx
        .fetch_optional(
            Sql::new("SELECT token_hash FROM join_tokens WHERE token_hash = ?").bind(&hash),
        )
        .await?;
    if known.is_some() {
        return Err(DatastoreError::TokenAlreadyExists);
    }
    tx.execute(
        Sql::new("INSERT INTO join_tokens (token_hash, expires_at, used_at) VALUES (?, ?, NULL)")
            .bind(hash)
            .bind(expires_at),
    )
    .await?;
    Ok(())
}

/// Uses up a token if it is unused and unexpired, and otherwise says why not. Runs inside the
/// caller's write transaction: the conditional `UPDATE` is what makes a token single use, the
/// `SELECT` after it only explains a refusal.
pub(super) async fn consume(
    tx: &mut Tx,
    token: &str,
    now: i64,
) -> Result<TokenUse, DatastoreError> {
    // A token that cannot have been created cannot be known.
    let Ok(hash) = token_hash(token) else {
        return Ok(TokenUse::Unknown);
    };

    let updated = tx
        .execute(
            Sql::new(
                "UPDATE join_tokens SET used_at = ? \
                 WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
            )
            .bind(now)
            .bind(hash.as_str())
            .bind(now),
        )
        .await?;
    if updated == 1 {
        return Ok(TokenUse::Accepted);
    }

    let row = tx
        .fetch_optional(Sql::new("SELECT used_at FROM join_tokens WHERE token_hash = ?").bind(hash))
        .await?;
    Ok(match row {
        None => TokenUse::Unknown,
        // A reuse is the more telling fact when a used token has also expired since.
        Some(row) if row.try_get::<Option<i64>, _>(0)?.is_some() => TokenUse::AlreadyUsed,
        Some(_) => TokenUse::Expired,
    })
}

/// Deletes tokens that expired before `before`.
pub(super) async fn prune(tx: &mut Tx, before: i64) -> Result<u64, DatastoreError> {
    tx.execute(Sql::new("DELETE FROM join_tokens WHERE expires_at < ?").bind(before))
        .await
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
