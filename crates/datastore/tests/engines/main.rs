//! The datastore's behaviour, written once and run against every engine (see `support`).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test helpers assert by panicking"
)]

mod support;

mod agents;
mod batches;
mod bundles;
mod changes;
mod collation;
mod entries;
mod entry_filters;
mod entry_updates;
mod federation;
mod journal;
mod schema;
mod snapshot;
mod tokens;
