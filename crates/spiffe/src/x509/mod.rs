//! X509-SVIDs and X.509 bundles (X509-SVID §4-5, Trust Domain and Bundle §4).
//!
//! Parsing uses x509-parser; RFC 5280 path validation uses rustls-webpki on aws-lc-rs. The SPIFFE
//! rules on top of RFC 5280 (exactly one URI SAN, leaf not a CA, leaf key usage, signing
//! certificates with keyCertSign) live in this module. A chain is always validated against the
//! bundle of the leaf's own trust domain, never against a pool of several trust domains.

mod bundle;
mod cert;
mod encoding;
mod error;
mod key;
mod svid;
mod verify;

#[cfg(test)]
mod crosscheck_tests;
#[cfg(test)]
pub(crate) mod table_tests;
#[cfg(test)]
pub(crate) mod test_certs;

pub use bundle::{BundleSource, X509Bundle, X509BundleSet};
pub use cert::{not_after_of, not_before_of, serial_of, spiffe_id_of};
pub use encoding::{
    MAX_BUNDLE_CERTS, MAX_CHAIN_CERTS, certs_to_pem, concat_der, parse_der_chain, parse_pem_certs,
    pkcs8_to_pem,
};
pub use error::X509Error;
pub use svid::X509Svid;
pub use verify::verify_chain;
