//! The Workload API server over real unix sockets in temporary directories, with a fake
//! identity source: the wire rules (header, status codes, streaming), the connection
//! lifecycle (clients leaving, shutdown), interop with the independent `spiffe` crate, every
//! message's bytes spelled out by hand from the specification's field table (`wire_bytes`),
//! and our server's real answers decoded by py-spiffe's generated classes (`wire_cross`).

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod interop;
mod lifecycle;
mod support;
mod watcher;
mod wire;
mod wire_bytes;
mod wire_capture;
mod wire_cross;
