//! SPIFFE IDs and trust domain names (SPIFFE-ID §2), parsed byte by byte.
//!
//! No URL library is involved: URL parsers percent-decode, resolve dot segments and accept ports or
//! userinfo, which would turn invalid IDs into valid-looking ones. The parser here rejects instead
//! of normalising, so every accepted string is already canonical and `parse(s).to_string() == s`.

pub(crate) mod error;
mod rules;
mod spiffe_id;
mod trust_domain;

#[cfg(test)]
mod crosscheck_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
pub(crate) mod table_tests;

pub use error::{IdError, Shown, ShownChar};
pub use spiffe_id::SpiffeId;
pub use trust_domain::TrustDomain;

/// The URI scheme and separator every SPIFFE ID starts with, exactly as written (lowercase).
pub const SCHEME_PREFIX: &str = "spiffe://";

/// Longest SPIFFE ID accepted, in bytes (SPIFFE-ID §2.3: implementations must accept 2048 bytes).
pub const MAX_ID_LEN: usize = 2048;

/// Longest trust domain name accepted, in bytes (SPIFFE-ID §2.1).
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;
