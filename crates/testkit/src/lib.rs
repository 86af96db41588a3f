//! Test support for Lanyard's end-to-end tests: starts real `lanyard server run` and
//! `lanyard agent run` processes on temporary sockets, runs CLI commands, and cleans up.
//!
//! Only ever a dev-dependency. Waiting is done by polling a condition with a deadline,
//! never by sleeping a fixed time and hoping.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![expect(
    clippy::panic,
    reason = "a test harness reports broken preconditions by panicking"
)]
#![expect(
    clippy::expect_used,
    reason = "a test harness reports broken preconditions by panicking"
)]

mod process;

pub use process::{Agent, AgentOptions, CliOutput, Lanyard, Server, ServerOptions, wait_until};
