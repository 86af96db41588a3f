//! JWT-SVIDs (JWT-SVID spec) and JWT bundles.
//!
//! Validation is strict and ordered so that nothing about a token is trusted before its `alg` is
//! known to be one of the nine allowed, and no key is looked up outside the bundle of the
//! token's own trust domain. Signatures are checked with aws-lc-rs. See [`JwtSvid`] for the full
//! list of rules and the choices made where the spec leaves room (`kid` required, leeway).
//!
//! JSON is decoded with duplicate member names rejected at every depth, so a header or claims
//! set cannot mean two things to two parsers.

mod algorithm;
mod bundle;
mod decode;
pub(crate) mod error;
pub(crate) mod json;
mod key;
mod sign;
mod svid;

#[cfg(test)]
mod cross_check_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod svid_tests;
#[cfg(test)]
pub(crate) mod test_keys;

use std::time::Duration;

pub use algorithm::JwtAlgorithm;
pub use bundle::{JwtBundle, JwtBundleSet, JwtBundleSource};
pub use error::JwtError;
pub use key::{EcCurve, EcPublicKey, JwtPublicKey, MAX_RSA_BITS, MIN_RSA_BITS, RsaPublicKey};
pub use sign::{JwtSigner, JwtSigningKey, JwtSvidClaims, sign_jwt_svid};
pub use svid::JwtSvid;

/// Longest token accepted, in bytes, checked before any decoding. SPIRE's tokens are well under
/// 2 KiB; 64 KiB leaves room for large RSA signatures and extra claims.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Clock skew tolerated on `exp` and `nbf` (JWT-SVID §3.3 allows "a small leeway").
///
/// 30 seconds: enough for hosts kept in sync by NTP, and small next to the 5-minute JWT-SVIDs
/// Lanyard issues. go-spiffe (through go-jose) allows 60 seconds, so a token 30 to 60 seconds
/// past `exp` passes there and fails here.
pub const LEEWAY: Duration = Duration::from_secs(30);
