//! Drop-in proof against SPIRE itself (issue #10): SPIRE's own `spire-server` and
//! `spire-agent` binaries, unchanged, driven against real Lanyard processes and the other way
//! round, on loopback and temporary unix sockets.
//!
//! - `server_cli`: SPIRE's admin CLI against a Lanyard server's admin socket;
//! - `agent_cli`: SPIRE's Workload API CLI against a Lanyard agent's socket;
//! - `spire_agent`: a SPIRE agent attesting to, and syncing from, a Lanyard server;
//! - `spire_server`: a Lanyard agent attesting to, and syncing from, a SPIRE server;
//! - `spire_syntax`: SPIRE's command lines through `spire-server`/`spire-agent` symlinks;
//! - `spire_healthcheck`: what `healthcheck` prints, and the default sockets, through them;
//! - `hcl_parity`: config files SPIRE accepts are accepted, and read alike.
//!
//! The binaries come from `.ci/spire.sh` (`LANYARD_TEST_SPIRE_BIN`). Without them every test
//! prints `SKIPPED:` and passes, except under `LANYARD_CI`, where it fails. Certificates are
//! checked with `openssl` and JWTs with the `spiffe` crate, not with Lanyard's own code.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

#[path = "../e2e/common.rs"]
#[expect(
    dead_code,
    reason = "shared with the e2e suite, which uses the rest of it"
)]
mod common;

mod agent_cli;
mod checks;
mod daemon;
mod hcl_parity;
mod links;
mod output_parity;
mod server_cli;
mod spire;
mod spire_agent;
mod spire_healthcheck;
mod spire_server;
mod spire_syntax;
