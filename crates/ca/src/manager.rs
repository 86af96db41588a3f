//! The CA manager: keeps a prepared, an active and an old X.509 authority and JWT signing key,
//! rotates them on schedule (see [`crate::schedule`]), and persists them through a
//! [`JournalStore`].

use std::borrow::Borrow;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use lanyard_spiffe::jwt::JwtSvidClaims;
use lanyard_spiffe::{JwtBundle, SpiffeId, TrustDomain};
use rustls_pki_types::CertificateDer;

use crate::authority::X509Authority;
use crate::clock::Clock;
use crate::error::{CaError, fmt_time};
use crate::journal::{self, Journal, JournalStore};
use crate::jwt::{JwtAuthority, JwtDraft, JwtSlots, SignedJwtSvid, whole_seconds};
use crate::key::{KeyManager, KeyType};
use crate::slots::{Draft, Minter, Slots};
use crate::svid::SvidParams;

#[path = "local_authority.rs"]
mod local_authority;
pub use local_authority::{
    AuthorityState, AuthorityStates, normalize_x509_authority_id, x509_authority_id,
};

/// The two key ids X.509 authorities alternate between.
pub const X509_KEY_IDS: [&str; 2] = ["x509-CA-A", "x509-CA-B"];

/// CA settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaConfig {
    /// Lifetime of each authority certificate and JWT signing key (SPIRE's `ca_ttl`, default
    /// 24 h).
    pub ca_ttl: Duration,
    /// Key type of new X.509 authorities. A change takes effect at the next rotation.
    pub key_type: KeyType,
    /// Key type of new JWT signing keys (SPIRE's `jwt_key_type`, default ec-p256): RSA keys
    /// sign RS256, EC P-256 ES256, EC P-384 ES384. A change takes effect at the next rotation.
    pub jwt_key_type: KeyType,
    /// The `iss` claim of JWT-SVIDs (SPIRE's `jwt_issuer`); none by default.
    pub jwt_issuer: Option<String>,
}

impl Default for CaConfig {
    fn default() -> Self {
        Self {
            ca_ttl: Duration::from_secs(24 * 3600),
            key_type: KeyType::EcP256,
            jwt_key_type: KeyType::EcP256,
            jwt_issuer: None,
        }
    }
}

/// Owner of the trust domain's X.509 authorities and JWT signing keys and their rotation.
pub struct CaManager {
    minter: Minter,
    journal: Arc<dyn JournalStore>,
    clock: Arc<dyn Clock>,
    slots: RwLock<Slots>,
    jwt: RwLock<JwtSlots>,
    rotation: tokio::sync::Mutex<()>,
}

impl CaManager {
    /// Restores the authorities from the journal, or creates the first one if there is none,
    /// then applies any rotation that is due (for example after a long downtime) and saves the
    /// journal if anything changed. `td` may be passed by value or by reference.
    ///
    /// Records whose key is missing from the key manager are dropped with a warning (a memory key
    /// manager loses its keys on restart; a new authority then replaces them).
    ///
    /// # Errors
    ///
    /// [`CaError::CorruptJournal`] for an undecodable journal, [`CaError::KeyMismatch`] when a
    /// prepared or active authority's key is not the one in the key manager,
    /// [`CaError::InvalidAuthority`] for an authority of another trust domain, and key manager
    /// or journal store failures.
    pub async fn load_or_create(
        td: impl Borrow<TrustDomain>,
        config: CaConfig,
        km: Arc<dyn KeyManager>,
        journal: Arc<dyn JournalStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CaError> {
        Self::load_or_create_with_upstream(td, config, km, None, journal, clock).await
    }

    /// As [`CaManager::load_or_create`], with new authorities signed by `upstream` (when given)
    /// instead of self-signed. Authorities already in the journal keep the chain they were
    /// minted with until they are rotated out.
    ///
    /// # Errors
    ///
    /// As [`CaManager::load_or_create`], and [`CaError::Upstream`] when a new authority is due
    /// and the upstream cannot sign it.
    pub async fn load_or_create_with_upstream(
        td: impl Borrow<TrustDomain>,
        config: CaConfig,
        km: Arc<dyn KeyManager>,
        upstream: Option<Arc<dyn crate::UpstreamAuthority>>,
        journal: Arc<dyn JournalStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CaError> {
        let minter = Minter {
            td: td.borrow().clone(),
            config,
            km,
            upstream,
        };
        let now = clock.now();

        let ((mut draft, mut dirty), (mut jwt_draft, jwt_dirty)) =
            match journal.load_journal().await? {
                Some(blob) => {
                    let saved = journal::decode(&blob)?;
                    (
                        minter.restore(&saved.x509, now)?,
                        minter.restore_jwt(&saved.jwt, now)?,
                    )
                }
                None => ((Draft::default(), true), (JwtDraft::default(), true)),
            };
        dirty |= jwt_dirty;
        dirty |= minter.advance(&mut draft, now)?;
        dirty |= minter.advance_jwt(&mut jwt_draft, now)?;
        let slots = draft.finish()?;
        let jwt = jwt_draft.finish()?;
        if dirty {
            journal.save_journal(&encode(&slots, &jwt)?).await?;
        }
        tracing::info!(
            trust_domain = %minter.td,
            serial = slots.active.authority.serial_hex(),
            not_after = %fmt_time(slots.active.authority.not_after()),
            jwt.kid = %jwt.active.info.kid(),
            "CA ready"
        );

        Ok(Self {
            minter,
            journal,
            clock,
            slots: RwLock::new(slots),
            jwt: RwLock::new(jwt),
            rotation: tokio::sync::Mutex::new(()),
        })
    }

    /// Applies whatever the schedule calls for at `clock.now()`, to the X.509 authorities and
    /// the JWT keys alike: drops expired old or prepared ones, prepares a successor, activates
    /// it (the active one becomes old), or replaces an expired active one. Saves the journal
    /// before changing what callers see. Returns whether the bundle changed (its certificates
    /// or its JWT keys), so the caller should republish [`CaManager::authorities`] and
    /// [`CaManager::jwt_authorities`].
    ///
    /// # Errors
    ///
    /// Key manager, signing or journal failures; the visible state is then unchanged.
    ///
    /// # Cancel safety
    ///
    /// Cancelling after a key was generated but before the journal was saved leaves the old state
    /// in place; the unused key is overwritten at the next rotation.
    pub async fn rotate(&self) -> Result<bool, CaError> {
        let _serialized = self.rotation.lock().await;
        let now = self.clock.now();
        let current = self.snapshot();
        let current_jwt = self.jwt_snapshot();

        let mut draft = Draft::from(current.clone());
        let mut jwt_draft = JwtDraft::from(current_jwt.clone());
        let x509_changed = self.minter.advance(&mut draft, now)?;
        let jwt_changed = self.minter.advance_jwt(&mut jwt_draft, now)?;
        if !x509_changed && !jwt_changed {
            return Ok(false);
        }
        let next = draft.finish()?;
        let next_jwt = jwt_draft.finish()?;
        self.journal
            .save_journal(&encode(&next, &next_jwt)?)
            .await?;

        let kids =
            |s: &JwtSlots| -> Vec<String> { s.records().into_iter().map(|r| r.kid).collect() };
        let changed = current.certs() != next.certs() || kids(&current_jwt) != kids(&next_jwt);
        *self.slots.write().unwrap_or_else(PoisonError::into_inner) = next;
        *self.jwt.write().unwrap_or_else(PoisonError::into_inner) = next_jwt;
        Ok(changed)
    }

    /// The authority that signs now.
    pub fn active(&self) -> Arc<X509Authority> {
        Arc::clone(&self.snapshot().active.authority)
    }

    /// The authority published ahead of activation, if one is prepared.
    pub fn prepared(&self) -> Option<Arc<X509Authority>> {
        self.snapshot().prepared.map(|p| p.authority)
    }

    /// The certificates that belong in the trust bundle at `clock.now()`, oldest first: the old
    /// authority until the grace period after its expiry ends (see
    /// [`crate::schedule::prune_at`]), the active one, and the prepared one. An authority an upstream
    /// signed is represented by the upstream roots instead (each root once).
    pub fn authorities(&self) -> Vec<CertificateDer<'static>> {
        let now = self.clock.now();
        let slots = self.snapshot();
        let mut certs = Vec::with_capacity(3);
        if let Some(old) = slots.old.as_ref().filter(|o| o.published_at(now)) {
            match &old.upstream {
                Some(up) => certs.extend(up.roots.iter().cloned()),
                None => certs.push(old.cert.clone()),
            }
        }
        certs.extend(slots.active.authority.bundle_certs());
        if let Some(prepared) = &slots.prepared {
            certs.extend(prepared.authority.bundle_certs());
        }
        let mut seen = std::collections::HashSet::new();
        certs.retain(|c| seen.insert(c.clone()));
        certs
    }

    /// Signs an X509-SVID with the active authority at `clock.now()`; its notAfter is capped at
    /// the authority's.
    ///
    /// # Errors
    ///
    /// See [`X509Authority::sign_x509_svid`].
    pub fn sign_x509_svid(&self, params: &SvidParams) -> Result<CertificateDer<'static>, CaError> {
        self.active().sign_x509_svid(params, self.clock.now())
    }

    /// As [`CaManager::sign_x509_svid`], returning the whole X509-SVID chain: the leaf, then
    /// (for an authority an upstream signed) the authority and the upstream intermediates.
    ///
    /// # Errors
    ///
    /// See [`X509Authority::sign_x509_svid`].
    pub fn sign_x509_svid_chain(
        &self,
        params: &SvidParams,
    ) -> Result<Vec<CertificateDer<'static>>, CaError> {
        let active = self.active();
        let leaf = active.sign_x509_svid(params, self.clock.now())?;
        Ok(std::iter::once(leaf).chain(active.chain()).collect())
    }

    /// The JWT signing keys that belong in the bundle at `clock.now()`, oldest first: the old
    /// key until the grace period after its expiry ends, the active one, and the prepared one (published before it signs
    /// anything, so validators know it before they meet its tokens).
    pub fn jwt_authorities(&self) -> Vec<JwtAuthority> {
        self.jwt_snapshot().published(self.clock.now())
    }

    /// [`CaManager::jwt_authorities`] as a JWT bundle of this trust domain.
    pub fn jwt_bundle(&self) -> JwtBundle {
        let mut bundle = JwtBundle::new(self.minter.td.clone());
        for key in self.jwt_authorities() {
            bundle.insert(key.kid(), key.public_key().clone());
        }
        bundle
    }

    /// The JWT key that signs now.
    pub fn active_jwt_authority(&self) -> JwtAuthority {
        self.jwt_snapshot().active.info
    }

    /// Signs a JWT-SVID for `spiffe_id` with the active JWT key: header `alg`, `kid`,
    /// `typ: JWT`; claims `sub`, `aud`, `iat` (= `now`), `exp` (= `now + ttl`, capped at the
    /// key's expiry so no token outlives the key that validates it) and `iss` when
    /// [`CaConfig::jwt_issuer`] is set.
    ///
    /// # Errors
    ///
    /// [`CaError::ForeignSpiffeId`] for an ID of another trust domain, [`CaError::EmptyAudience`]
    /// (JWT-SVID §3.2 requires `aud`), [`CaError::InvalidTtl`] for a ttl under one second,
    /// [`CaError::AuthorityNotValid`] when the active key is expired at `now`, and
    /// [`CaError::Jwt`] if signing fails.
    pub fn sign_jwt_svid(
        &self,
        spiffe_id: &SpiffeId,
        audience: &[String],
        ttl: Duration,
        now: SystemTime,
    ) -> Result<SignedJwtSvid, CaError> {
        if spiffe_id.trust_domain() != self.minter.td {
            return Err(CaError::ForeignSpiffeId {
                id: spiffe_id.to_string(),
                trust_domain: self.minter.td.to_string(),
            });
        }
        if audience.is_empty() || audience.iter().any(String::is_empty) {
            return Err(CaError::EmptyAudience(audience.to_vec()));
        }
        if ttl < Duration::from_secs(1) {
            return Err(CaError::InvalidTtl { what: "jwt-svid" });
        }

        let slots = self.jwt_snapshot();
        let key = &slots.active.info;
        let issued_at = whole_seconds(now);
        if issued_at >= key.not_after() || now < key.not_before() {
            return Err(CaError::AuthorityNotValid {
                serial: format!("jwt kid {}", key.kid()),
                now,
                not_before: key.not_before(),
                not_after: key.not_after(),
            });
        }
        let expires_at = whole_seconds(issued_at.checked_add(ttl).unwrap_or(key.not_after()))
            .min(key.not_after());

        let mut extra = serde_json::Map::new();
        if let Some(iss) = &self.minter.config.jwt_issuer {
            extra.insert("iss".into(), iss.clone().into());
        }
        let token = slots.signer()?.sign(&JwtSvidClaims {
            subject: spiffe_id.clone(),
            audience: audience.to_vec(),
            issued_at,
            expiry: expires_at,
            extra,
        })?;
        Ok(SignedJwtSvid {
            token,
            kid: key.kid().to_owned(),
            issued_at,
            expires_at,
        })
    }

    /// The trust domain this CA serves.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.minter.td
    }

    /// The configuration new authorities are made with.
    pub fn config(&self) -> &CaConfig {
        &self.minter.config
    }

    fn snapshot(&self) -> Slots {
        self.slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn jwt_snapshot(&self) -> JwtSlots {
        self.jwt
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn encode(slots: &Slots, jwt: &JwtSlots) -> Result<Vec<u8>, CaError> {
    journal::encode(&Journal {
        x509: slots.records(),
        jwt: jwt.records(),
    })
}

impl fmt::Debug for CaManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slots = self.snapshot();
        f.debug_struct("CaManager")
            .field("trust_domain", &self.minter.td)
            .field("config", &self.minter.config)
            .field("active", &slots.active.authority.serial_hex())
            .field(
                "prepared",
                &slots
                    .prepared
                    .as_ref()
                    .map(|p| p.authority.serial_hex().to_owned()),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Status;
    use crate::schedule::prune_at;
    use crate::test_support::{HOUR, Harness, issuer_index, schedule_of, serials, verify_leaf};
    use std::time::SystemTime;

    #[tokio::test]
    async fn walks_two_full_rotations() {
        let h = Harness::new();
        let ca = h.load().await.unwrap();
        let first = ca.active();
        assert_eq!(serials(&ca.authorities()), vec![first.serial_hex()]);
        assert_eq!(h.statuses(), vec![(Status::Active, "x509-CA-A".to_owned())]);
        let early = h.sign(&ca, HOUR);
        verify_leaf(&early, &ca.authorities(), h.now()).unwrap();

        // Rotation 1: prepare, then activate.
        let (prepare, activate) = schedule_of(&first);
        h.clock.set(prepare - Duration::from_secs(1));
        assert!(!ca.rotate().await.unwrap());
        h.clock.set(prepare);
        assert!(ca.rotate().await.unwrap(), "preparing changes the bundle");
        let second = ca.prepared().unwrap();
        assert_eq!(
            serials(&ca.authorities()),
            vec![first.serial_hex(), second.serial_hex()]
        );
        assert_eq!(
            ca.active().serial_hex(),
            first.serial_hex(),
            "prepared does not sign yet"
        );
        assert_eq!(
            issuer_index(&h.sign(&ca, HOUR), &ca.authorities(), h.now()),
            Some(0)
        );

        h.clock.set(activate - Duration::from_secs(1));
        assert!(!ca.rotate().await.unwrap());
        let late_from_first = h.sign(&ca, 10 * HOUR);
        h.clock.set(activate);
        assert!(
            !ca.rotate().await.unwrap(),
            "activation keeps the same two certificates"
        );
        assert_eq!(ca.active().serial_hex(), second.serial_hex());
        assert!(ca.prepared().is_none());
        assert_eq!(
            h.statuses(),
            vec![
                (Status::Old, "x509-CA-A".to_owned()),
                (Status::Active, "x509-CA-B".to_owned())
            ]
        );
        assert_eq!(
            issuer_index(&h.sign(&ca, HOUR), &ca.authorities(), h.now()),
            Some(1)
        );
        verify_leaf(&late_from_first, &ca.authorities(), h.now()).unwrap();

        // Rotation 2: the third authority reuses key id A; the first stays published until it
        // expires, so what it signed keeps verifying.
        let (prepare, activate) = schedule_of(&second);
        h.clock.set(prepare);
        assert!(ca.rotate().await.unwrap());
        let third = ca.prepared().unwrap();
        let bundle = serials(&ca.authorities());
        assert!(bundle.ends_with(&[
            second.serial_hex().to_owned(),
            third.serial_hex().to_owned()
        ]));
        assert_eq!(
            bundle.contains(&first.serial_hex().to_owned()),
            h.now() < first.not_after()
        );
        verify_leaf(&late_from_first, &ca.authorities(), h.now()).unwrap();

        h.clock.set(first.not_after());
        assert!(
            !ca.rotate().await.unwrap(),
            "the expired old CA stays for its grace period"
        );
        assert_eq!(serials(&ca.authorities())[0], first.serial_hex());
        h.clock.set(prune_at(first.not_before(), first.not_after()));
        assert!(
            ca.rotate().await.unwrap(),
            "pruning the expired old CA changes the bundle"
        );
        assert_eq!(
            serials(&ca.authorities()),
            vec![second.serial_hex(), third.serial_hex()]
        );

        h.clock.set(activate);
        ca.rotate().await.unwrap();
        assert_eq!(ca.active().serial_hex(), third.serial_hex());
        assert_eq!(
            h.statuses(),
            vec![
                (Status::Old, "x509-CA-B".to_owned()),
                (Status::Active, "x509-CA-A".to_owned())
            ]
        );
        assert_eq!(
            issuer_index(&h.sign(&ca, HOUR), &ca.authorities(), h.now()),
            Some(1)
        );

        // The second expires just after the fourth has been prepared (the 10 s back-dating makes
        // each lifetime 10 s longer than the spacing of the schedule).
        h.clock.set(second.not_after());
        assert!(ca.rotate().await.unwrap());
        let bundle = serials(&ca.authorities());
        assert_eq!(bundle.len(), 3, "the expired second is in its grace period");
        assert_eq!(bundle[0], second.serial_hex());
        assert_eq!(bundle[1], third.serial_hex());
        assert_eq!(ca.prepared().unwrap().serial_hex(), bundle[2]);
        h.clock
            .set(prune_at(second.not_before(), second.not_after()));
        assert!(ca.rotate().await.unwrap());
        assert_eq!(serials(&ca.authorities()), bundle[1..]);
    }

    #[tokio::test]
    async fn expired_old_authority_leaves_the_bundle_when_its_grace_period_ends() {
        let h = Harness::new();
        let ca = h.load().await.unwrap();
        let first = ca.active();
        let first_jwt = ca.active_jwt_authority();
        let (_, activate) = schedule_of(&first);
        h.clock.set(activate);
        ca.rotate().await.unwrap();
        assert_ne!(ca.active().serial_hex(), first.serial_hex());

        h.clock.set(first.not_after());
        assert!(!ca.rotate().await.unwrap());
        let has_first =
            |ca: &CaManager| serials(&ca.authorities()).contains(&first.serial_hex().to_owned());
        let has_first_jwt = |ca: &CaManager| {
            ca.jwt_authorities()
                .iter()
                .any(|k| k.kid() == first_jwt.kid())
        };
        assert!(has_first(&ca), "expired, but in its grace period");
        assert!(has_first_jwt(&ca), "the JWT key too");
        let restarted = h.load().await.unwrap();
        assert!(
            has_first(&restarted) && has_first_jwt(&restarted),
            "a restart keeps it"
        );

        let pruned = prune_at(first.not_before(), first.not_after());
        assert_eq!(
            pruned,
            first.not_after()
                + (first
                    .not_after()
                    .duration_since(first.not_before())
                    .unwrap()
                    / 6)
        );
        h.clock.set(pruned - Duration::from_secs(1));
        assert!(!ca.rotate().await.unwrap());
        assert!(has_first(&ca));

        h.clock.set(pruned);
        assert!(
            !has_first(&ca),
            "gone from the bundle at the end of the grace"
        );
        assert!(
            ca.rotate().await.unwrap(),
            "pruning reports a bundle change, so the server raises the sequence"
        );
        assert!(!has_first(&ca) && !has_first_jwt(&ca));
        assert_eq!(h.statuses()[0].0, Status::Active, "and from the journal");
        let restarted = h.load().await.unwrap();
        assert!(!has_first(&restarted));
    }

    #[tokio::test]
    async fn every_issued_svid_verifies_against_the_bundle_until_it_expires() {
        let h = Harness::new();
        let ca = h.load().await.unwrap();
        let mut issued: Vec<CertificateDer<'static>> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();

        // Three days in 20-minute ticks: several rotations, each SVID asking for 4 h.
        for _ in 0..(3 * 24 * 3) {
            h.clock.advance(Duration::from_secs(20 * 60));
            ca.rotate().await.unwrap();
            let bundle = ca.authorities();
            assert!(
                (1..=3).contains(&bundle.len()),
                "{} authorities",
                bundle.len()
            );
            seen.extend(serials(&bundle));

            issued.push(h.sign(&ca, 4 * HOUR));
            let active_index = bundle.iter().position(|c| c == ca.active().cert()).unwrap();
            assert_eq!(
                issuer_index(issued.last().unwrap(), &bundle, h.now()),
                Some(active_index)
            );

            issued.retain(|svid| {
                let (_, x) = x509_parser::parse_x509_certificate(svid).unwrap();
                x.validity().not_after.timestamp()
                    > h.now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap()
                        .as_secs() as i64
            });
            for svid in &issued {
                verify_leaf(svid, &bundle, h.now()).unwrap();
            }
        }
        assert!(
            seen.len() >= 4,
            "only {} authorities over three days",
            seen.len()
        );
    }

    #[tokio::test]
    async fn reload_restores_the_same_authorities() {
        let h = Harness::new();
        let ca = h.load().await.unwrap();
        h.clock.set(schedule_of(&ca.active()).0);
        assert!(ca.rotate().await.unwrap());
        let before = serials(&ca.authorities());
        let blob = h.journal.blob();
        drop(ca);

        let again = h.load().await.unwrap();
        assert_eq!(serials(&again.authorities()), before);
        assert_eq!(again.active().serial_hex(), before[0]);
        assert_eq!(again.prepared().unwrap().serial_hex(), before[1]);
        assert_eq!(h.journal.blob(), blob, "nothing changed, nothing saved");

        let leaf = h.sign(&again, HOUR);
        assert_eq!(issuer_index(&leaf, &again.authorities(), h.now()), Some(0));
    }

    #[tokio::test]
    async fn restart_with_a_disk_key_manager_keeps_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = Harness::new();
        h.km = Arc::new(crate::DiskKeyManager::open(dir.path()).unwrap());
        let serial = h.load().await.unwrap().active().serial_hex().to_owned();

        h.km = Arc::new(crate::DiskKeyManager::open(dir.path()).unwrap());
        assert_eq!(h.load().await.unwrap().active().serial_hex(), serial);
    }
}
