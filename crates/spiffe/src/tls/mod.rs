//! rustls verifiers that authenticate peers by X509-SVID and authorize them by SPIFFE ID.
//!
//! Stock rustls verifiers match DNS names, which X509-SVIDs do not carry. These verifiers ignore
//! the server name, verify the peer chain with [`verify_chain`](crate::x509::verify_chain)
//! against the bundle of the peer's own trust domain, then apply an [`Authorizer`]. Handshake
//! signatures are checked with the aws-lc-rs provider's algorithms. Nothing here installs a
//! process-wide crypto provider: configs are built with [`crypto_provider`].

mod client;
mod config;
mod server;

#[cfg(test)]
mod handshake_tests;

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, OtherError};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::id::{SpiffeId, TrustDomain};
use crate::x509::{X509Error, spiffe_id_of};

pub use client::SpiffeClientVerifier;
pub use config::{certified_key, client_config, server_config};
pub use server::SpiffeServerVerifier;

/// Which authenticated SPIFFE IDs may talk to us (applied after chain verification).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authorizer {
    /// Any ID whose chain verifies against the bundle of its own trust domain.
    Any,
    /// Exactly this ID.
    Exact(SpiffeId),
    /// Any ID of this trust domain.
    MemberOf(TrustDomain),
    /// One of these IDs.
    OneOf(Vec<SpiffeId>),
    /// Whatever the caller's own rule allows (a path prefix, a lookup in a policy table).
    Predicate(Predicate),
}

/// A caller-supplied authorization rule with a description for refusal messages.
///
/// Two predicates are equal only when they are the same rule (the same allocation): closures
/// cannot be compared.
#[derive(Clone)]
pub struct Predicate {
    describe: String,
    allow: Arc<dyn Fn(&SpiffeId) -> bool + Send + Sync>,
}

impl Predicate {
    /// A rule that allows the IDs for which `allow` returns true; `describe` says in words what
    /// it expects (`"an ID under /billing"`), for the error a refused peer gets.
    pub fn new(
        describe: impl Into<String>,
        allow: impl Fn(&SpiffeId) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            describe: describe.into(),
            allow: Arc::new(allow),
        }
    }
}

impl fmt::Debug for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Predicate").field(&self.describe).finish()
    }
}

impl PartialEq for Predicate {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.allow, &other.allow)
    }
}

impl Eq for Predicate {}

impl Authorizer {
    /// Checks `id` against this policy.
    ///
    /// # Errors
    ///
    /// [`AuthorizeError`] naming the ID and the policy it fails.
    pub fn authorize(&self, id: &SpiffeId) -> Result<(), AuthorizeError> {
        let allowed = match self {
            Authorizer::Any => true,
            Authorizer::Exact(expected) => id == expected,
            Authorizer::MemberOf(td) => id.is_member_of(td),
            Authorizer::OneOf(ids) => ids.contains(id),
            Authorizer::Predicate(rule) => (rule.allow)(id),
        };
        if allowed {
            return Ok(());
        }
        let expected = match self {
            Authorizer::Any => "any ID".to_owned(),
            Authorizer::Exact(expected) => format!("exactly '{expected}'"),
            Authorizer::MemberOf(td) => format!("a member of trust domain '{td}'"),
            Authorizer::OneOf(ids) => format!("one of {} allowed IDs", ids.len()),
            Authorizer::Predicate(rule) => rule.describe.clone(),
        };
        Err(AuthorizeError {
            id: id.clone(),
            expected,
        })
    }
}

/// A verified peer whose SPIFFE ID the [`Authorizer`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("peer SPIFFE ID '{id}' is not authorized: expected {expected}")]
pub struct AuthorizeError {
    /// The peer's (verified) ID.
    pub id: SpiffeId,
    /// The policy, in words.
    pub expected: String,
}

/// Why a verifier refused a peer certificate, carried to rustls as
/// `CertificateError::Other(OtherError(Arc<PeerRejected>))` (downcast `OtherError.0` to read it).
#[derive(Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PeerRejected {
    /// The chain broke an X509-SVID rule or failed path validation.
    #[error(transparent)]
    Unverified(#[from] X509Error),
    /// The chain verified but the SPIFFE ID is not allowed.
    #[error(transparent)]
    Unauthorized(#[from] AuthorizeError),
}

impl fmt::Debug for PeerRejected {
    /// rustls formats `OtherError` with `Debug`; show the readable message there.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

static PROVIDER: LazyLock<Arc<CryptoProvider>> =
    LazyLock::new(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));

/// The aws-lc-rs crypto provider, for `ClientConfig::builder_with_provider` and
/// `ServerConfig::builder_with_provider`. Never installed as the process default here.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    PROVIDER.clone()
}

/// The SPIFFE ID of a peer's leaf certificate (the first of `certs`), if it has exactly one URI
/// SAN holding a valid ID.
///
/// Does not verify anything: call it on certificates a handshake with one of this module's
/// verifiers has already accepted, e.g. `Connection::peer_certificates()`.
pub fn peer_spiffe_id(certs: &[CertificateDer<'_>]) -> Option<SpiffeId> {
    spiffe_id_of(certs.first()?).ok()
}

/// Verifies `end_entity` + `intermediates` at `now` and authorizes the leaf's ID.
fn verify_peer(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    bundles: &dyn crate::x509::BundleSource,
    authorizer: &Authorizer,
) -> Result<SpiffeId, rustls::Error> {
    let mut chain = Vec::with_capacity(1 + intermediates.len());
    chain.push(end_entity.clone());
    chain.extend(intermediates.iter().cloned());

    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(now.as_secs());
    let id = crate::x509::verify_chain(&chain, bundles, now).map_err(certificate_error)?;
    authorizer
        .authorize(&id)
        .map_err(|e| rejected(PeerRejected::Unauthorized(e)))?;
    Ok(id)
}

/// Maps verification failures to rustls errors: the common path validation failures to their own
/// rustls variants (so the right alert is sent), everything else to `Other` with our message.
fn certificate_error(e: X509Error) -> rustls::Error {
    let mapped = match &e {
        X509Error::PathValidation { reason, .. } => match reason {
            webpki::Error::UnknownIssuer => Some(CertificateError::UnknownIssuer),
            webpki::Error::CertExpired { .. } => Some(CertificateError::Expired),
            webpki::Error::CertNotValidYet { .. } => Some(CertificateError::NotValidYet),
            webpki::Error::InvalidSignatureForPublicKey => Some(CertificateError::BadSignature),
            _ => None,
        },
        _ => None,
    };
    match mapped {
        Some(mapped) => rustls::Error::InvalidCertificate(mapped),
        None => rejected(PeerRejected::Unverified(e)),
    }
}

fn rejected(reason: PeerRejected) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(reason))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SpiffeId {
        SpiffeId::parse(s).unwrap()
    }

    #[test]
    fn authorizer_allows_only_ids_matching_its_policy() {
        let a = id("spiffe://a.org/x");
        let b = id("spiffe://b.org/x");
        assert!(Authorizer::Any.authorize(&a).is_ok());
        assert!(Authorizer::Exact(a.clone()).authorize(&a).is_ok());
        assert!(Authorizer::Exact(a.clone()).authorize(&b).is_err());
        let member = Authorizer::MemberOf(TrustDomain::new("a.org").unwrap());
        assert!(member.authorize(&a).is_ok());
        assert!(member.authorize(&b).is_err());
        let one_of = Authorizer::OneOf(vec![a.clone()]);
        assert!(one_of.authorize(&a).is_ok());
        let err = one_of.authorize(&b).unwrap_err();
        assert_eq!(
            err.to_string(),
            "peer SPIFFE ID 'spiffe://b.org/x' is not authorized: expected one of 1 allowed IDs"
        );
        assert!(Authorizer::OneOf(vec![]).authorize(&a).is_err());
    }

    #[test]
    fn peer_spiffe_id_reads_the_leaf() {
        use crate::x509::test_certs::{KeyKind, TestCa};
        let ca = TestCa::new("a.org", KeyKind::P256);
        let leaf = ca.leaf("spiffe://a.org/w", KeyKind::P256);
        assert_eq!(
            peer_spiffe_id(&[leaf.cert, ca.cert.clone()]),
            Some(id("spiffe://a.org/w"))
        );
        assert_eq!(peer_spiffe_id(&[]), None);
        assert_eq!(peer_spiffe_id(&[CertificateDer::from(vec![0u8; 3])]), None);
    }

    #[test]
    fn the_provider_is_aws_lc_rs_and_shared() {
        assert!(Arc::ptr_eq(&crypto_provider(), &crypto_provider()));
        assert!(!crypto_provider().cipher_suites.is_empty());
    }
}
