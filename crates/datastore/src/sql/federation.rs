//! Federation relationships: where a foreign trust domain publishes its bundle and how that
//! endpoint authenticates.

use lanyard_spiffe::{SpiffeId, TrustDomain};
use sqlx::any::AnyRow;

use super::changes;
use super::exec::{Sql, Tx, opt_text, text};
use super::page;
use crate::bundle::{BundleEndpointProfile, FederationRelationship};
use crate::change::ChangeKind;
use crate::error::DatastoreError;

/// Longest bundle endpoint URL accepted, in bytes.
const MAX_URL_LEN: usize = 2048;

const COLUMNS: &str = "SELECT trust_domain, bundle_endpoint_url, endpoint_profile, \
     endpoint_spiffe_id FROM federation_relationships";

const HTTPS_WEB: &str = "https_web";
const HTTPS_SPIFFE: &str = "https_spiffe";

/// Stores a new relationship.
pub(super) async fn create(
    tx: &mut Tx,
    r: &FederationRelationship,
    now: i64,
) -> Result<FederationRelationship, DatastoreError> {
    check(r)?;
    if get(tx, &r.trust_domain).await?.is_some() {
        return Err(DatastoreError::FederationRelationshipAlreadyExists(
            r.trust_domain.clone(),
        ));
    }
    let (profile, endpoint_id) = profile_columns(&r.profile);
    tx.execute(
        Sql::new(
            "INSERT INTO federation_relationships (trust_domain, bundle_endpoint_url, \
             endpoint_profile, endpoint_spiffe_id, updated_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(r.trust_domain.name())
        .bind(&r.bundle_endpoint_url)
        .bind(profile)
        .bind(endpoint_id)
        .bind(now),
    )
    .await?;
    changes::record(
        tx,
        ChangeKind::FederationRelationship,
        r.trust_domain.name(),
        now,
    )
    .await?;
    Ok(r.clone())
}

/// The relationship with `td`, if any.
pub(super) async fn get(
    tx: &mut Tx,
    td: &TrustDomain,
) -> Result<Option<FederationRelationship>, DatastoreError> {
    let mut q = Sql::new(COLUMNS);
    q.push(" WHERE trust_domain = ").push_bind(td.name());
    tx.fetch_optional(q).await?.as_ref().map(build).transpose()
}

/// One page of relationships in trust domain order, after trust domain `after`.
pub(super) async fn list(
    tx: &mut Tx,
    page_size: u32,
    after: Option<&str>,
) -> Result<(Vec<FederationRelationship>, Option<String>), DatastoreError> {
    let mut q = Sql::new(COLUMNS);
    if let Some(after) = after {
        q.push(" WHERE trust_domain > ").push_bind(after);
    }
    q.push(" ORDER BY trust_domain");
    if let Some(limit) = page::limit(page_size) {
        q.push(" LIMIT ").push_bind(limit);
    }
    let rows = tx
        .fetch_all(q)
        .await?
        .iter()
        .map(build)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page::finish(rows, page_size, |r| {
        r.trust_domain.name().to_owned()
    }))
}

/// Replaces an existing relationship.
pub(super) async fn update(
    tx: &mut Tx,
    r: &FederationRelationship,
    now: i64,
) -> Result<FederationRelationship, DatastoreError> {
    check(r)?;
    if get(tx, &r.trust_domain).await?.is_none() {
        return Err(DatastoreError::FederationRelationshipNotFound(
            r.trust_domain.clone(),
        ));
    }
    let (profile, endpoint_id) = profile_columns(&r.profile);
    tx.execute(
        Sql::new(
            "UPDATE federation_relationships SET bundle_endpoint_url = ?, endpoint_profile = ?, \
             endpoint_spiffe_id = ?, updated_at = ? WHERE trust_domain = ?",
        )
        .bind(&r.bundle_endpoint_url)
        .bind(profile)
        .bind(endpoint_id)
        .bind(now)
        .bind(r.trust_domain.name()),
    )
    .await?;
    changes::record(
        tx,
        ChangeKind::FederationRelationship,
        r.trust_domain.name(),
        now,
    )
    .await?;
    Ok(r.clone())
}

/// Deletes the relationship with `td`.
pub(super) async fn delete(tx: &mut Tx, td: &TrustDomain, now: i64) -> Result<(), DatastoreError> {
    if get(tx, td).await?.is_none() {
        return Err(DatastoreError::FederationRelationshipNotFound(td.clone()));
    }
    tx.execute(
        Sql::new("DELETE FROM federation_relationships WHERE trust_domain = ?").bind(td.name()),
    )
    .await?;
    changes::record(tx, ChangeKind::FederationRelationship, td.name(), now).await
}

fn check(r: &FederationRelationship) -> Result<(), DatastoreError> {
    let url = &r.bundle_endpoint_url;
    if !url.starts_with("https://") || url.len() > MAX_URL_LEN {
        return Err(DatastoreError::InvalidInput(format!(
            "bundle endpoint url '{url}' of '{}' is not an https url of at most {MAX_URL_LEN} \
             bytes: bundle endpoints are served over https",
            r.trust_domain
        )));
    }
    Ok(())
}

fn profile_columns(profile: &BundleEndpointProfile) -> (&'static str, Option<&str>) {
    match profile {
        BundleEndpointProfile::HttpsWeb => (HTTPS_WEB, None),
        BundleEndpointProfile::HttpsSpiffe { endpoint_spiffe_id } => {
            (HTTPS_SPIFFE, Some(endpoint_spiffe_id.as_str()))
        }
    }
}

fn build(row: &AnyRow) -> Result<FederationRelationship, DatastoreError> {
    let name = text(row, 0)?;
    let corrupt = |what: String| {
        DatastoreError::Corrupt(format!("federation relationship with '{name}': {what}"))
    };
    let trust_domain = TrustDomain::new(&name).map_err(|e| corrupt(e.to_string()))?;
    let profile = match (text(row, 2)?.as_str(), opt_text(row, 3)?) {
        (HTTPS_WEB, None) => BundleEndpointProfile::HttpsWeb,
        (HTTPS_SPIFFE, Some(id)) => BundleEndpointProfile::HttpsSpiffe {
            endpoint_spiffe_id: SpiffeId::parse(&id).map_err(|e| corrupt(e.to_string()))?,
        },
        (other, id) => {
            return Err(corrupt(format!(
                "profile '{other}' with endpoint spiffe id {id:?}"
            )));
        }
    };
    Ok(FederationRelationship {
        trust_domain,
        bundle_endpoint_url: text(row, 1)?,
        profile,
    })
}
