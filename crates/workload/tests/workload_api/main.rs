//! The Workload API server over real unix sockets in temporary directories, with a fake
//! identity source: the wire rules (header, status codes, streaming), the connection
//! lifecycle (clients leaving, shutdown), and interop with the independent `spiffe` crate.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod interop;
mod lifecycle;
mod support;
mod watcher;
mod wire;
