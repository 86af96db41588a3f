//! The SPIFFE Workload API: the server side (generic over where identities come from), a
//! client, and the parsing of endpoint addresses (`SPIFFE_ENDPOINT_SOCKET`).
//!
//! The server enforces the wire rules of the SPIFFE Workload Endpoint and Workload API
//! specifications: the `workload.spiffe.io: true` header, full-state streaming messages sent
//! first immediately and then on every change, and the status codes clients rely on. It reads
//! each caller's kernel credentials from the unix socket and hands them on as a [`Caller`].
//!
//! It deliberately does not decide who a caller is or what it may have: an [`IdentitySource`]
//! (the agent) does. It does not serve TCP (the specification allows it only where the
//! network authenticates callers, which Lanyard does not assume), and it does not serve the
//! optional WIT-SVID profile.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
mod claims;
pub mod client;
pub mod server;
mod source;
#[cfg(test)]
mod testca;

pub use addr::EndpointAddr;
pub use client::{ClientError, JwtBundlesWatcher, WorkloadClient, X509Context, X509Watcher};
pub use server::{
    DEFAULT_SHUTDOWN_GRACE, ServeError, WorkloadApiServer, WorkloadListener, serve_unix,
};
pub use source::{
    BundlesSnapshot, CallMemo, Caller, IdentitySource, JwtSvidItem, ProcessDir, SourceError,
    X509Snapshot, X509SvidItem,
};

/// The error of [`serve_unix`], under the name the crate interface uses.
pub type WorkloadError = ServeError;
