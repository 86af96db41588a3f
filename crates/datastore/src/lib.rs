#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! Lanyard's datastore: registration entries, attested agents, single-use join tokens, trust
//! bundles, and storage for the CA journal, behind the [`Datastore`] trait.
//!
//! [`SqliteDatastore`] is the implementation: SQLite through sqlx, schema migrations embedded in
//! the binary and applied on open, every operation one transaction. The schema is written so that
//! PostgreSQL and MySQL implementations can mirror it. This crate does not decide policy: it does
//! not authorize callers, compute which entries an agent may receive, or check certificates; it
//! stores what the server hands it and answers queries. It never holds private keys.

mod datastore;
mod error;
mod id;
mod model;
mod sqlite;

pub use datastore::Datastore;
pub use error::DatastoreError;
pub use id::{EntryId, EntryIdError, MAX_ENTRY_ID_LEN};
pub use model::{
    AttestedAgent, Entry, EntryFilter, NewEntry, SelectorMatch, StoredBundle, TokenUse,
};
pub use sqlite::SqliteDatastore;
