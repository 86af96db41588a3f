#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! The SPIFFE standards for Lanyard: SPIFFE IDs and trust domains (SPIFFE-ID §2), SPIRE-style
//! selectors, X509-SVIDs and X.509 bundles (X509-SVID §4-5), JWT-SVIDs and JWT bundles
//! (JWT-SVID spec), the SPIFFE bundle document and plain JWKS (Trust Domain and Bundle §4), and
//! rustls verifiers that authenticate peers by X509-SVID and authorize them by SPIFFE ID.
//!
//! This crate does no I/O, spawns nothing and installs no globals (no crypto provider, no
//! logger). It parses strictly and rejects rather than normalises: an upper-case trust domain is
//! an error, not something to lowercase. Chains are always verified against the bundle of the
//! leaf's own trust domain, never against a pool of several; JWT-SVIDs likewise only against
//! the JWT bundle of their `sub`'s trust domain.

pub mod bundle;
pub mod id;
pub mod jwt;
pub mod selector;
mod spki;
pub mod tls;
pub mod x509;

pub use bundle::SpiffeBundle;
pub use id::{SpiffeId, TrustDomain};
pub use jwt::{JwtBundle, JwtBundleSet, JwtBundleSource, JwtSvid};
pub use selector::Selector;
pub use x509::{BundleSource, X509Bundle, X509Svid};
