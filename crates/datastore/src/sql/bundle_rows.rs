//! Reading and writing the rows of one bundle: the `bundles` row, its X.509 authorities (with
//! their tainted flags) and its JWT keys.

use std::collections::BTreeSet;

use lanyard_spiffe::TrustDomain;

use super::exec::{Sql, Tx, blob, flag, int, text};
use crate::bundle::{StoredBundle, StoredJwtKey};
use crate::error::DatastoreError;

/// The stored bundle of `td`, if any.
pub(super) async fn get(
    tx: &mut Tx,
    td: &TrustDomain,
) -> Result<Option<StoredBundle>, DatastoreError> {
    let row = tx
        .fetch_optional(
            Sql::new("SELECT sequence, refresh_hint FROM bundles WHERE trust_domain = ?")
                .bind(td.name()),
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let (sequence, refresh_hint) = (int(&row, 0)?, int(&row, 1)?);

    let mut x509_authorities = Vec::new();
    let mut tainted_x509 = Vec::new();
    let rows = tx
        .fetch_all(
            Sql::new(
                "SELECT der, tainted FROM bundle_x509_authorities WHERE trust_domain = ? \
                 ORDER BY position",
            )
            .bind(td.name()),
        )
        .await?;
    for row in &rows {
        let der = blob(row, 0)?;
        if flag(row, 1)? {
            tainted_x509.push(der.clone());
        }
        x509_authorities.push(der);
    }

    let rows = tx
        .fetch_all(
            Sql::new(
                "SELECT key_id, public_key, expires_at, tainted FROM bundle_jwt_keys \
                 WHERE trust_domain = ? ORDER BY position",
            )
            .bind(td.name()),
        )
        .await?;
    let jwt_authorities = rows
        .iter()
        .map(|row| {
            Ok(StoredJwtKey {
                key_id: text(row, 0)?,
                public_key: blob(row, 1)?,
                expires_at: int(row, 2)?,
                tainted: flag(row, 3)?,
            })
        })
        .collect::<Result<Vec<_>, DatastoreError>>()?;

    Ok(Some(StoredBundle {
        trust_domain: td.clone(),
        x509_authorities,
        jwt_authorities,
        tainted_x509,
        sequence: u64::try_from(sequence).map_err(|_| {
            DatastoreError::Corrupt(format!("bundle of '{td}' has sequence {sequence}"))
        })?,
        refresh_hint,
    }))
}

/// Writes `b` as the stored bundle of its trust domain, replacing whatever was stored
/// (`exists` says whether a row is there to update).
pub(super) async fn write(
    tx: &mut Tx,
    b: &StoredBundle,
    exists: bool,
    now: i64,
) -> Result<(), DatastoreError> {
    let td = b.trust_domain.name();
    let sequence = i64::try_from(b.sequence).unwrap_or(i64::MAX);
    if exists {
        tx.execute(
            Sql::new(
                "UPDATE bundles SET sequence = ?, refresh_hint = ?, updated_at = ? \
                 WHERE trust_domain = ?",
            )
            .bind(sequence)
            .bind(b.refresh_hint)
            .bind(now)
            .bind(td),
        )
        .await?;
        delete_children(tx, td).await?;
    } else {
        tx.execute(
            Sql::new(
                "INSERT INTO bundles (trust_domain, sequence, refresh_hint, updated_at) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(td)
            .bind(sequence)
            .bind(b.refresh_hint)
            .bind(now),
        )
        .await?;
    }

    let tainted: BTreeSet<&[u8]> = b.tainted_x509.iter().map(Vec::as_slice).collect();
    for (position, der) in b.x509_authorities.iter().enumerate() {
        tx.execute(
            Sql::new(
                "INSERT INTO bundle_x509_authorities (trust_domain, position, der, tainted) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(td)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(der.as_slice())
            .bind(tainted.contains(der.as_slice())),
        )
        .await?;
    }
    for (position, key) in b.jwt_authorities.iter().enumerate() {
        tx.execute(
            Sql::new(
                "INSERT INTO bundle_jwt_keys (trust_domain, position, key_id, public_key, \
                 expires_at, tainted) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(td)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(&key.key_id)
            .bind(key.public_key.as_slice())
            .bind(key.expires_at)
            .bind(key.tainted),
        )
        .await?;
    }
    Ok(())
}

/// Deletes the bundle of `td` with its authorities and keys.
pub(super) async fn delete(tx: &mut Tx, td: &str) -> Result<(), DatastoreError> {
    delete_children(tx, td).await?;
    tx.execute(Sql::new("DELETE FROM bundles WHERE trust_domain = ?").bind(td))
        .await?;
    Ok(())
}

async fn delete_children(tx: &mut Tx, td: &str) -> Result<(), DatastoreError> {
    for table in ["bundle_x509_authorities", "bundle_jwt_keys"] {
        let mut q = Sql::new("DELETE FROM ");
        q.push(table).push(" WHERE trust_domain = ").push_bind(td);
        tx.execute(q).await?;
    }
    Ok(())
}
