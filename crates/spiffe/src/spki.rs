//! The SubjectPublicKeyInfo algorithm identifiers the key readers recognise (RFC 5480 for EC,
//! RFC 3279 for RSA, RFC 8410 for Ed25519), as dotted strings.

use x509_parser::x509::SubjectPublicKeyInfo;

pub(crate) const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
pub(crate) const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
pub(crate) const OID_ED25519: &str = "1.3.101.112";
pub(crate) const OID_CURVE_P256: &str = "1.2.840.10045.3.1.7";
pub(crate) const OID_CURVE_P384: &str = "1.3.132.0.34";
pub(crate) const OID_CURVE_P521: &str = "1.3.132.0.35";

/// The named curve in an EC key's algorithm parameters, dotted; empty when the parameters are
/// missing or not an OID.
pub(crate) fn ec_curve_oid(spki: &SubjectPublicKeyInfo<'_>) -> String {
    spki.algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|oid| oid.to_id_string())
        .unwrap_or_default()
}
