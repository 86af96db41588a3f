//! Trust bundles, own and federated: one per trust domain, with a sequence number that grows
//! whenever the content changes.

use std::collections::BTreeSet;

use lanyard_spiffe::TrustDomain;

use super::bundle_rows::{self, get};
use super::changes;
use super::entries;
use super::entry_update::{dissociate, federating_entries};
use super::exec::{Sql, Tx, text};
use super::page;
use crate::bundle::{BundleDeleteMode, StoredBundle};
use crate::change::ChangeKind;
use crate::error::DatastoreError;

/// Replaces the X.509 authorities of `td`'s bundle (creating it at sequence 1); the sequence
/// grows only if the set of certificates differs from the stored one. JWT keys stay, and
/// tainted marks stay on the certificates that remain.
pub(super) async fn set_authorities(
    tx: &mut Tx,
    td: &TrustDomain,
    x509: Vec<Vec<u8>>,
    now: i64,
) -> Result<StoredBundle, DatastoreError> {
    let authorities = dedup(x509);
    let (bundle, exists) = match get(tx, td).await? {
        Some(stored) if same_set(&stored.x509_authorities, &authorities) => return Ok(stored),
        Some(stored) => {
            let kept: BTreeSet<&Vec<u8>> = authorities.iter().collect();
            let tainted_x509 = stored
                .tainted_x509
                .iter()
                .filter(|der| kept.contains(der))
                .cloned()
                .collect();
            let bundle = StoredBundle {
                sequence: stored.sequence.saturating_add(1),
                x509_authorities: authorities,
                tainted_x509,
                ..stored
            };
            (bundle, true)
        }
        None => (StoredBundle::new(td.clone(), authorities), false),
    };
    save(tx, &bundle, exists, now).await?;
    Ok(bundle)
}

/// Raises the sequence of `td`'s bundle by one. `None` if there is no bundle.
pub(super) async fn bump_sequence(
    tx: &mut Tx,
    td: &TrustDomain,
    now: i64,
) -> Result<Option<StoredBundle>, DatastoreError> {
    let Some(stored) = get(tx, td).await? else {
        return Ok(None);
    };
    let sequence = stored.sequence.saturating_add(1);
    tx.execute(
        Sql::new("UPDATE bundles SET sequence = ?, updated_at = ? WHERE trust_domain = ?")
            .bind(i64::try_from(sequence).unwrap_or(i64::MAX))
            .bind(now)
            .bind(td.name()),
    )
    .await?;
    changes::record(tx, ChangeKind::Bundle, td.name(), now).await?;
    Ok(Some(StoredBundle { sequence, ..stored }))
}

/// Stores a new bundle at the sequence given (0 becomes 1).
pub(super) async fn create(
    tx: &mut Tx,
    b: &StoredBundle,
    now: i64,
) -> Result<StoredBundle, DatastoreError> {
    let mut bundle = canonical(b)?;
    if get(tx, &bundle.trust_domain).await?.is_some() {
        return Err(DatastoreError::BundleAlreadyExists(bundle.trust_domain));
    }
    bundle.sequence = bundle.sequence.max(1);
    save(tx, &bundle, false, now).await?;
    Ok(bundle)
}

/// Creates or replaces a bundle. `must_exist` refuses to create one.
pub(super) async fn put(
    tx: &mut Tx,
    b: &StoredBundle,
    must_exist: bool,
    now: i64,
) -> Result<StoredBundle, DatastoreError> {
    let mut bundle = canonical(b)?;
    match get(tx, &bundle.trust_domain).await? {
        None if must_exist => Err(DatastoreError::BundleNotFound(bundle.trust_domain)),
        None => {
            bundle.sequence = bundle.sequence.max(1);
            save(tx, &bundle, false, now).await?;
            Ok(bundle)
        }
        Some(stored) => {
            let changed = !same_content(&stored, &bundle);
            bundle.sequence = if bundle.sequence > stored.sequence {
                bundle.sequence
            } else if changed {
                stored.sequence.saturating_add(1)
            } else {
                stored.sequence
            };
            if bundle.sequence == stored.sequence {
                return Ok(stored);
            }
            save(tx, &bundle, true, now).await?;
            Ok(bundle)
        }
    }
}

/// Deletes the bundle of `td`, handling the entries that federate with it as `mode` says.
pub(super) async fn delete(
    tx: &mut Tx,
    td: &TrustDomain,
    mode: BundleDeleteMode,
    now: i64,
) -> Result<StoredBundle, DatastoreError> {
    let Some(stored) = get(tx, td).await? else {
        return Err(DatastoreError::BundleNotFound(td.clone()));
    };
    match mode {
        BundleDeleteMode::Restrict => {
            let users = federating_entries(tx, td).await?;
            if !users.is_empty() {
                return Err(DatastoreError::BundleInUse {
                    trust_domain: td.clone(),
                    entries: u64::try_from(users.len()).unwrap_or(u64::MAX),
                });
            }
        }
        BundleDeleteMode::Delete => {
            for id in federating_entries(tx, td).await? {
                entries::delete(tx, &id, now).await?;
            }
        }
        BundleDeleteMode::Dissociate => {
            dissociate(tx, td, now).await?;
        }
    }
    bundle_rows::delete(tx, td.name()).await?;
    changes::record(tx, ChangeKind::Bundle, td.name(), now).await?;
    Ok(stored)
}

/// One page of bundles in trust domain order, after trust domain `after`.
pub(super) async fn list(
    tx: &mut Tx,
    page_size: u32,
    after: Option<&str>,
) -> Result<(Vec<StoredBundle>, Option<String>), DatastoreError> {
    let mut q = Sql::new("SELECT trust_domain FROM bundles");
    if let Some(after) = after {
        q.push(" WHERE trust_domain > ").push_bind(after);
    }
    q.push(" ORDER BY trust_domain");
    if let Some(limit) = page::limit(page_size) {
        q.push(" LIMIT ").push_bind(limit);
    }
    let names = tx
        .fetch_all(q)
        .await?
        .iter()
        .map(|row| text(row, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let (names, next) = page::finish(names, page_size, Clone::clone);
    let mut bundles = Vec::with_capacity(names.len());
    for name in names {
        let td = TrustDomain::new(&name)
            .map_err(|e| DatastoreError::Corrupt(format!("bundle trust domain '{name}': {e}")))?;
        if let Some(bundle) = get(tx, &td).await? {
            bundles.push(bundle);
        }
    }
    Ok((bundles, next))
}

/// How many bundles are stored.
pub(super) async fn count(tx: &mut Tx) -> Result<u64, DatastoreError> {
    let n = tx
        .fetch_int(Sql::new("SELECT COUNT(*) FROM bundles"))
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn save(
    tx: &mut Tx,
    bundle: &StoredBundle,
    exists: bool,
    now: i64,
) -> Result<(), DatastoreError> {
    bundle_rows::write(tx, bundle, exists, now).await?;
    changes::record(tx, ChangeKind::Bundle, bundle.trust_domain.name(), now).await
}

/// Checks a bundle given by a caller and drops repeated certificates.
fn canonical(b: &StoredBundle) -> Result<StoredBundle, DatastoreError> {
    let x509_authorities = dedup(b.x509_authorities.clone());
    let tainted_x509 = dedup(b.tainted_x509.clone());
    if let Some(stray) = tainted_x509
        .iter()
        .find(|der| !x509_authorities.contains(der))
    {
        return Err(DatastoreError::InvalidInput(format!(
            "bundle of '{}' marks a certificate of {} bytes tainted that is not among its x509 \
             authorities: only authorities of the bundle can be tainted",
            b.trust_domain,
            stray.len()
        )));
    }
    let mut key_ids = BTreeSet::new();
    for key in &b.jwt_authorities {
        if key.key_id.is_empty() || !key_ids.insert(key.key_id.as_str()) {
            return Err(DatastoreError::InvalidInput(format!(
                "bundle of '{}' has jwt key id '{}' empty or more than once: key ids must be \
                 non-empty and unique within a bundle",
                b.trust_domain, key.key_id
            )));
        }
    }
    Ok(StoredBundle {
        x509_authorities,
        tainted_x509,
        ..b.clone()
    })
}

/// Whether two bundles hold the same authorities, keys, taints and refresh hint (in any order).
fn same_content(a: &StoredBundle, b: &StoredBundle) -> bool {
    let keys = |s: &StoredBundle| {
        let mut keys: Vec<_> = s
            .jwt_authorities
            .iter()
            .map(|k| {
                (
                    k.key_id.clone(),
                    k.public_key.clone(),
                    k.expires_at,
                    k.tainted,
                )
            })
            .collect();
        keys.sort();
        keys
    };
    same_set(&a.x509_authorities, &b.x509_authorities)
        && same_set(&a.tainted_x509, &b.tainted_x509)
        && keys(a) == keys(b)
        && a.refresh_hint == b.refresh_hint
}

fn dedup(ders: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut seen = BTreeSet::new();
    ders.into_iter()
        .filter(|der| seen.insert(der.clone()))
        .collect()
}

fn same_set(a: &[Vec<u8>], b: &[Vec<u8>]) -> bool {
    let a: BTreeSet<&[u8]> = a.iter().map(Vec::as_slice).collect();
    let b: BTreeSet<&[u8]> = b.iter().map(Vec::as_slice).collect();
    a == b
}
