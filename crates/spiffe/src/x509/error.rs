//! The error type of the x509 module.

use crate::id::IdError;

/// Why a certificate, chain, key or bundle was rejected.
///
/// Variants fall in three groups: malformed input (DER/PEM), SPIFFE rule violations (named after
/// the rule) and path validation failures (from rustls-webpki).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum X509Error {
    /// No certificate at all where at least one is required.
    #[error("certificate chain is empty: at least the leaf certificate is required")]
    EmptyChain,

    /// More certificates than allowed.
    #[error("input holds more than {max} certificates: at most {max} are allowed")]
    TooManyCertificates {
        /// The limit that was exceeded.
        max: usize,
    },

    /// Bytes that are not a DER X.509 certificate.
    #[error("certificate {index} is not a valid DER X.509 certificate: {reason}")]
    MalformedCertificate {
        /// Position in the input (0 = first).
        index: usize,
        /// What the parser reported.
        reason: String,
    },

    /// PEM text that could not be decoded.
    #[error("invalid PEM input: {reason}")]
    MalformedPem {
        /// What the decoder reported.
        reason: String,
    },

    /// PEM text without the expected kind of block.
    #[error("no {label} block found in PEM input: exactly the label {label} is required")]
    MissingPemBlock {
        /// The expected PEM label, e.g. `CERTIFICATE` or `PRIVATE KEY`.
        label: &'static str,
    },

    /// A certificate without a URI SAN.
    #[error("certificate has no URI SAN: an X509-SVID must have exactly one")]
    NoUriSan,

    /// A certificate with several URI SANs.
    #[error("certificate has {count} URI SANs: an X509-SVID must have exactly one")]
    MultipleUriSans {
        /// How many there are.
        count: usize,
    },

    /// The URI SAN is not a valid SPIFFE ID.
    #[error("URI SAN {uri:?} is not a valid SPIFFE ID: {source}")]
    InvalidSpiffeId {
        /// The URI SAN, shortened to 200 characters.
        uri: String,
        /// The rule it breaks.
        source: IdError,
    },

    /// The leaf's SPIFFE ID has an empty path.
    #[error("leaf SPIFFE ID '{id}' has no path: an X509-SVID leaf must have a non-root path")]
    LeafRootId {
        /// The ID.
        id: String,
    },

    /// The leaf has basicConstraints cA=true.
    #[error(
        "leaf certificate is a CA (basicConstraints cA=true): an X509-SVID leaf must not be a CA"
    )]
    LeafIsCa,

    /// The leaf has the keyCertSign key usage.
    #[error("leaf certificate has key usage keyCertSign: an X509-SVID leaf must not have it")]
    LeafKeyCertSign,

    /// The leaf has the cRLSign key usage.
    #[error("leaf certificate has key usage cRLSign: an X509-SVID leaf must not have it")]
    LeafCrlSign,

    /// The leaf lacks the digitalSignature key usage (or the key usage extension).
    #[error("leaf certificate lacks key usage digitalSignature: an X509-SVID leaf must have it")]
    LeafNoDigitalSignature,

    /// A signing certificate in an SVID chain is not a CA.
    #[error(
        "certificate {index} of the chain is not a CA (cA=true required): signing certificates must be CAs"
    )]
    SigningCertNotCa {
        /// Position in the chain (1 = the leaf's issuer).
        index: usize,
    },

    /// A signing certificate in an SVID chain lacks keyCertSign.
    #[error(
        "certificate {index} of the chain lacks key usage keyCertSign: signing certificates must have it"
    )]
    SigningCertNoKeyCertSign {
        /// Position in the chain (1 = the leaf's issuer).
        index: usize,
    },

    /// An extension that could not be read (malformed or duplicated).
    #[error("certificate {index} has an unreadable {extension} extension: {reason}")]
    BadExtension {
        /// Position in the chain (0 = leaf).
        index: usize,
        /// Which extension.
        extension: &'static str,
        /// What the parser reported.
        reason: String,
    },

    /// A validity time that does not fit `SystemTime`.
    #[error("certificate validity time {timestamp} is out of range for this system")]
    TimeOutOfRange {
        /// Seconds since the Unix epoch, as written in the certificate.
        timestamp: i64,
    },

    /// The private key could not be read as PKCS#8 for the leaf's key algorithm.
    #[error("private key is not a valid PKCS#8 {algorithm} key: {reason}")]
    MalformedKey {
        /// The algorithm expected from the leaf's public key.
        algorithm: &'static str,
        /// What the decoder reported.
        reason: String,
    },

    /// The leaf's public key algorithm is not one we can match keys for.
    #[error(
        "leaf public key algorithm {oid} is not supported: only EC P-256, P-384, RSA and Ed25519 are"
    )]
    UnsupportedKeyAlgorithm {
        /// The algorithm OID (and curve OID for EC keys).
        oid: String,
    },

    /// The private key is fine but belongs to another public key.
    #[error(
        "private key does not match the leaf certificate's public key: the key must be the leaf's"
    )]
    KeyMismatch,

    /// No bundle for the leaf's trust domain.
    #[error("no X.509 bundle for trust domain '{trust_domain}': its SVIDs cannot be trusted")]
    NoBundle {
        /// The leaf's trust domain name.
        trust_domain: String,
    },

    /// The bundle for the leaf's trust domain holds no authorities.
    #[error("X.509 bundle of trust domain '{trust_domain}' is empty: every SVID of it is invalid")]
    EmptyBundle {
        /// The trust domain name.
        trust_domain: String,
    },

    /// A bundle authority that rustls-webpki cannot use as a trust anchor.
    #[error(
        "authority {index} of trust domain '{trust_domain}' is not a usable trust anchor: {reason}"
    )]
    BadAuthority {
        /// The trust domain name.
        trust_domain: String,
        /// Position in the bundle.
        index: usize,
        /// What rustls-webpki reported.
        reason: webpki::Error,
    },

    /// The time given for validation is before the Unix epoch.
    #[error("validation time is before 1970: a time after the Unix epoch is required")]
    TimeBeforeEpoch,

    /// RFC 5280 path validation failed (unknown issuer, expired, bad signature, ...).
    #[error("certificate path validation against the bundle of '{trust_domain}' failed: {reason}")]
    PathValidation {
        /// The trust domain whose bundle was used.
        trust_domain: String,
        /// What rustls-webpki reported.
        reason: webpki::Error,
    },
}
