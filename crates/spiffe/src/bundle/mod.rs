//! The SPIFFE bundle document (Trust Domain and Bundle §4), the plain JWKS of the Workload API,
//! and bundle maps keyed by trust domain.
//!
//! Consuming follows the spec's leniency and nothing more: a JWK with a missing or unknown
//! `kty` or `use` is skipped (and reported in [`SpiffeBundle::skipped`]), an `x509-svid` JWK
//! without `x5c` is skipped, and of several `x5c` certificates only the first is used
//! (X509-SVID §6). Every other defect rejects the whole document, in particular a `jwt-svid`
//! key without `kid`, a duplicate `kid`, bad base64, a point off its curve, and `x509-svid` key
//! parameters that do not match the certificate: such a bundle comes from a broken producer,
//! and quietly dropping a key would only move the failure to token validation.
//!
//! Producing is strict, in the form go-spiffe and SPIRE require: `keys` always present,
//! `kty` and key parameters on every key, exactly one standard-base64 `x5c` certificate on
//! X.509 keys, `kid` on JWT keys, `use` on every key of a SPIFFE bundle.
//!
//! Input limits: [`MAX_DOCUMENT_LEN`] bytes per document and [`MAX_KEYS`] keys per bundle,
//! checked before the keys are decoded.

mod document;
mod error;
mod jwk;
mod jwks;
mod map;

#[cfg(test)]
mod document_tests;
#[cfg(test)]
mod proptests;

pub use document::{SkipReason, SkippedKey, SpiffeBundle};
pub use error::BundleDocError;
pub use jwks::{jwt_bundle_to_jwks, parse_jwks, parse_jwks_reporting};
pub use map::jwt_bundle_set_from_map;

/// Largest bundle document or JWKS accepted, in bytes (1 MiB: about 1000 RSA-4096 root
/// certificates).
pub const MAX_DOCUMENT_LEN: usize = 1024 * 1024;

/// Most JWKs accepted in one document, the same as the X.509 bundle limit.
pub const MAX_KEYS: usize = crate::x509::MAX_BUNDLE_CERTS;

/// The `use` of X.509 authorities (X509-SVID §6).
pub const USE_X509_SVID: &str = "x509-svid";

/// The `use` of JWT authorities (JWT-SVID §6).
pub const USE_JWT_SVID: &str = "jwt-svid";
