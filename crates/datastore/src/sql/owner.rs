//! The trust domain a database serves, claimed by the first server that starts on it.

use super::exec::{Sql, Tx, text};
use crate::error::DatastoreError;
use lanyard_spiffe::TrustDomain;

/// Records `td` as the database's trust domain if none is recorded yet; otherwise checks that
/// it is the recorded one. Runs in the caller's write transaction, so two servers starting
/// together cannot both claim an empty database for different trust domains.
pub(super) async fn claim(tx: &mut Tx, td: &TrustDomain, now: i64) -> Result<(), DatastoreError> {
    let row = tx
        .fetch_optional(Sql::new(
            "SELECT trust_domain FROM trust_domain_owner WHERE id = 1",
        ))
        .await?;
    match row {
        Some(row) => {
            let stored = text(&row, 0)?;
            if stored == td.name() {
                Ok(())
            } else {
                Err(DatastoreError::TrustDomainMismatch {
                    stored,
                    given: td.clone(),
                })
            }
        }
        None => {
            tx.execute(
                Sql::new(
                    "INSERT INTO trust_domain_owner (id, trust_domain, claimed_at) VALUES (1, ?, ?)",
                )
                .bind(td.name())
                .bind(now),
            )
            .await?;
            Ok(())
        }
    }
}
