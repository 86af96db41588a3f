//! The error type of the jwt module.

use serde_json::Value;

use crate::id::IdError;

/// Why a JWT-SVID, a JWT key or a signing request was rejected.
///
/// Variants fall in three groups: the token breaks a rule of the JWT-SVID spec or of JWS/JWT
/// (peer input, named after the rule), the token is not trusted here (no bundle, unknown key,
/// bad signature, expired, wrong audience), and the caller asked for something impossible
/// (no expected audience, a signing key that does not fit the algorithm).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// The token is longer than [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN).
    #[error("token is {len} bytes long: at most {max} bytes are allowed")]
    TokenTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// Not three dot-separated parts (JWE has five, JWS JSON serialization has none).
    #[error(
        "token has {parts} dot-separated parts: a JWT-SVID is a compact JWS with exactly 3 \
         (JWE and JWS JSON serialization are not allowed)"
    )]
    NotCompactJws {
        /// How many parts there are.
        parts: usize,
    },

    /// A part that is not unpadded base64url.
    #[error("token {part} is not unpadded base64url: {reason}")]
    Base64 {
        /// `header`, `claims` or `signature`.
        part: &'static str,
        /// What the decoder reported.
        reason: String,
    },

    /// A header or claims part that is not one JSON object (or has duplicate member names).
    #[error("token {part} is not a JSON object without duplicate members: {reason}")]
    Json {
        /// `header` or `claims`.
        part: &'static str,
        /// What the decoder reported.
        reason: String,
    },

    /// The header has no `alg`.
    #[error("header \"alg\" is missing: a JWT-SVID must name its algorithm")]
    MissingAlg,

    /// `alg` outside the nine of JWT-SVID §3.1.
    #[error("header \"alg\" is {alg}: only {allowed} are allowed", allowed = super::algorithm::ALLOWED_ALGS)]
    UnsupportedAlg {
        /// The value, as JSON, shortened.
        alg: String,
    },

    /// A header member other than `alg`, `kid` and `typ` (JWT-SVID §3).
    #[error("header {name} is present: only \"alg\", \"kid\" and \"typ\" are allowed")]
    ForbiddenHeader {
        /// The member name, quoted and shortened.
        name: String,
    },

    /// `typ` present but neither `JWT` nor `JOSE` (JWT-SVID §3.3).
    #[error("header \"typ\" is {typ}: only \"JWT\" or \"JOSE\" are allowed")]
    BadTyp {
        /// The value, as JSON, shortened.
        typ: String,
    },

    /// No usable `kid` (see [`JwtSvid`](super::JwtSvid) for why it is required).
    #[error("header \"kid\" is {found}: a non-empty string key ID is required")]
    BadKid {
        /// `missing`, or the value as JSON, shortened.
        found: String,
    },

    /// A required claim is absent.
    #[error("claim \"{claim}\" is missing: a JWT-SVID must have it")]
    MissingClaim {
        /// `sub`, `aud` or `exp`.
        claim: &'static str,
    },

    /// A claim of the wrong JSON type.
    #[error("claim \"{claim}\" is {found}: it must be {expected}")]
    ClaimType {
        /// The claim name.
        claim: &'static str,
        /// The value as JSON, shortened.
        found: String,
        /// What is required.
        expected: &'static str,
    },

    /// A time claim too far from the epoch to be represented.
    #[error("claim \"{claim}\" is {value}: it is out of the representable time range")]
    TimeOutOfRange {
        /// `exp` or `nbf`.
        claim: &'static str,
        /// The value as JSON, shortened.
        value: String,
    },

    /// `sub` is not a SPIFFE ID.
    #[error("claim \"sub\" {sub} is not a valid SPIFFE ID: {source}")]
    InvalidSubject {
        /// The value, shortened.
        sub: String,
        /// The rule it breaks.
        source: IdError,
    },

    /// `aud` is an empty array.
    #[error("claim \"aud\" is empty: at least one audience is required")]
    EmptyAudience,

    /// None of the expected audiences is in `aud`.
    #[error("claim \"aud\" is {aud}: it must contain one of {expected}")]
    AudienceMismatch {
        /// The token's audiences, shortened.
        aud: String,
        /// The expected ones, shortened.
        expected: String,
    },

    /// The caller gave no expected audience (never read as "accept any audience").
    #[error("no expected audience given: validation needs at least one non-empty audience")]
    NoExpectedAudience,

    /// The token expired (more than the leeway ago).
    #[error(
        "token expired at {exp} (unix seconds), {ago} s ago: at most {leeway} s of clock skew is \
         accepted",
        leeway = super::LEEWAY.as_secs()
    )]
    Expired {
        /// `exp`, whole unix seconds.
        exp: i64,
        /// Seconds since `exp`.
        ago: u64,
    },

    /// `nbf` is in the future (by more than the leeway).
    #[error(
        "token is not valid before {nbf} (unix seconds), {ahead} s from now: at most {leeway} s \
         of clock skew is accepted",
        leeway = super::LEEWAY.as_secs()
    )]
    NotYetValid {
        /// `nbf`, whole unix seconds.
        nbf: i64,
        /// Seconds until `nbf`.
        ahead: u64,
    },

    /// No JWT bundle for the token's trust domain (Workload API §6.3: no fallback to others).
    #[error("no JWT bundle for trust domain '{trust_domain}': the token of {sub} is untrusted")]
    NoBundle {
        /// The trust domain of `sub`.
        trust_domain: String,
        /// The token's SPIFFE ID.
        sub: String,
    },

    /// The bundle has no key with the token's `kid`.
    #[error("key ID {kid} is not in the JWT bundle of '{trust_domain}': the token is untrusted")]
    UnknownKid {
        /// The `kid`, shortened.
        kid: String,
        /// The trust domain.
        trust_domain: String,
    },

    /// The key named by `kid` cannot verify `alg` (e.g. ES384 with a P-256 key).
    #[error("key {kid} is an {key} key: it cannot verify {alg}")]
    KeyAlgMismatch {
        /// The `kid`, shortened.
        kid: String,
        /// The key kind, e.g. `EC P-256`.
        key: String,
        /// The token's algorithm.
        alg: super::JwtAlgorithm,
    },

    /// The signature does not verify with the key.
    #[error("signature does not verify with key {kid} ({alg}): the token is forged or altered")]
    BadSignature {
        /// The `kid`, shortened.
        kid: String,
        /// The algorithm.
        alg: super::JwtAlgorithm,
    },

    /// A public key that cannot be used for JWT-SVIDs.
    #[error("public key is invalid: {reason}")]
    InvalidKey {
        /// The rule it breaks.
        reason: String,
    },

    /// A private key that cannot be used to sign JWT-SVIDs (local misconfiguration).
    #[error("signing key is invalid: {reason}")]
    InvalidSigningKey {
        /// The rule it breaks.
        reason: String,
    },

    /// A signing request that would produce an invalid JWT-SVID (caller error).
    #[error("cannot sign JWT-SVID: {reason}")]
    InvalidClaims {
        /// The rule it would break.
        reason: String,
    },

    /// aws-lc-rs failed to sign (internal error).
    #[error("signing with {alg} failed in aws-lc-rs")]
    SigningFailed {
        /// The algorithm.
        alg: super::JwtAlgorithm,
    },
}

/// A JSON value as shown in messages: its JSON text (strings keep their double quotes and
/// escapes), cut after 100 characters.
pub(crate) fn shown(value: &Value) -> String {
    const LIMIT: usize = 100;
    let text = value.to_string();
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// A string as shown in messages: JSON-quoted and escaped, cut after 100 characters.
pub(crate) fn quoted(s: &str) -> String {
    shown(&Value::String(s.to_owned()))
}
