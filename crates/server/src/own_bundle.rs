//! The trust domain's own bundle: what the CA publishes merged with what is already stored,
//! and the in-memory copy that TLS verification reads on every handshake.

use std::collections::BTreeSet;
use std::sync::Arc;

use arc_swap::ArcSwap;
use lanyard_datastore::{StoredBundle, StoredJwtKey};
use lanyard_spiffe::{BundleSource, TrustDomain, X509Bundle};

use crate::ServerError;
use crate::state::{ServerState, unix_seconds};

impl ServerState {
    /// Writes the CA's current X.509 authorities and JWT keys (with their taint) to the stored
    /// bundle, keeping what this CA did not put there (authorities appended by an admin, those
    /// of other servers sharing the database), and refreshes the in-memory bundle from it.
    ///
    /// Storing the JWT keys lets every server sharing the database serve the keys of all of
    /// them, so a JWT-SVID signed by one validates against the bundle served by another.
    pub(crate) async fn publish_bundle(&self) -> Result<(), ServerError> {
        let stored = self
            .datastore
            .get_bundle(&self.trust_domain)
            .await?
            .unwrap_or_else(|| StoredBundle::new(self.trust_domain.clone(), Vec::new()));
        let ours = self.ca_view();
        let now = self.now_unix();
        let merged = {
            let mut published = self
                .published
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let merged = merge(&stored, &ours, &published, now);
            *published = Published {
                x509: ours.x509_authorities.iter().cloned().collect(),
                kids: ours
                    .jwt_authorities
                    .iter()
                    .map(|k| k.key_id.clone())
                    .collect(),
            };
            merged
        };
        let stored = self.datastore.put_bundle(&merged).await?;
        self.use_bundle(&stored);
        tracing::debug!(sequence = stored.sequence, "Bundle published");
        Ok(())
    }

    /// The CA's authorities and keys as a bundle, in the CA's order (oldest first).
    fn ca_view(&self) -> StoredBundle {
        let tainted_kids = self.ca.tainted_jwt_kids();
        let mut b = StoredBundle::new(
            self.trust_domain.clone(),
            self.ca.authorities().iter().map(|c| c.to_vec()).collect(),
        );
        b.tainted_x509 = self
            .ca
            .tainted_authorities()
            .iter()
            .map(|c| c.to_vec())
            .collect();
        b.jwt_authorities = self
            .ca
            .jwt_authorities()
            .iter()
            .map(|k| StoredJwtKey {
                key_id: k.kid().to_owned(),
                public_key: k.public_key().to_spki_der(),
                expires_at: unix_seconds(k.not_after()),
                tainted: tainted_kids.iter().any(|t| t == k.kid()),
            })
            .collect();
        b
    }

    /// Refreshes the in-memory bundle from the stored one, after another writer changed it.
    pub(crate) async fn reload_bundle(&self) -> Result<(), ServerError> {
        if let Some(stored) = self.datastore.get_bundle(&self.trust_domain).await? {
            self.use_bundle(&stored);
        }
        Ok(())
    }

    /// Installs `stored` (our own bundle as just written or read) as the bundle TLS
    /// verification uses, and tells the agents' watch streams when its sequence grew.
    pub(crate) fn use_bundle(&self, stored: &StoredBundle) {
        self.bundle.store(x509_bundle(stored));
        self.changes.bundle_stored(stored.sequence);
    }

    /// Publishes the CA's authorities after a change the certificate set may not show (an
    /// authority tainted, a JWT key prepared or revoked): the bundle's sequence rises even when
    /// its certificates stay the same, so whoever compares sequences notices.
    pub(crate) async fn publish_authority_change(&self) -> Result<(), ServerError> {
        let before = self
            .datastore
            .get_bundle(&self.trust_domain)
            .await?
            .map(|b| b.sequence);
        self.publish_bundle().await?;
        let after = self
            .datastore
            .get_bundle(&self.trust_domain)
            .await?
            .map(|b| b.sequence);
        if after == before {
            let bumped = self
                .datastore
                .bump_bundle_sequence(&self.trust_domain)
                .await?;
            if let Some(b) = &bumped {
                self.changes.bundle_stored(b.sequence);
            }
            tracing::debug!(
                sequence = bumped.map(|b| b.sequence),
                "Bundle sequence raised after an authority change"
            );
        }
        Ok(())
    }
}

/// The authorities and JWT key IDs this server's CA put into the stored bundle at its last
/// publication. The next publication drops the ones the CA no longer holds (revoked or
/// pruned) and keeps every other stored one.
#[derive(Debug, Default)]
pub(crate) struct Published {
    x509: BTreeSet<Vec<u8>>,
    kids: BTreeSet<String>,
}

/// The stored bundle after publishing `ours`: our authorities and keys first, then the stored
/// ones that are neither ours, nor dropped by our CA since `published`, nor expired.
fn merge(
    stored: &StoredBundle,
    ours: &StoredBundle,
    published: &Published,
    now: i64,
) -> StoredBundle {
    let mut merged = ours.clone();
    merged.sequence = stored.sequence;
    merged.refresh_hint = stored.refresh_hint;
    for cert in &stored.x509_authorities {
        let keep = !ours.x509_authorities.contains(cert)
            && !published.x509.contains(cert)
            && !expired(cert, now);
        if keep {
            merged.x509_authorities.push(cert.clone());
            if stored.tainted_x509.contains(cert) {
                merged.tainted_x509.push(cert.clone());
            }
        }
    }
    for key in &stored.jwt_authorities {
        let keep = !ours.jwt_authorities.iter().any(|k| k.key_id == key.key_id)
            && !published.kids.contains(&key.key_id)
            && (key.expires_at == 0 || key.expires_at >= now);
        if keep {
            merged.jwt_authorities.push(key.clone());
        }
    }
    merged
}

/// The trust bundle that TLS verification consults; replaced atomically on rotation.
pub(crate) struct CurrentBundle(ArcSwap<X509Bundle>);

impl CurrentBundle {
    pub(crate) fn new(bundle: X509Bundle) -> Self {
        Self(ArcSwap::from_pointee(bundle))
    }

    pub(crate) fn store(&self, bundle: X509Bundle) {
        self.0.store(Arc::new(bundle));
    }
}

impl BundleSource for CurrentBundle {
    fn x509_bundle(&self, td: &TrustDomain) -> Option<X509Bundle> {
        let bundle = self.0.load();
        (bundle.trust_domain() == td).then(|| X509Bundle::clone(&bundle))
    }
}

/// The X.509 part of a stored bundle, for TLS verification.
fn x509_bundle(stored: &StoredBundle) -> X509Bundle {
    X509Bundle::new(
        stored.trust_domain.clone(),
        stored
            .x509_authorities
            .iter()
            .map(|c| rustls_pki_types::CertificateDer::from(c.clone()))
            .collect(),
    )
}

/// Whether a DER certificate expired before `now`; one that does not parse counts as
/// current, so nothing is dropped on a parsing doubt.
fn expired(der: &[u8], now: i64) -> bool {
    let cert = rustls_pki_types::CertificateDer::from(der);
    lanyard_spiffe::x509::not_after_of(&cert)
        .map(|t| unix_seconds(t) < now)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, expires_at: i64) -> StoredJwtKey {
        StoredJwtKey {
            key_id: kid.into(),
            public_key: vec![1],
            expires_at,
            tainted: false,
        }
    }

    #[test]
    fn keeps_foreign_material_and_drops_what_our_ca_let_go() {
        let td = TrustDomain::new("example.org").unwrap();
        // Not certificates: `expired` keeps what it cannot parse, so only the rules show.
        let mut stored = StoredBundle::new(td.clone(), vec![b"old".to_vec(), b"appended".to_vec()]);
        stored.sequence = 7;
        stored.jwt_authorities = vec![key("old-kid", 0), key("other-server", 0), key("gone", 5)];
        let mut ours = StoredBundle::new(td, vec![b"new".to_vec()]);
        ours.jwt_authorities = vec![key("new-kid", 0)];
        let published = Published {
            x509: [b"old".to_vec()].into(),
            kids: ["old-kid".to_string()].into(),
        };
        let merged = merge(&stored, &ours, &published, 100);
        assert_eq!(
            merged.x509_authorities,
            [b"new".to_vec(), b"appended".to_vec()]
        );
        let kids: Vec<&str> = merged
            .jwt_authorities
            .iter()
            .map(|k| k.key_id.as_str())
            .collect();
        assert_eq!(kids, ["new-kid", "other-server"], "expired keys go too");
        assert_eq!(
            merged.sequence, 7,
            "put_bundle raises it when the content changed"
        );
    }
}
