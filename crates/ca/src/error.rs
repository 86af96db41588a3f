//! The error type of CA operations: requests, authorities, signing and the CA manager.

use std::time::SystemTime;

use crate::journal::JournalError;
use crate::key::KeyError;

/// Errors from CSR handling, authorities, SVID signing and the CA manager.
///
/// The variants fall into three groups, kept apart so callers can map them: faults in what a
/// caller or peer sent (`MalformedCsr` .. `InvalidTtl`), local state that is wrong or unusable
/// (`AuthorityNotValid` .. `Journal`, `Jwt`), and failures that point at a bug or a broken crypto
/// library (`Encoding`, `Random`).
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The bytes are not a DER PKCS#10 certificate signing request.
    #[error("certificate signing request is malformed: {0}")]
    MalformedCsr(String),
    /// The CSR is signed with an algorithm Lanyard does not accept (for example SHA-1).
    #[error(
        "certificate signing request uses signature algorithm {0}: only RSA PKCS#1 with SHA-256/384/512, ECDSA with SHA-256/384/512 and Ed25519 are accepted"
    )]
    CsrSignatureAlgorithm(String),
    /// The CSR's self-signature does not verify with the public key it carries.
    #[error("certificate signing request signature does not verify: {0}")]
    CsrSignature(String),
    /// A public key (SubjectPublicKeyInfo) is malformed or of an unsupported type.
    #[error("public key is not usable: {0}")]
    UnsupportedPublicKey(String),
    /// An X509-SVID was requested for an ID outside the authority's trust domain.
    #[error(
        "spiffe id '{id}' is not in trust domain '{trust_domain}': an authority only signs ids of its own trust domain"
    )]
    ForeignSpiffeId {
        /// The requested SPIFFE ID.
        id: String,
        /// The authority's trust domain.
        trust_domain: String,
    },
    /// An X509-SVID was requested for the trust domain's root ID (X509-SVID §3.1 requires a path).
    #[error(
        "spiffe id '{0}' has no path: an X509-SVID leaf must identify a workload, not the trust domain"
    )]
    RootSpiffeId(String),
    /// A DNS name for a SAN is not a valid host name.
    #[error(
        "dns name '{0}' is invalid: expected dot-separated labels of 1-63 characters of a-z A-Z 0-9 - _ (an optional leading '*' label), at most 253 bytes"
    )]
    InvalidDnsName(String),
    /// A JWT-SVID was requested without an audience, or with an empty audience value
    /// (JWT-SVID §3.2: `aud` MUST be present).
    #[error(
        "audience {0:?} is empty or holds an empty value: a JWT-SVID needs at least one non-empty audience"
    )]
    EmptyAudience(Vec<String>),
    /// A zero TTL was requested.
    #[error("ttl of {what} is zero: it must be at least one second")]
    InvalidTtl {
        /// What the TTL was for ("x509-svid", "ca").
        what: &'static str,
    },
    /// A LocalAuthority request named no authority.
    #[error("no authority id given: name the {kind} authority to {action}")]
    MissingAuthorityId {
        /// `x509` or `jwt`.
        kind: &'static str,
        /// `activate`, `taint` or `revoke`.
        action: &'static str,
    },
    /// Activation was asked for while no authority is prepared.
    #[error("no {kind} authority is prepared: prepare one before activating")]
    NoPreparedAuthority {
        /// `x509` or `jwt`.
        kind: &'static str,
    },
    /// Activation named an authority other than the prepared one.
    #[error(
        "cannot activate {kind} authority '{id}': it is not the prepared authority ('{prepared}'); only the prepared authority can be activated"
    )]
    NotPreparedAuthority {
        /// `x509` or `jwt`.
        kind: &'static str,
        /// The id asked for.
        id: String,
        /// The prepared authority's id.
        prepared: String,
    },
    /// Taint or revoke named an authority that is not the old one (active, prepared or
    /// unknown).
    #[error(
        "cannot {action} {kind} authority '{id}' ({role}): only the old authority, replaced by activating a new one, can be tainted or revoked"
    )]
    NotOldAuthority {
        /// `x509` or `jwt`.
        kind: &'static str,
        /// `taint` or `revoke`.
        action: &'static str,
        /// The id asked for.
        id: String,
        /// What the id is now: `the active authority`, `the prepared authority`, `unknown`.
        role: &'static str,
    },
    /// Taint or revoke named an X.509 authority id that matches none of the authorities.
    #[error(
        "cannot {action} x509 authority '{id}': no authority has this id; expected the subject key id as hex, e.g. 50e7cb44... (see `lanyard server localauthority x509 show`)"
    )]
    UnknownX509Authority {
        /// `taint` or `revoke`.
        action: &'static str,
        /// The id asked for.
        id: String,
    },
    /// Taint named an authority that is already tainted.
    #[error("cannot taint {kind} authority '{id}': it is already tainted")]
    AlreadyTainted {
        /// `x509` or `jwt`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// Taint named a local authority that an upstream authority signed: the bundle holds the
    /// upstream roots, not this authority, so only the upstream authority can be tainted.
    #[error(
        "cannot taint x509 authority '{id}': an upstream authority signed it, so the bundle holds the upstream roots; taint the upstream authority instead"
    )]
    UpstreamSignedAuthority {
        /// The id asked for.
        id: String,
    },
    /// Revoke named an authority that is not tainted.
    #[error(
        "cannot revoke {kind} authority '{id}': it is not tainted; only a tainted authority can be revoked, so taint it first"
    )]
    NotTainted {
        /// `x509` or `jwt`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The authority cannot sign at this time (not yet valid or expired).
    #[error(
        "authority {serial} is not valid at {now}: it is valid from {not_before} until {not_after}",
        now = fmt_time(*now), not_before = fmt_time(*not_before), not_after = fmt_time(*not_after)
    )]
    AuthorityNotValid {
        /// Hex serial of the authority certificate.
        serial: String,
        /// The signing time asked for.
        now: SystemTime,
        /// Start of the authority's validity.
        not_before: SystemTime,
        /// End of the authority's validity.
        not_after: SystemTime,
    },
    /// A certificate that should be a Lanyard CA is not one.
    #[error("certificate is not a usable authority: {0}")]
    InvalidAuthority(String),
    /// The private key does not belong to the authority certificate.
    #[error("private key does not match the public key of authority {serial}")]
    KeyMismatch {
        /// Hex serial of the authority certificate.
        serial: String,
    },
    /// The private key under a JWT key id is not the one the journal published for its `kid`.
    #[error("private key '{key_id}' does not match the public key published for jwt kid '{kid}'")]
    JwtKeyMismatch {
        /// The published key ID.
        kid: String,
        /// The key manager id.
        key_id: String,
    },
    /// The stored CA journal cannot be decoded or is inconsistent.
    #[error("ca journal is corrupt: {0}")]
    CorruptJournal(String),
    /// A time that cannot be written into a certificate (before 1970 or too far in the future).
    #[error("time {0:?} cannot be encoded in a certificate")]
    InvalidTime(SystemTime),
    /// The key manager failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The upstream authority cannot sign.
    #[error(transparent)]
    Upstream(#[from] crate::upstream::UpstreamError),
    /// The journal store failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Loading a JWT signing key or signing a JWT-SVID failed.
    #[error("jwt signing failed: {0}")]
    Jwt(#[from] lanyard_spiffe::jwt::JwtError),
    /// Encoding or signing a certificate or request failed.
    #[error("encoding a certificate failed: {0}")]
    Encoding(#[from] rcgen::Error),
    /// The system random number generator failed.
    #[error("system random number generator failed")]
    Random,
}

/// Formats a time as an RFC 3339-like UTC string for messages, without extra dependencies.
pub(crate) fn fmt_time(t: SystemTime) -> String {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => match time::OffsetDateTime::from_unix_timestamp(d.as_secs() as i64) {
            Ok(dt) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                dt.year(),
                u8::from(dt.month()),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second()
            ),
            Err(_) => format!("{t:?}"),
        },
        Err(_) => format!("{t:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_times_as_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(fmt_time(t), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn messages_name_the_value_and_the_rule() {
        let e = CaError::RootSpiffeId("spiffe://example.org".into());
        assert_eq!(
            e.to_string(),
            "spiffe id 'spiffe://example.org' has no path: an X509-SVID leaf must identify a workload, not the trust domain"
        );
    }
}
