//! Trust bundles: X.509 authorities per trust domain, with a sequence number that grows on change.

use std::collections::BTreeSet;

use sqlx::sqlite::SqliteConnection;

use crate::error::DatastoreError;
use crate::model::StoredBundle;
use lanyard_spiffe::TrustDomain;

/// The stored bundle of `td`, if any.
pub(super) async fn get(
    conn: &mut SqliteConnection,
    td: &TrustDomain,
) -> Result<Option<StoredBundle>, DatastoreError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT sequence, refresh_hint FROM bundles WHERE trust_domain = ?")
            .bind(td.name())
            .fetch_optional(&mut *conn)
            .await?;
    let Some((sequence, refresh_hint)) = row else {
        return Ok(None);
    };
    let x509_authorities: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT der FROM bundle_x509_authorities WHERE trust_domain = ? ORDER BY position",
    )
    .bind(td.name())
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(StoredBundle {
        trust_domain: td.clone(),
        x509_authorities,
        sequence: u64::try_from(sequence).map_err(|_| {
            DatastoreError::Corrupt(format!("bundle of '{td}' has sequence {sequence}"))
        })?,
        refresh_hint,
    }))
}

/// Replaces the authorities of `td`'s bundle inside the caller's write transaction; the sequence
/// grows only if the set of certificates differs from the stored one.
pub(super) async fn set_authorities(
    conn: &mut SqliteConnection,
    td: &TrustDomain,
    x509: Vec<Vec<u8>>,
    now: i64,
) -> Result<StoredBundle, DatastoreError> {
    let mut seen = BTreeSet::new();
    let authorities: Vec<Vec<u8>> = x509
        .into_iter()
        .filter(|der| seen.insert(der.clone()))
        .collect();

    let stored = get(conn, td).await?;
    let bundle = match stored {
        Some(stored) if same_set(&stored.x509_authorities, &authorities) => return Ok(stored),
        Some(stored) => {
            let sequence = stored.sequence.saturating_add(1);
            sqlx::query("UPDATE bundles SET sequence = ?, updated_at = ? WHERE trust_domain = ?")
                .bind(i64::try_from(sequence).unwrap_or(i64::MAX))
                .bind(now)
                .bind(td.name())
                .execute(&mut *conn)
                .await?;
            sqlx::query("DELETE FROM bundle_x509_authorities WHERE trust_domain = ?")
                .bind(td.name())
                .execute(&mut *conn)
                .await?;
            StoredBundle {
                x509_authorities: authorities,
                sequence,
                ..stored
            }
        }
        None => {
            sqlx::query(
                "INSERT INTO bundles (trust_domain, sequence, refresh_hint, updated_at) \
                 VALUES (?, 1, 0, ?)",
            )
            .bind(td.name())
            .bind(now)
            .execute(&mut *conn)
            .await?;
            StoredBundle {
                trust_domain: td.clone(),
                x509_authorities: authorities,
                sequence: 1,
                refresh_hint: 0,
            }
        }
    };

    for (position, der) in bundle.x509_authorities.iter().enumerate() {
        sqlx::query(
            "INSERT INTO bundle_x509_authorities (trust_domain, position, der) VALUES (?, ?, ?)",
        )
        .bind(td.name())
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(der.as_slice())
        .execute(&mut *conn)
        .await?;
    }
    Ok(bundle)
}

/// Raises the sequence of `td`'s bundle by one inside the caller's write transaction, for a
/// change its certificate set does not show (an authority tainted). `None` if there is no bundle.
pub(super) async fn bump_sequence(
    conn: &mut SqliteConnection,
    td: &TrustDomain,
    now: i64,
) -> Result<Option<StoredBundle>, DatastoreError> {
    let Some(stored) = get(conn, td).await? else {
        return Ok(None);
    };
    let sequence = stored.sequence.saturating_add(1);
    sqlx::query("UPDATE bundles SET sequence = ?, updated_at = ? WHERE trust_domain = ?")
        .bind(i64::try_from(sequence).unwrap_or(i64::MAX))
        .bind(now)
        .bind(td.name())
        .execute(&mut *conn)
        .await?;
    Ok(Some(StoredBundle { sequence, ..stored }))
}

fn same_set(a: &[Vec<u8>], b: &[Vec<u8>]) -> bool {
    let a: BTreeSet<&[u8]> = a.iter().map(Vec::as_slice).collect();
    let b: BTreeSet<&[u8]> = b.iter().map(Vec::as_slice).collect();
    a == b
}

#[cfg(test)]
mod tests {
    use super::super::test_support::memory;
    use super::*;
    use crate::Datastore;

    #[tokio::test]
    async fn sequence_grows_only_when_the_certificate_set_changes() {
        let store = memory().await;
        let td = TrustDomain::new("example.org").unwrap();
        assert_eq!(store.get_bundle(&td).await.unwrap(), None);

        let (ca1, ca2, ca3) = (vec![1u8, 1], vec![2u8, 2], vec![3u8, 3]);
        let first = store
            .set_bundle_authorities(&td, vec![ca1.clone(), ca2.clone()])
            .await
            .unwrap();
        assert_eq!(first.sequence, 1);
        assert_eq!(first.x509_authorities, [ca1.clone(), ca2.clone()]);

        let same = store
            .set_bundle_authorities(&td, vec![ca2.clone(), ca1.clone(), ca2.clone()])
            .await
            .unwrap();
        assert_eq!(same, first, "same set in another order is no change");

        let changed = store
            .set_bundle_authorities(&td, vec![ca2.clone(), ca3.clone()])
            .await
            .unwrap();
        assert_eq!(changed.sequence, 2);
        assert_eq!(changed.x509_authorities, [ca2.clone(), ca3.clone()]);
        assert_eq!(store.get_bundle(&td).await.unwrap(), Some(changed));

        let other = TrustDomain::new("other.org").unwrap();
        let separate = store
            .set_bundle_authorities(&other, vec![ca1])
            .await
            .unwrap();
        assert_eq!(separate.sequence, 1);
    }

    #[tokio::test]
    async fn bumping_raises_the_sequence_and_keeps_the_certificates() {
        let store = memory().await;
        let td = TrustDomain::new("example.org").unwrap();
        assert_eq!(store.bump_bundle_sequence(&td).await.unwrap(), None);

        let first = store
            .set_bundle_authorities(&td, vec![vec![1u8, 1]])
            .await
            .unwrap();
        let bumped = store.bump_bundle_sequence(&td).await.unwrap().unwrap();
        assert_eq!(bumped.sequence, first.sequence + 1);
        assert_eq!(bumped.x509_authorities, first.x509_authorities);
        assert_eq!(store.get_bundle(&td).await.unwrap(), Some(bumped));
    }
}
