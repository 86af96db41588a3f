//! [`DatastoreError`]: everything a datastore operation can fail with.

use std::path::PathBuf;

use crate::id::EntryId;
use crate::model::Entry;
use lanyard_spiffe::{SpiffeId, TrustDomain};

/// Errors of [`Datastore`](crate::Datastore) operations.
///
/// The variants fall in three groups: the request conflicts with stored data or is malformed
/// (`AlreadyExists` .. `TokenAlreadyExists`: the caller's fault, report it back), the database is
/// unusable (`Open`, `Migration`, `Database`: an operator must look), and stored rows that no
/// longer parse (`Corrupt`: a bug or outside tampering).
#[derive(Debug, thiserror::Error)]
pub enum DatastoreError {
    /// An entry with the same SPIFFE ID, parent ID and selector set exists; it is attached.
    #[error(
        "entry for '{}' under parent '{}' already exists as id '{}': spiffe id, parent id and \
         selector set must be unique",
        .0.spiffe_id, .0.parent_id, .0.id
    )]
    AlreadyExists(Box<Entry>),
    /// No entry has this ID.
    #[error("entry '{0}' does not exist")]
    EntryNotFound(EntryId),
    /// A caller-chosen entry ID is taken by a different entry.
    #[error("entry id '{0}' is already in use: entry ids must be unique")]
    EntryIdInUse(EntryId),
    /// The request is malformed: an entry breaking a rule, a page token this datastore did not
    /// issue, an empty join token. The message names the value and the rule (never a token).
    #[error("{0}")]
    InvalidInput(String),
    /// An agent with this ID is already attested.
    #[error("agent '{0}' is already attested: agent ids must be unique")]
    AgentAlreadyExists(SpiffeId),
    /// No attested agent has this ID.
    #[error("agent '{0}' is not attested")]
    AgentNotFound(SpiffeId),
    /// The serial given to promote is neither the agent's current nor its pending new serial.
    #[error(
        "agent '{id}' has no svid with serial '{serial}': it is neither the current nor the new serial"
    )]
    SerialMismatch {
        /// The agent.
        id: SpiffeId,
        /// The serial that was presented.
        serial: String,
    },
    /// A bundle of this trust domain is already stored.
    #[error("bundle of '{0}' already exists: there is one bundle per trust domain")]
    BundleAlreadyExists(TrustDomain),
    /// No bundle of this trust domain is stored.
    #[error("bundle of '{0}' does not exist")]
    BundleNotFound(TrustDomain),
    /// The bundle cannot be deleted in restrict mode while entries federate with its trust
    /// domain.
    #[error(
        "bundle of '{trust_domain}' is used by {entries} entries that federate with it: delete \
         or dissociate them first, or choose another delete mode"
    )]
    BundleInUse {
        /// The trust domain.
        trust_domain: TrustDomain,
        /// How many entries federate with it.
        entries: u64,
    },
    /// A federation relationship with this trust domain already exists.
    #[error("federation relationship with '{0}' already exists: there is one per trust domain")]
    FederationRelationshipAlreadyExists(TrustDomain),
    /// No federation relationship with this trust domain exists.
    #[error("federation relationship with '{0}' does not exist")]
    FederationRelationshipNotFound(TrustDomain),
    /// A join token with the same value exists (the value is not repeated here: tokens are
    /// secrets).
    #[error("join token already exists: tokens must be unique")]
    TokenAlreadyExists,
    /// A database file could not be created or restricted to its owner (mode 0600).
    #[error("cannot make datastore file '{}' owner-only (mode 0600): {source}", path.display())]
    Permissions {
        /// The database, WAL or shared-memory file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The database file could not be opened or created.
    #[error("cannot open datastore '{}': {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: sqlx::Error,
    },
    /// A database server could not be reached or refused the connection. `target` is the
    /// connection string with its password hidden, `reason` the driver's message with the
    /// password (if it quoted it) hidden too.
    #[error("cannot connect to {engine} datastore '{target}': {reason}")]
    Connect {
        /// The engine (`postgres`, `mysql`, `sqlite3`).
        engine: String,
        /// The connection string, password hidden.
        target: String,
        /// What went wrong, password hidden.
        reason: String,
    },
    /// Migrations are disabled and the database's schema is older than this Lanyard needs.
    #[error(
        "datastore schema is at version {applied} but this lanyard needs version {required}: \
         run the migration (start once without disable_migration, or apply the migrations)"
    )]
    SchemaBehind {
        /// The newest migration applied (0 if none).
        applied: i64,
        /// The newest migration this Lanyard knows.
        required: i64,
    },
    /// The schema migration failed.
    #[error("datastore schema migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database failed a query.
    #[error("datastore query failed: {0}")]
    Database(#[from] sqlx::Error),
    /// The database already serves another trust domain.
    #[error(
        "the datastore belongs to trust domain '{stored}', not '{given}': servers sharing a \
         database must serve the same trust domain; give this server its own database"
    )]
    TrustDomainMismatch {
        /// The trust domain recorded by the first server that used the database.
        stored: String,
        /// This server's trust domain.
        given: TrustDomain,
    },
    /// A stored row no longer parses (bug or tampering).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}
