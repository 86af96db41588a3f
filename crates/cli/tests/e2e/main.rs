//! End-to-end tests: real `lanyard` processes on temporary sockets, driven through the CLI
//! and independent SPIFFE clients (the `spiffe` crate, `openssl`).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod agent_key_manager;
mod bootstrap_url;
mod common;
mod config_files;
mod failures;
mod federation_bundles;
mod helper;
mod helper_files;
mod helper_jwt;
mod interop_go;
mod interop_go_workloads;
mod interop_python;
mod interop_rustls;
mod jwt;
mod key_types;
mod local_authority;
mod mint;
mod node_ca;
mod operations;
mod push_sync;
mod reattest;
mod registration_agents;
mod registration_bundles;
mod registration_common;
mod registration_entries;
mod registration_federation;
mod rotation;
mod signals;
mod taint;
mod unix_attestor;
mod upstream;
mod walking_skeleton;
mod x509pop;
