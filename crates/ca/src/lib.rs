#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! Lanyard's certificate authority: key types and key managers, PKCS#10 requests, a self-signed
//! X.509 CA (or one signed by an upstream CA) that mints X509-SVIDs, JWT signing keys that mint JWT-SVIDs, and the CA manager that
//! rotates both on SPIRE's prepared / active / old schedule and persists them through a journal.
//!
//! This crate does no network I/O and owns no database: the only I/O it performs is the
//! [`DiskKeyManager`]'s key files and [`DiskUpstream`]'s upstream CA files, read through [`operator_file`] (also used by the agent and CLI for
//! operator-configured files). Journal persistence goes through the [`JournalStore`] trait,
//! which the datastore implements. Time comes from a [`Clock`] or an explicit `SystemTime`, so
//! rotation can be tested by moving a [`ManualClock`]. It does not validate peers (that is
//! `lanyard-spiffe`), talks to no remote upstream authority, and does not encrypt keys at rest
//! (file modes protect them, as with SPIRE's disk key manager).
//!
//! All cryptography is aws-lc-rs, through rcgen and x509-parser.

pub mod authority;
pub mod clock;
pub mod csr;
pub mod disk;
pub mod drift;
mod encoding;
pub mod error;
pub mod journal;
pub mod jwt;
pub mod key;
pub mod manager;
pub mod operator_file;
mod rotation;
pub mod schedule;
mod slots;
pub mod svid;
pub mod upstream;

#[cfg(test)]
mod test_support;

pub use authority::X509Authority;
pub use clock::{Clock, ManualClock, SystemClock};
pub use csr::{ValidatedCsr, make_csr, parse_csr};
pub use disk::DiskKeyManager;
pub use drift::config_drift;
pub use encoding::public_key_from_spki;
pub use error::CaError;
pub use journal::{JournalError, JournalStore, MemoryJournalStore};
pub use jwt::{JWT_KEY_IDS, JwtAuthority, SignedJwtSvid};
pub use key::{
    KeyError, KeyManager, KeyType, MemoryKeyManager, SigningKey, generate_key_pair,
    key_pair_from_pkcs8, validate_key_id,
};
pub use manager::{
    AuthorityState, AuthorityStates, CaConfig, CaManager, X509_KEY_IDS,
    normalize_x509_authority_id, x509_authority_id,
};
pub use svid::SvidParams;
pub use upstream::{
    DiskUpstream, DiskUpstreamPaths, UpstreamAuthority, UpstreamChain, UpstreamError,
};
