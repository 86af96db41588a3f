//! The CA manager's state: which authority is prepared, active or old, and the steps that move
//! authorities between those slots.

use std::sync::Arc;
use std::time::SystemTime;

use lanyard_spiffe::TrustDomain;
use rustls_pki_types::CertificateDer;

use crate::authority::X509Authority;
use crate::encoding::validity_of;
use crate::error::{CaError, fmt_time};
use crate::journal::{Record, Status};
use crate::key::{KeyManager, validate_key_id};
use crate::manager::{CaConfig, X509_KEY_IDS};
use crate::rotation::{self, Published, Rotating, SlotsMut};
use crate::schedule::prune_at;
use crate::upstream::{UpstreamAuthority, UpstreamChain};

/// An authority that can sign, with the key id its key is stored under.
#[derive(Clone)]
pub(crate) struct Signer {
    pub(crate) authority: Arc<X509Authority>,
    pub(crate) key_id: String,
}

/// A replaced authority: only its certificate matters (it never signs again, and its key id may
/// already hold its successor's successor).
#[derive(Clone)]
pub(crate) struct Retired {
    pub(crate) cert: CertificateDer<'static>,
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
    pub(crate) key_id: String,
    /// Marked for replacement through the LocalAuthority API (see `local_authority.rs`).
    pub(crate) tainted: bool,
    /// Set when an upstream authority signed the certificate: its roots stay in the bundle.
    pub(crate) upstream: Option<UpstreamChain>,
}

impl Retired {
    /// Whether it still belongs in the bundle at `now`: until the grace period after its
    /// expiry ends (see [`prune_at`]).
    pub(crate) fn published_at(&self, now: SystemTime) -> bool {
        now < prune_at(self.not_before, self.not_after)
    }
}

impl Published for Retired {
    fn published_at(&self, now: SystemTime) -> bool {
        Retired::published_at(self, now)
    }
}

impl Rotating for Signer {
    type Retired = Retired;

    const FIRST_KEY_ID: &'static str = X509_KEY_IDS[0];

    fn validity(&self) -> (SystemTime, SystemTime) {
        (self.authority.not_before(), self.authority.not_after())
    }

    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn successor_key_id(&self) -> &'static str {
        other_key_id(&self.key_id)
    }

    fn warn_expired() {
        tracing::warn!("Active CA expired before it was rotated; was the server down?");
    }

    fn hand_over(self, next: &Self, old: Option<&Retired>, now: SystemTime) -> Retired {
        if old.is_some_and(|o| now < o.not_after) {
            tracing::warn!("Replacing an unexpired old CA; SVIDs it signed lose their root");
        }
        let a = &self.authority;
        tracing::info!(
            serial = next.authority.serial_hex(),
            previous = a.serial_hex(),
            "Activated CA"
        );
        Retired {
            cert: a.cert().clone(),
            not_before: a.not_before(),
            not_after: a.not_after(),
            key_id: self.key_id.clone(),
            tainted: false,
            upstream: a.upstream().cloned(),
        }
    }
}

/// The published state.
#[derive(Clone)]
pub(crate) struct Slots {
    pub(crate) prepared: Option<Signer>,
    pub(crate) active: Signer,
    pub(crate) old: Option<Retired>,
}

impl Slots {
    pub(crate) fn records(&self) -> Vec<Record> {
        let mut records = Vec::with_capacity(3);
        if let Some(old) = &self.old {
            records.push(Record {
                status: Status::Old,
                key_id: old.key_id.clone(),
                cert_der: old.cert.to_vec(),
                tainted: old.tainted,
                upstream: old.upstream.clone(),
            });
        }
        for (status, signer) in [
            (Status::Active, Some(&self.active)),
            (Status::Prepared, self.prepared.as_ref()),
        ] {
            if let Some(s) = signer {
                records.push(Record {
                    status,
                    key_id: s.key_id.clone(),
                    cert_der: s.authority.cert().to_vec(),
                    tainted: false,
                    upstream: s.authority.upstream().cloned(),
                });
            }
        }
        records
    }

    pub(crate) fn certs(&self) -> Vec<CertificateDer<'static>> {
        self.records()
            .into_iter()
            .map(|r| CertificateDer::from(r.cert_der))
            .collect()
    }
}

/// State under construction (restore, rotation), where the active slot may be empty.
#[derive(Clone, Default)]
pub(crate) struct Draft {
    pub(crate) prepared: Option<Signer>,
    pub(crate) active: Option<Signer>,
    pub(crate) old: Option<Retired>,
}

impl From<Slots> for Draft {
    fn from(s: Slots) -> Self {
        Self {
            prepared: s.prepared,
            active: Some(s.active),
            old: s.old,
        }
    }
}

impl Draft {
    fn slots(&mut self) -> SlotsMut<'_, Signer> {
        SlotsMut {
            prepared: &mut self.prepared,
            active: &mut self.active,
            old: &mut self.old,
        }
    }

    pub(crate) fn finish(self) -> Result<Slots, CaError> {
        let active = self.active.ok_or_else(|| {
            CaError::CorruptJournal("no active authority after rotation".to_owned())
        })?;
        Ok(Slots {
            prepared: self.prepared,
            active,
            old: self.old,
        })
    }
}

/// Makes and restores authorities.
pub(crate) struct Minter {
    pub(crate) td: TrustDomain,
    pub(crate) config: CaConfig,
    pub(crate) km: Arc<dyn KeyManager>,
    /// Signs new authorities instead of self-signing them, when configured.
    pub(crate) upstream: Option<Arc<dyn UpstreamAuthority>>,
}

impl Minter {
    /// Turns journal records into a draft, dropping expired ones (an old one once its grace
    /// period is over) and ones whose key is gone.
    /// Returns whether anything was dropped (so the journal needs saving).
    pub(crate) fn restore(
        &self,
        records: &[Record],
        now: SystemTime,
    ) -> Result<(Draft, bool), CaError> {
        let mut draft = Draft::default();
        let mut dropped = false;
        let mut keyless_active = None;
        for record in records {
            validate_key_id(&record.key_id).map_err(|e| CaError::CorruptJournal(e.to_string()))?;
            let (not_before, not_after) = validity_of(&record.cert_der).map_err(|e| {
                CaError::CorruptJournal(format!("certificate of key id '{}': {e}", record.key_id))
            })?;
            if rotation::record_gone(record.status, not_before, not_after, now) {
                dropped = true;
                continue;
            }

            let duplicate =
                || CaError::CorruptJournal(format!("more than one {:?} authority", record.status));
            if record.status == Status::Old {
                if draft.old.is_some() {
                    return Err(duplicate());
                }
                draft.old = Some(Retired {
                    cert: CertificateDer::from(record.cert_der.clone()),
                    not_before,
                    not_after,
                    key_id: record.key_id.clone(),
                    tainted: record.tainted,
                    upstream: record.upstream.clone(),
                });
                continue;
            }

            let Some(key) = self.km.get_key(&record.key_id)? else {
                tracing::warn!(
                    key.id = %record.key_id,
                    "Key of a {:?} CA is missing from the key manager; a new CA replaces it",
                    record.status
                );
                dropped = true;
                if record.status == Status::Active {
                    keyless_active = Some(Retired {
                        cert: CertificateDer::from(record.cert_der.clone()),
                        not_before,
                        not_after,
                        key_id: record.key_id.clone(),
                        tainted: false,
                        upstream: record.upstream.clone(),
                    });
                }
                continue;
            };
            let authority =
                X509Authority::from_parts(CertificateDer::from(record.cert_der.clone()), key)?
                    .with_upstream(record.upstream.clone());
            if authority.trust_domain() != &self.td {
                return Err(CaError::InvalidAuthority(format!(
                    "{} is for trust domain '{}', this server's is '{}'",
                    authority.serial_hex(),
                    authority.trust_domain(),
                    self.td
                )));
            }
            let signer = Some(Signer {
                authority: Arc::new(authority),
                key_id: record.key_id.clone(),
            });
            let slot = match record.status {
                Status::Active => &mut draft.active,
                _ => &mut draft.prepared,
            };
            if slot.is_some() {
                return Err(duplicate());
            }
            *slot = signer;
        }

        rotation::finish_restore(draft.slots(), keyless_active, "authorities")?;
        Ok((draft, dropped))
    }

    /// Applies every step the schedule calls for at `now`. Returns whether anything changed.
    pub(crate) fn advance(&self, draft: &mut Draft, now: SystemTime) -> Result<bool, CaError> {
        rotation::advance(draft.slots(), now, |key_id| self.mint(key_id, now))
    }

    /// Generates a key under `key_id` and a new authority for it: signed by the upstream
    /// authority if one is configured, else self-signed.
    pub(crate) fn mint(&self, key_id: &str, now: SystemTime) -> Result<Signer, CaError> {
        // TODO: key generation runs on the calling task; an RSA-4096 key takes about a second.
        // Move it to a blocking thread if rotation ever shows up as runtime stalls.
        let key = self.km.generate_key(key_id, self.config.key_type)?;
        let ttl = self.config.ca_ttl;
        let authority = match &self.upstream {
            Some(upstream) => {
                X509Authority::signed_by_upstream(&self.td, key, upstream.as_ref(), ttl, now)?
            }
            None => X509Authority::self_signed(&self.td, key, ttl, now)?,
        };
        tracing::info!(
            key.id = key_id,
            serial = authority.serial_hex(),
            not_after = %fmt_time(authority.not_after()),
            upstream = self.upstream.is_some(),
            "Created CA"
        );
        Ok(Signer {
            authority: Arc::new(authority),
            key_id: key_id.to_owned(),
        })
    }
}

pub(crate) fn other_key_id(id: &str) -> &'static str {
    if id == X509_KEY_IDS[0] {
        X509_KEY_IDS[1]
    } else {
        X509_KEY_IDS[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JournalStore;
    use crate::key::{KeyType, MemoryKeyManager};
    use crate::manager::CaManager;
    use crate::test_support::{HOUR, Harness, serials, verify_leaf};

    #[tokio::test]
    async fn lost_keys_lead_to_a_new_ca_and_the_old_one_stays_published() {
        let mut h = Harness::new();
        let before = h.load().await.unwrap();
        let first = before.active();
        let first_jwt = before.active_jwt_authority();
        let signed = h.sign(&before, HOUR);

        h.km = Arc::new(MemoryKeyManager::new());
        let ca = h.load().await.unwrap();
        assert_ne!(ca.active().serial_hex(), first.serial_hex());
        assert_eq!(
            serials(&ca.authorities()),
            vec![first.serial_hex(), ca.active().serial_hex()],
            "the keyless CA is now the old one"
        );
        verify_leaf(&signed, &ca.authorities(), h.now()).unwrap();
        assert_eq!(
            h.statuses(),
            vec![
                (Status::Old, "x509-CA-A".to_owned()),
                (Status::Active, "x509-CA-A".to_owned())
            ],
            "journal rewritten with the lost CA as old"
        );
        let kids: Vec<String> = ca
            .jwt_authorities()
            .iter()
            .map(|k| k.kid().to_owned())
            .collect();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[0], first_jwt.kid());
        assert_ne!(ca.active_jwt_authority().kid(), first_jwt.kid());
    }

    #[tokio::test]
    async fn refuses_a_journal_whose_key_was_replaced() {
        let h = Harness::new();
        h.load().await.unwrap();
        h.km.generate_key("x509-CA-A", KeyType::EcP256).unwrap();
        let err = h.load().await.unwrap_err();
        assert!(matches!(err, CaError::KeyMismatch { .. }), "{err}");
    }

    #[tokio::test]
    async fn refuses_a_journal_of_another_trust_domain() {
        let h = Harness::new();
        h.load().await.unwrap();
        let err = CaManager::load_or_create(
            TrustDomain::new("other.org").unwrap(),
            CaConfig::default(),
            Arc::clone(&h.km),
            h.journal.clone(),
            h.clock.clone(),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("trust domain 'example.org'"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn replaces_an_expired_ca_after_downtime() {
        let h = Harness::new();
        let first = h.load().await.unwrap().active();
        h.clock.set(first.not_after() + 100 * HOUR);

        let ca = h.load().await.unwrap();
        assert_ne!(ca.active().serial_hex(), first.serial_hex());
        assert_eq!(serials(&ca.authorities()), vec![ca.active().serial_hex()]);
        verify_leaf(&h.sign(&ca, HOUR), &ca.authorities(), h.now()).unwrap();
    }

    #[tokio::test]
    async fn rejects_a_corrupt_journal() {
        let h = Harness::new();
        h.journal.save_journal(b"{\"version\": 7}").await.unwrap();
        assert!(matches!(h.load().await, Err(CaError::CorruptJournal(_))));
    }
}
