//! Forced rotation and revocation, as SPIRE's LocalAuthority API drives them: prepare a new
//! authority now, activate it, taint the one it replaced (agents then replace what it signed),
//! and finally revoke it (remove it from the bundle). X.509 authorities are named by their
//! subject key identifier in lowercase hex, JWT keys by their `kid`.
//!
//! TODO: Lanyard agents do not yet act on the tainted flag (SPIRE agents re-sign every SVID a
//! tainted authority signed, and drop its JWT-SVIDs). Until they do, revoking an authority
//! before agent SVIDs have renewed under its successor cuts those agents off from the server,
//! whose TLS trusts only the bundle; they must attest again.
//!
//! Only the old authority can be tainted or revoked, and only a tainted one revoked. The
//! active authority is never tainted, so the CA never signs with a tainted key; an old or
//! revoked one holds no signer at all.

use std::time::SystemTime;

use rustls_pki_types::CertificateDer;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use super::{CaManager, encode};
use crate::error::CaError;
use crate::jwt::{JwtSlots, other_jwt_key_id};
use crate::slots::{Retired, Slots, other_key_id};

const X509: &str = "x509";
const JWT: &str = "jwt";

/// One authority as the LocalAuthority API reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityState {
    /// Subject key identifier in lowercase hex (X.509) or `kid` (JWT).
    pub authority_id: String,
    /// When the authority expires.
    pub expires_at: SystemTime,
    /// Whether an operator tainted it (only an old authority can be).
    pub tainted: bool,
}

/// The authorities of one kind, by slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityStates {
    /// The authority that signs.
    pub active: AuthorityState,
    /// The authority published ahead of activation, if any.
    pub prepared: Option<AuthorityState>,
    /// The authority the active one replaced, while it is in the bundle.
    pub old: Option<AuthorityState>,
}

/// An X.509 authority id as an operator may write it, in the form [`x509_authority_id`] gives:
/// upper-case hex and colon-separated bytes (as `openssl x509 -ext subjectKeyIdentifier`
/// prints them) become lowercase hex without colons. Anything that is not hex is returned as
/// given, so that the error names what was asked for.
pub fn normalize_x509_authority_id(id: &str) -> String {
    let hex: String = id.chars().filter(|c| *c != ':').collect();
    if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        hex.to_ascii_lowercase()
    } else {
        id.to_owned()
    }
}

/// The id the LocalAuthority API gives an X.509 authority: its subject key identifier in
/// lowercase hex, or, for a certificate without one, the SHA-1 of its public key (RFC 5280
/// §4.2.1.2, method 1).
///
/// # Errors
///
/// [`CaError::InvalidAuthority`] if `cert_der` is not a certificate.
pub fn x509_authority_id(cert_der: &[u8]) -> Result<String, CaError> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(cert_der)
        .map_err(|e| CaError::InvalidAuthority(format!("not a certificate: {e}")))?;
    let ski = cert
        .extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        });
    let bytes = ski.unwrap_or_else(|| {
        let spki = cert.public_key();
        aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &spki.subject_public_key.data,
        )
        .as_ref()
        .to_vec()
    });
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl CaManager {
    /// The X.509 authorities by slot.
    ///
    /// # Errors
    ///
    /// [`CaError::InvalidAuthority`] if a stored certificate does not parse (a bug).
    pub fn x509_authority_state(&self) -> Result<AuthorityStates, CaError> {
        let slots = self.snapshot();
        Ok(AuthorityStates {
            active: signer_state(
                slots.active.authority.cert(),
                slots.active.authority.not_after(),
            )?,
            prepared: slots
                .prepared
                .as_ref()
                .map(|p| signer_state(p.authority.cert(), p.authority.not_after()))
                .transpose()?,
            old: slots.old.as_ref().map(retired_state).transpose()?,
        })
    }

    /// Makes a new X.509 authority now and publishes it as the prepared one, replacing any
    /// prepared authority.
    ///
    /// # Errors
    ///
    /// Key manager, signing or journal failures; the visible state is then unchanged.
    pub async fn prepare_x509_authority(&self) -> Result<AuthorityState, CaError> {
        let _serialized = self.rotation.lock().await;
        let mut next = self.snapshot();
        let signer = self
            .minter
            .mint(other_key_id(&next.active.key_id), self.clock.now())?;
        let state = signer_state(signer.authority.cert(), signer.authority.not_after())?;
        next.prepared = Some(signer);
        self.commit(Some(next), None).await?;
        tracing::info!(authority.id = %state.authority_id, "Prepared X.509 authority on request");
        Ok(state)
    }

    /// Makes the prepared X.509 authority `id` the active one; the active one becomes old
    /// (replacing any old one).
    ///
    /// # Errors
    ///
    /// [`CaError::MissingAuthorityId`], [`CaError::NoPreparedAuthority`],
    /// [`CaError::NotPreparedAuthority`] when `id` is not the prepared authority; journal
    /// failures.
    pub async fn activate_x509_authority(&self, id: &str) -> Result<AuthorityState, CaError> {
        require_id(X509, "activate", id)?;
        let id = normalize_x509_authority_id(id);
        let id = id.as_str();
        let _serialized = self.rotation.lock().await;
        let mut next = self.snapshot();
        let prepared = next
            .prepared
            .take()
            .ok_or(CaError::NoPreparedAuthority { kind: X509 })?;
        let state = signer_state(prepared.authority.cert(), prepared.authority.not_after())?;
        if state.authority_id != id {
            return Err(CaError::NotPreparedAuthority {
                kind: X509,
                id: id.to_owned(),
                prepared: state.authority_id,
            });
        }

        let previous = std::mem::replace(&mut next.active, prepared);
        next.old = Some(Retired {
            cert: previous.authority.cert().clone(),
            not_before: previous.authority.not_before(),
            not_after: previous.authority.not_after(),
            key_id: previous.key_id.clone(),
            tainted: false,
            upstream: previous.authority.upstream().cloned(),
        });
        self.commit(Some(next), None).await?;
        tracing::info!(authority.id = id, "Activated X.509 authority on request");
        Ok(state)
    }

    /// Marks the old X.509 authority `id` tainted, so the bundle flags it for replacement.
    ///
    /// # Errors
    ///
    /// [`CaError::MissingAuthorityId`], [`CaError::NotOldAuthority`] when `id` is not the old
    /// authority (the active one cannot be tainted), [`CaError::AlreadyTainted`]; journal
    /// failures.
    pub async fn taint_x509_authority(&self, id: &str) -> Result<AuthorityState, CaError> {
        require_id(X509, "taint", id)?;
        let id = normalize_x509_authority_id(id);
        let id = id.as_str();
        let _serialized = self.rotation.lock().await;
        let mut next = self.snapshot();
        let old = self.old_x509(&next, "taint", id)?;
        if old.upstream.is_some() {
            return Err(CaError::UpstreamSignedAuthority { id: id.to_owned() });
        }
        if old.tainted {
            return Err(CaError::AlreadyTainted {
                kind: X509,
                id: id.to_owned(),
            });
        }
        let mut tainted = old.clone();
        tainted.tainted = true;
        let state = retired_state(&tainted)?;
        next.old = Some(tainted);
        self.commit(Some(next), None).await?;
        tracing::warn!(authority.id = id, "Tainted X.509 authority");
        Ok(state)
    }

    /// Removes the tainted old X.509 authority `id` from the bundle for good.
    ///
    /// # Errors
    ///
    /// [`CaError::MissingAuthorityId`], [`CaError::NotOldAuthority`], [`CaError::NotTainted`];
    /// journal failures.
    pub async fn revoke_x509_authority(&self, id: &str) -> Result<AuthorityState, CaError> {
        require_id(X509, "revoke", id)?;
        let id = normalize_x509_authority_id(id);
        let id = id.as_str();
        let _serialized = self.rotation.lock().await;
        let mut next = self.snapshot();
        let old = self.old_x509(&next, "revoke", id)?;
        if !old.tainted {
            return Err(CaError::NotTainted {
                kind: X509,
                id: id.to_owned(),
            });
        }
        let state = retired_state(old)?;
        next.old = None;
        self.commit(Some(next), None).await?;
        tracing::warn!(authority.id = id, "Revoked X.509 authority");
        Ok(state)
    }

    /// The JWT keys by slot.
    pub fn jwt_authority_state(&self) -> AuthorityStates {
        let slots = self.jwt_snapshot();
        let state = |k: &crate::jwt::JwtKey| AuthorityState {
            authority_id: k.info.kid().to_owned(),
            expires_at: k.info.not_after(),
            tainted: k.tainted,
        };
        AuthorityStates {
            active: state(&slots.active),
            prepared: slots.prepared.as_ref().map(state),
            old: slots.old.as_ref().map(state),
        }
    }

    /// Makes a new JWT key now and publishes it as the prepared one, replacing any prepared
    /// key.
    ///
    /// # Errors
    ///
    /// Key manager or journal failures; the visible state is then unchanged.
    pub async fn prepare_jwt_authority(&self) -> Result<AuthorityState, CaError> {
        let _serialized = self.rotation.lock().await;
        let mut next = self.jwt_snapshot();
        let key = self
            .minter
            .mint_jwt(other_jwt_key_id(&next.active.key_id), self.clock.now())?;
        let state = AuthorityState {
            authority_id: key.info.kid().to_owned(),
            expires_at: key.info.not_after(),
            tainted: false,
        };
        next.prepared = Some(key);
        self.commit(None, Some(next)).await?;
        tracing::info!(kid = %state.authority_id, "Prepared JWT key on request");
        Ok(state)
    }

    /// Makes the prepared JWT key `kid` the active one; the active one becomes old.
    ///
    /// # Errors
    ///
    /// As [`CaManager::activate_x509_authority`].
    pub async fn activate_jwt_authority(&self, kid: &str) -> Result<AuthorityState, CaError> {
        require_id(JWT, "activate", kid)?;
        let _serialized = self.rotation.lock().await;
        let mut next = self.jwt_snapshot();
        let prepared = next
            .prepared
            .take()
            .ok_or(CaError::NoPreparedAuthority { kind: JWT })?;
        if prepared.info.kid() != kid {
            return Err(CaError::NotPreparedAuthority {
                kind: JWT,
                id: kid.to_owned(),
                prepared: prepared.info.kid().to_owned(),
            });
        }
        let state = AuthorityState {
            authority_id: kid.to_owned(),
            expires_at: prepared.info.not_after(),
            tainted: false,
        };
        let previous = std::mem::replace(&mut next.active, prepared);
        next.old = Some(previous.retire());
        self.commit(None, Some(next)).await?;
        tracing::info!(kid, "Activated JWT key on request");
        Ok(state)
    }

    /// Marks the old JWT key `kid` tainted, so the bundle flags it for replacement.
    ///
    /// # Errors
    ///
    /// As [`CaManager::taint_x509_authority`].
    pub async fn taint_jwt_authority(&self, kid: &str) -> Result<AuthorityState, CaError> {
        require_id(JWT, "taint", kid)?;
        let _serialized = self.rotation.lock().await;
        let mut next = self.jwt_snapshot();
        let old = old_jwt(&next, "taint", kid)?;
        if old.tainted {
            return Err(CaError::AlreadyTainted {
                kind: JWT,
                id: kid.to_owned(),
            });
        }
        let mut tainted = old.clone();
        tainted.tainted = true;
        let state = AuthorityState {
            authority_id: kid.to_owned(),
            expires_at: tainted.info.not_after(),
            tainted: true,
        };
        next.old = Some(tainted);
        self.commit(None, Some(next)).await?;
        tracing::warn!(kid, "Tainted JWT key");
        Ok(state)
    }

    /// Removes the tainted old JWT key `kid` from the bundle for good.
    ///
    /// # Errors
    ///
    /// As [`CaManager::revoke_x509_authority`].
    pub async fn revoke_jwt_authority(&self, kid: &str) -> Result<AuthorityState, CaError> {
        require_id(JWT, "revoke", kid)?;
        let _serialized = self.rotation.lock().await;
        let mut next = self.jwt_snapshot();
        let old = old_jwt(&next, "revoke", kid)?;
        if !old.tainted {
            return Err(CaError::NotTainted {
                kind: JWT,
                id: kid.to_owned(),
            });
        }
        let state = AuthorityState {
            authority_id: kid.to_owned(),
            expires_at: old.info.not_after(),
            tainted: true,
        };
        next.old = None;
        self.commit(None, Some(next)).await?;
        tracing::warn!(kid, "Revoked JWT key");
        Ok(state)
    }

    /// The certificates of [`CaManager::authorities`] that are tainted.
    pub fn tainted_authorities(&self) -> Vec<CertificateDer<'static>> {
        let slots = self.snapshot();
        slots
            .old
            .into_iter()
            .filter(|o| o.tainted)
            .map(|o| o.cert)
            .collect()
    }

    /// The `kid`s of [`CaManager::jwt_authorities`] that are tainted.
    pub fn tainted_jwt_kids(&self) -> Vec<String> {
        let slots = self.jwt_snapshot();
        slots
            .old
            .into_iter()
            .filter(|o| o.tainted)
            .map(|o| o.info.kid().to_owned())
            .collect()
    }

    /// The old X.509 authority, if `id` names it.
    fn old_x509<'a>(
        &self,
        slots: &'a Slots,
        action: &'static str,
        id: &str,
    ) -> Result<&'a Retired, CaError> {
        if let Some(old) = &slots.old
            && x509_authority_id(&old.cert)? == id
        {
            return Ok(old);
        }
        let role = if x509_authority_id(slots.active.authority.cert())? == id {
            "the active authority"
        } else if let Some(p) = &slots.prepared
            && x509_authority_id(p.authority.cert())? == id
        {
            "the prepared authority"
        } else {
            return Err(CaError::UnknownX509Authority {
                action,
                id: id.to_owned(),
            });
        };
        Err(CaError::NotOldAuthority {
            kind: X509,
            action,
            id: id.to_owned(),
            role,
        })
    }

    /// Saves the journal with the given replacements, then makes them visible.
    async fn commit(&self, slots: Option<Slots>, jwt: Option<JwtSlots>) -> Result<(), CaError> {
        let x509 = slots.unwrap_or_else(|| self.snapshot());
        let jwt = jwt.unwrap_or_else(|| self.jwt_snapshot());
        self.journal.save_journal(&encode(&x509, &jwt)?).await?;
        *self
            .slots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = x509;
        *self
            .jwt
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = jwt;
        Ok(())
    }
}

fn require_id(kind: &'static str, action: &'static str, id: &str) -> Result<(), CaError> {
    if id.is_empty() {
        return Err(CaError::MissingAuthorityId { kind, action });
    }
    Ok(())
}

fn old_jwt<'a>(
    slots: &'a JwtSlots,
    action: &'static str,
    kid: &str,
) -> Result<&'a crate::jwt::JwtKey, CaError> {
    if let Some(old) = slots.old.as_ref().filter(|o| o.info.kid() == kid) {
        return Ok(old);
    }
    let role = if slots.active.info.kid() == kid {
        "the active authority"
    } else if slots.prepared.as_ref().is_some_and(|p| p.info.kid() == kid) {
        "the prepared authority"
    } else {
        "unknown"
    };
    Err(CaError::NotOldAuthority {
        kind: JWT,
        action,
        id: kid.to_owned(),
        role,
    })
}

fn signer_state(
    cert: &CertificateDer<'_>,
    not_after: SystemTime,
) -> Result<AuthorityState, CaError> {
    Ok(AuthorityState {
        authority_id: x509_authority_id(cert)?,
        expires_at: not_after,
        tainted: false,
    })
}

fn retired_state(old: &Retired) -> Result<AuthorityState, CaError> {
    Ok(AuthorityState {
        authority_id: x509_authority_id(&old.cert)?,
        expires_at: old.not_after,
        tainted: old.tainted,
    })
}

#[cfg(test)]
#[path = "local_authority_tests.rs"]
mod tests;
