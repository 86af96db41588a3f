#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! Lanyard's datastore: registration entries, attested agents, single-use join tokens, trust
//! bundles, federation relationships, a change feed, and storage for the CA journal, behind the
//! [`Datastore`] trait.
//!
//! [`SqlDatastore`] is the implementation: one body of SQL on SQLite, PostgreSQL or MySQL
//! (MariaDB) through sqlx's `Any` driver, schema migrations per engine embedded in the binary
//! and applied on open, every operation one transaction. This crate does not decide policy: it
//! does not authorize callers, compute which entries an agent may receive, or check
//! certificates; it stores what the server hands it and answers queries. It never holds private
//! keys.

mod bundle;
mod change;
// Public only so the fuzz target in crates/datastore/fuzz can reach it; not part of the API.
#[doc(hidden)]
pub mod connstr;
mod datastore;
mod error;
mod id;
mod journal;
mod model;
mod sql;

pub use bundle::{
    BundleDeleteMode, BundleEndpointProfile, FederationRelationship, StoredBundle, StoredJwtKey,
};
pub use change::{Change, ChangeKind};
pub use datastore::Datastore;
pub use error::DatastoreError;
pub use id::{EntryId, EntryIdError, MAX_ENTRY_ID_LEN};
pub use journal::ServerJournal;
pub use model::{
    AgentFilter, AttestedAgent, Entry, EntryFilter, EntryUpdate, NewEntry, SelectorMatch, TokenUse,
};
pub use sql::{DEFAULT_CONNECT_TIMEOUT, DatabaseConfig, Engine, SqlDatastore, SqliteDatastore};
