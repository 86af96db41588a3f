//! The JWT signing authority: a signing key per slot (prepared / active / old), rotated on the
//! same schedule and with the same lifetime (`ca_ttl`) as the X.509 authorities, each with a
//! random `kid`. Public keys are published in the JWT bundle from the moment a key is prepared
//! until it expires, so every JWT-SVID validates for as long as it lives.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lanyard_spiffe::jwt::{EcCurve, JwtAlgorithm, JwtPublicKey, JwtSigner, JwtSigningKey};

use crate::authority::BACKDATE;
use crate::error::{CaError, fmt_time};
use crate::journal::{JwtRecord, Status};
use crate::key::validate_key_id;
use crate::rotation::{self, Published, Rotating, SlotsMut};
use crate::schedule::prune_at;
use crate::slots::Minter;

/// The two key manager ids JWT signing keys alternate between.
pub const JWT_KEY_IDS: [&str; 2] = ["JWT-Signer-A", "JWT-Signer-B"];

/// Characters in a `kid`: 32 letters and digits carry about 190 bits of randomness.
const KID_LEN: usize = 32;

/// The `kid` alphabet. Letters and digits only: a base64url `kid` may start with `-`, which
/// command lines then read as a flag (`--authority-id -Jx...`).
const KID_ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// One published JWT signing key: what a JWT bundle holds under its `kid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtAuthority {
    kid: String,
    public_key: JwtPublicKey,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl JwtAuthority {
    /// The key ID written into the header of every token this key signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key.
    pub fn public_key(&self) -> &JwtPublicKey {
        &self.public_key
    }

    /// When the key was created.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// When the key expires; no token it signs outlives this.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }
}

/// A JWT-SVID signed by the CA manager.
#[derive(Clone, Debug)]
pub struct SignedJwtSvid {
    /// The compact JWS.
    pub token: String,
    /// The `kid` of the key that signed it.
    pub kid: String,
    /// `iat`, whole seconds.
    pub issued_at: SystemTime,
    /// `exp`, whole seconds; never after the signing key's expiry.
    pub expires_at: SystemTime,
}

/// The JWS algorithm Lanyard signs with for a key: RS256 for RSA, ES256 / ES384 / ES512 for EC
/// P-256 / P-384 / P-521 (JWT-SVID §2.1 allows these; RFC 7518 §3.4 ties each curve to its hash).
pub fn algorithm_for(public: &JwtPublicKey) -> JwtAlgorithm {
    match public.ec_coordinates() {
        Some((EcCurve::P256, _, _)) => JwtAlgorithm::ES256,
        Some((EcCurve::P384, _, _)) => JwtAlgorithm::ES384,
        Some((EcCurve::P521, _, _)) => JwtAlgorithm::ES512,
        None => JwtAlgorithm::RS256,
    }
}

/// A JWT key in a slot, with the key manager id that holds its private key. Old keys have no
/// signer: their key id may already hold a successor.
#[derive(Clone)]
pub(crate) struct JwtKey {
    pub(crate) info: JwtAuthority,
    pub(crate) key_id: String,
    pub(crate) signer: Option<Arc<JwtSigner>>,
    /// Marked for replacement through the LocalAuthority API; only an old key can be.
    pub(crate) tainted: bool,
}

impl JwtKey {
    fn record(&self, status: Status) -> JwtRecord {
        JwtRecord {
            status,
            key_id: self.key_id.clone(),
            kid: self.info.kid.clone(),
            public_key_der: self.info.public_key.to_spki_der(),
            not_before: unix_secs(self.info.not_before),
            not_after: unix_secs(self.info.not_after),
            tainted: self.tainted,
        }
    }

    /// Whether it still belongs in the bundle at `now` (see [`prune_at`]).
    pub(crate) fn published_at(&self, now: SystemTime) -> bool {
        now < prune_at(self.info.not_before, self.info.not_after)
    }

    pub(crate) fn retire(&self) -> JwtKey {
        JwtKey {
            signer: None,
            ..self.clone()
        }
    }
}

impl Published for JwtKey {
    fn published_at(&self, now: SystemTime) -> bool {
        JwtKey::published_at(self, now)
    }
}

impl Rotating for JwtKey {
    type Retired = JwtKey;

    const FIRST_KEY_ID: &'static str = JWT_KEY_IDS[0];

    fn validity(&self) -> (SystemTime, SystemTime) {
        (self.info.not_before, self.info.not_after)
    }

    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn successor_key_id(&self) -> &'static str {
        other_jwt_key_id(&self.key_id)
    }

    fn warn_expired() {
        tracing::warn!("Active JWT key expired before it was rotated; was the server down?");
    }

    fn hand_over(self, next: &Self, _old: Option<&JwtKey>, _now: SystemTime) -> JwtKey {
        tracing::info!(
            kid = %next.info.kid,
            previous = %self.info.kid,
            "Activated JWT key"
        );
        self.retire()
    }
}

/// The published JWT keys.
#[derive(Clone)]
pub(crate) struct JwtSlots {
    pub(crate) prepared: Option<JwtKey>,
    pub(crate) active: JwtKey,
    pub(crate) old: Option<JwtKey>,
}

impl JwtSlots {
    pub(crate) fn records(&self) -> Vec<JwtRecord> {
        let mut records = Vec::with_capacity(3);
        if let Some(old) = &self.old {
            records.push(old.record(Status::Old));
        }
        records.push(self.active.record(Status::Active));
        if let Some(prepared) = &self.prepared {
            records.push(prepared.record(Status::Prepared));
        }
        records
    }

    /// Old (until its grace period after expiry ends at `now`), active and prepared, oldest
    /// first.
    pub(crate) fn published(&self, now: SystemTime) -> Vec<JwtAuthority> {
        let old = self.old.as_ref().filter(|o| o.published_at(now));
        old.into_iter()
            .chain(Some(&self.active))
            .chain(self.prepared.as_ref())
            .map(|k| k.info.clone())
            .collect()
    }

    /// The active key's signer; only a slot bug leaves it empty.
    pub(crate) fn signer(&self) -> Result<&Arc<JwtSigner>, CaError> {
        self.active.signer.as_ref().ok_or_else(|| {
            CaError::CorruptJournal(format!(
                "active jwt key {} has no private key",
                self.active.info.kid
            ))
        })
    }
}

/// JWT keys under construction (restore, rotation), where the active slot may be empty.
#[derive(Clone, Default)]
pub(crate) struct JwtDraft {
    pub(crate) prepared: Option<JwtKey>,
    pub(crate) active: Option<JwtKey>,
    pub(crate) old: Option<JwtKey>,
}

impl From<JwtSlots> for JwtDraft {
    fn from(s: JwtSlots) -> Self {
        Self {
            prepared: s.prepared,
            active: Some(s.active),
            old: s.old,
        }
    }
}

impl JwtDraft {
    fn slots(&mut self) -> SlotsMut<'_, JwtKey> {
        SlotsMut {
            prepared: &mut self.prepared,
            active: &mut self.active,
            old: &mut self.old,
        }
    }

    pub(crate) fn finish(self) -> Result<JwtSlots, CaError> {
        let active = self
            .active
            .ok_or_else(|| CaError::CorruptJournal("no active jwt key after rotation".into()))?;
        Ok(JwtSlots {
            prepared: self.prepared,
            active,
            old: self.old,
        })
    }
}

impl Minter {
    /// Turns journal records into a draft, dropping expired keys and keys missing from the key
    /// manager. Returns whether anything was dropped.
    pub(crate) fn restore_jwt(
        &self,
        records: &[JwtRecord],
        now: SystemTime,
    ) -> Result<(JwtDraft, bool), CaError> {
        let mut draft = JwtDraft::default();
        let mut dropped = false;
        let mut keyless_active = None;
        for record in records {
            validate_key_id(&record.key_id).map_err(|e| CaError::CorruptJournal(e.to_string()))?;
            let not_before = UNIX_EPOCH + Duration::from_secs(record.not_before);
            let not_after = UNIX_EPOCH + Duration::from_secs(record.not_after);
            if rotation::record_gone(record.status, not_before, not_after, now) {
                dropped = true;
                continue;
            }
            let public_key = JwtPublicKey::from_spki_der(&record.public_key_der).map_err(|e| {
                CaError::CorruptJournal(format!("public key of jwt kid '{}': {e}", record.kid))
            })?;
            let info = JwtAuthority {
                kid: record.kid.clone(),
                public_key,
                not_before,
                not_after,
            };
            let signer = if record.status == Status::Old {
                None
            } else {
                let Some(key) = self.km.get_key(&record.key_id)? else {
                    tracing::warn!(
                        key.id = %record.key_id,
                        kid = %record.kid,
                        "Key of a {:?} JWT authority is missing from the key manager; a new key \
                         replaces it",
                        record.status
                    );
                    dropped = true;
                    if record.status == Status::Active {
                        keyless_active = Some(JwtKey {
                            info,
                            key_id: record.key_id.clone(),
                            signer: None,
                            tainted: false,
                        });
                    }
                    continue;
                };
                let key = JwtSigningKey::from_pkcs8(&key.serialize_der())?;
                if *key.public_key() != info.public_key {
                    return Err(CaError::JwtKeyMismatch {
                        kid: record.kid.clone(),
                        key_id: record.key_id.clone(),
                    });
                }
                let alg = algorithm_for(key.public_key());
                Some(Arc::new(JwtSigner::new(key, record.kid.clone(), alg)?))
            };

            let slot = match record.status {
                Status::Old => &mut draft.old,
                Status::Active => &mut draft.active,
                Status::Prepared => &mut draft.prepared,
            };
            if slot.is_some() {
                return Err(CaError::CorruptJournal(format!(
                    "more than one {:?} jwt key",
                    record.status
                )));
            }
            *slot = Some(JwtKey {
                info,
                key_id: record.key_id.clone(),
                signer,
                tainted: record.tainted && record.status == Status::Old,
            });
        }

        // As for X.509 authorities: an active key whose private half is gone stays published
        // as the old key, so the tokens it signed keep validating until they expire.
        rotation::finish_restore(draft.slots(), keyless_active, "jwt keys")?;
        Ok((draft, dropped))
    }

    /// Applies every step the schedule calls for at `now` (the X.509 schedule of
    /// [`crate::schedule`], applied to the key's creation and expiry). Returns whether anything
    /// changed.
    pub(crate) fn advance_jwt(
        &self,
        draft: &mut JwtDraft,
        now: SystemTime,
    ) -> Result<bool, CaError> {
        rotation::advance(draft.slots(), now, |key_id| self.mint_jwt(key_id, now))
    }

    /// Generates a key of `jwt_key_type` under `key_id` with a fresh random `kid`, valid from
    /// `now` − [`BACKDATE`] to `now + ca_ttl`.
    pub(crate) fn mint_jwt(&self, key_id: &str, now: SystemTime) -> Result<JwtKey, CaError> {
        if self.config.ca_ttl < Duration::from_secs(1) {
            return Err(CaError::InvalidTtl { what: "ca" });
        }
        let pair = self.km.generate_key(key_id, self.config.jwt_key_type)?;
        let key = JwtSigningKey::from_pkcs8(&pair.serialize_der())?;
        let alg = algorithm_for(key.public_key());
        let kid = random_kid()?;
        // Back-dated like the X.509 authorities, so both follow exactly the same schedule and
        // rotate together, as SPIRE's do.
        let not_before = whole_seconds(now.checked_sub(BACKDATE).unwrap_or(now));
        let not_after = now
            .checked_add(self.config.ca_ttl)
            .map(whole_seconds)
            .ok_or(CaError::InvalidTime(now))?;
        let info = JwtAuthority {
            kid: kid.clone(),
            public_key: key.public_key().clone(),
            not_before,
            not_after,
        };
        tracing::info!(
            key.id = key_id,
            kid = %kid,
            alg = %alg,
            not_after = %fmt_time(not_after),
            "Created JWT key"
        );
        Ok(JwtKey {
            info,
            key_id: key_id.to_owned(),
            signer: Some(Arc::new(JwtSigner::new(key, kid, alg)?)),
            tainted: false,
        })
    }
}

pub(crate) fn other_jwt_key_id(id: &str) -> &'static str {
    if id == JWT_KEY_IDS[0] {
        JWT_KEY_IDS[1]
    } else {
        JWT_KEY_IDS[0]
    }
}

fn random_kid() -> Result<String, CaError> {
    let mut kid = String::with_capacity(KID_LEN);
    let mut bytes = [0u8; 64];
    while kid.len() < KID_LEN {
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| CaError::Random)?;
        // Rejection sampling: 248 = 4 * 62, so bytes below it map uniformly onto the alphabet.
        for b in bytes.iter().filter(|&&b| b < 248) {
            if kid.len() == KID_LEN {
                break;
            }
            kid.push(char::from(
                KID_ALPHABET[usize::from(*b) % KID_ALPHABET.len()],
            ));
        }
    }
    Ok(kid)
}

/// Seconds since the epoch; times before it count as 0.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `t` truncated to whole seconds, as JWT times and the journal carry them.
pub(crate) fn whole_seconds(t: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix_secs(t))
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
