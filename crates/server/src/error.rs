//! Errors that stop the server from starting or running.

use std::path::PathBuf;

/// Why the server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A setting breaks a rule; fixing the configuration fixes it.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The data directory or a socket path could not be prepared.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The datastore could not be opened or failed.
    #[error("datastore: {0}")]
    Datastore(#[from] lanyard_datastore::DatastoreError),
    /// The CA could not be loaded, created or rotated.
    #[error("certificate authority: {0}")]
    Ca(#[from] lanyard_ca::CaError),
    /// The admin socket is served by a live process (another server).
    #[error("socket {path} is in use by another process", path = path.display())]
    SocketInUse {
        /// The socket path.
        path: PathBuf,
    },
    /// The health or metrics listener cannot start.
    #[error(transparent)]
    Telemetry(#[from] lanyard_telemetry::TelemetryError),
    /// A listener failed.
    #[error("listener on {addr}: {message}")]
    Listen {
        /// The address or socket path.
        addr: String,
        /// What failed.
        message: String,
    },
    /// A bug: an invariant of the server itself did not hold.
    #[error("internal error: {0}")]
    Internal(String),
}
