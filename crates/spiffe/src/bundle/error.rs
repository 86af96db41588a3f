//! The error type of the bundle module.

use crate::id::IdError;
use crate::jwt::JwtError;

/// Why a SPIFFE bundle document, JWKS or bundle map was rejected as a whole.
///
/// Keys the spec says to ignore (unknown `kty` or `use`) never cause one of these; they are
/// reported through [`SkippedKey`](super::SkippedKey) instead. A key of a known kind that is
/// malformed does: a bundle that silently lost a key would look valid and fail later, far from
/// the cause.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BundleDocError {
    /// The input is longer than the limit.
    #[error("bundle document is {len} bytes long: at most {max} bytes are allowed")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// Not JSON, or JSON with duplicate member names.
    #[error("bundle document is not valid JSON without duplicate members: {reason}")]
    Json {
        /// What the decoder reported.
        reason: String,
    },

    /// The top level is not an object.
    #[error("bundle document is {found}: it must be a JSON object (a JWK Set)")]
    NotObject {
        /// The JSON value, shortened.
        found: String,
    },

    /// `keys` is absent or null (Trust Domain and Bundle §4.1: it MUST be present).
    #[error("bundle document has no \"keys\" member: it is required, use [] for no keys")]
    MissingKeys,

    /// `keys` is not an array.
    #[error("bundle \"keys\" is {found}: it must be an array of JWKs")]
    KeysNotArray {
        /// The JSON value, shortened.
        found: String,
    },

    /// More keys than [`MAX_KEYS`](super::MAX_KEYS).
    #[error("bundle has {count} keys: at most {max} are allowed")]
    TooManyKeys {
        /// How many there are.
        count: usize,
        /// The limit.
        max: usize,
    },

    /// An entry of `keys` that is not a JSON object.
    #[error("key {index} is {found}: every entry of \"keys\" must be a JSON object")]
    KeyNotObject {
        /// Position in `keys`.
        index: usize,
        /// The JSON value, shortened.
        found: String,
    },

    /// `spiffe_sequence` is not an unsigned 64-bit integer.
    #[error("\"spiffe_sequence\" is {found}: it must be an integer from 0 to 18446744073709551615")]
    BadSequence {
        /// The JSON value, shortened.
        found: String,
    },

    /// `spiffe_refresh_hint` is not a whole number of seconds.
    #[error("\"spiffe_refresh_hint\" is {found}: it must be a non-negative integer of seconds")]
    BadRefreshHint {
        /// The JSON value, shortened.
        found: String,
    },

    /// A member of a known key that is missing or malformed.
    #[error("key {index} member \"{member}\" is {problem}")]
    BadMember {
        /// Position in `keys`.
        index: usize,
        /// The member name.
        member: &'static str,
        /// What is wrong and what the rule is.
        problem: String,
    },

    /// A JWT key without `kid` (JWT-SVID §6: `kid` MUST be set).
    #[error("key {index} has no \"kid\": a JWT-SVID key must have a non-empty string key ID")]
    MissingKid {
        /// Position in `keys`.
        index: usize,
    },

    /// Two JWT keys with one `kid`: a token naming it could match either.
    #[error("key ID {kid} appears twice: JWT-SVID key IDs must be unique in a bundle")]
    DuplicateKid {
        /// The `kid`, quoted and shortened.
        kid: String,
    },

    /// A JWT key whose parameters are not a usable key.
    #[error("key {index} is not a valid JWT-SVID key: {source}")]
    InvalidKey {
        /// Position in `keys`.
        index: usize,
        /// Why.
        source: JwtError,
    },

    /// An `x5c` certificate that is not exactly one DER X.509 certificate.
    #[error("key {index} \"x5c\" certificate is invalid: {reason}")]
    BadCertificate {
        /// Position in `keys`.
        index: usize,
        /// Why.
        reason: String,
    },

    /// The key parameters of an `x509-svid` JWK differ from its certificate's public key.
    #[error(
        "key {index} parameters do not match its \"x5c\" certificate ({detail}): they must \
         describe the certificate's public key"
    )]
    X5cKeyMismatch {
        /// Position in `keys`.
        index: usize,
        /// The first member that differs.
        detail: String,
    },

    /// A certificate of the X.509 bundle whose key cannot be written as a JWK (when producing).
    #[error("X.509 authority {index} cannot be written as a JWK: {reason}")]
    Unencodable {
        /// Position in the X.509 bundle.
        index: usize,
        /// Why.
        reason: String,
    },

    /// A bundle map key that is not a trust domain name or trust domain SPIFFE ID.
    #[error("bundle map key {key} is not a trust domain: {source}")]
    InvalidTrustDomain {
        /// The key, quoted and shortened.
        key: String,
        /// The rule it breaks.
        source: IdError,
    },

    /// A bundle map key that is a SPIFFE ID with a path.
    #[error("bundle map key {key} has a path: it must be a trust domain name or spiffe://<name>")]
    TrustDomainWithPath {
        /// The key, quoted and shortened.
        key: String,
    },

    /// Two bundle map keys naming one trust domain (Trust Domain and Bundle §5).
    #[error("trust domain '{trust_domain}' appears twice in the bundle map: keys must be unique")]
    DuplicateTrustDomain {
        /// The trust domain.
        trust_domain: String,
    },

    /// A bundle of a map failed to parse.
    #[error("bundle of trust domain '{trust_domain}': {source}")]
    InMap {
        /// The trust domain.
        trust_domain: String,
        /// Why.
        source: Box<BundleDocError>,
    },

    /// The X.509 and JWT bundles given to [`SpiffeBundle::from_parts`](super::SpiffeBundle::from_parts)
    /// belong to different trust domains.
    #[error(
        "X.509 bundle is for '{x509}' but JWT bundle is for '{jwt}': both must be of one trust domain"
    )]
    TrustDomainMismatch {
        /// Trust domain of the X.509 bundle.
        x509: String,
        /// Trust domain of the JWT bundle.
        jwt: String,
    },
}
