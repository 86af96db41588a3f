//! The SPIFFE Workload API: the server side (generic over where identities come from), a
//! client, and the parsing of endpoint addresses (`SPIFFE_ENDPOINT_SOCKET`).
//!
//! The server enforces the wire rules of the SPIFFE Workload Endpoint and Workload API
//! specifications: the `workload.spiffe.io: true` header, full-state streaming messages sent
//! first immediately and then on every change, and the status codes clients rely on. It does
//! not decide who a caller is or what it may have: an [`IdentitySource`] (the agent) does.
//!
//! The JWT-SVID profile is not served yet; its RPCs answer `Unimplemented`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod client;
mod conn;
pub mod server;
mod source;

pub use addr::EndpointAddr;
pub use server::{WorkloadApiServer, serve_unix};
pub use source::{
    BundlesSnapshot, Caller, IdentitySource, SourceError, X509Snapshot, X509SvidItem,
};
