//! [`DatabaseConfig`]: which database server to use and how.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How long [`SqlDatastore::connect`](crate::SqlDatastore::connect) and later operations wait
/// for a connection by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The SQL engine behind a [`SqlDatastore`](crate::SqlDatastore).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Engine {
    /// An SQLite file on local disk (or in memory).
    Sqlite,
    /// A PostgreSQL server (12 or newer).
    Postgres,
    /// A MySQL 8 or MariaDB 10.11 server.
    Mysql,
}

impl Engine {
    /// The name SPIRE's `database_type` setting uses for this engine.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite3",
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to reach a database server, for [`SqlDatastore::connect`](crate::SqlDatastore::connect).
///
/// `Debug` does not print the connection string, which may hold a password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// The engine.
    pub engine: Engine,
    /// For the server engines, a `postgres://` or `mysql://` URL or a SPIRE-style connection
    /// string (libpq `key=value` pairs, go-sql-driver DSN), translated to a URL; for SQLite,
    /// the database file's path. TLS follows the URL's parameters (`sslmode`, `sslrootcert`,
    /// `sslcert`, `sslkey` for PostgreSQL; `ssl-mode`, `ssl-ca`, `ssl-cert`, `ssl-key` for
    /// MySQL) and the three file settings below.
    pub connection_string: String,
    /// PEM file of the CAs that verify a PostgreSQL or MySQL server (SPIRE's `root_ca_path`).
    /// Becomes `sslrootcert` / `ssl-ca`; when the connection string sets no TLS mode, the mode
    /// becomes `verify-full` / `VERIFY_IDENTITY` instead of the unverified default. sqlx adds
    /// this CA to its built-in public roots rather than replacing them.
    pub root_ca_path: Option<PathBuf>,
    /// PEM client certificate for a PostgreSQL or MySQL server (SPIRE's `client_cert_path`);
    /// needs [`client_key_path`](Self::client_key_path).
    pub client_cert_path: Option<PathBuf>,
    /// PEM private key of [`client_cert_path`](Self::client_cert_path) (SPIRE's
    /// `client_key_path`).
    pub client_key_path: Option<PathBuf>,
    /// Most connections kept open at once; 0 means the default (8).
    pub max_open_conns: u32,
    /// Skips applying schema migrations at connect (an operator runs them separately).
    /// Connecting then fails if the schema is behind this version of Lanyard, instead of
    /// running against tables it does not expect. Default `false`: migrations run at connect.
    pub disable_migration: bool,
    /// How long to wait for a connection (including retries while the server is unreachable)
    /// before failing; [`DEFAULT_CONNECT_TIMEOUT`] unless set.
    pub connect_timeout: Duration,
}

impl DatabaseConfig {
    /// A configuration for `engine` at `connection_string` with no TLS files, default pool
    /// size and migrations enabled.
    pub fn new(engine: Engine, connection_string: impl Into<String>) -> Self {
        DatabaseConfig {
            engine,
            connection_string: connection_string.into(),
            root_ca_path: None,
            client_cert_path: None,
            client_key_path: None,
            max_open_conns: 0,
            disable_migration: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Checks the settings the way connecting would read them, without connecting: an SQLite
    /// path that is not a URL and has no parameters; for the server engines, a connection
    /// string that translates to a driver URL with the TLS files added. `lanyard server
    /// validate` runs this so it refuses what `run` would.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::InvalidInput`](crate::DatastoreError::InvalidInput) naming the setting
    /// and the rule; never containing the password.
    pub fn check(&self) -> Result<(), crate::DatastoreError> {
        match self.engine {
            Engine::Sqlite => super::connect::sqlite_path(self).map(drop),
            Engine::Postgres | Engine::Mysql => super::connect::server_url(self).map(drop),
        }
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("engine", &self.engine)
            .field(
                "connection_string",
                &crate::connstr::redact(&self.connection_string),
            )
            .field("root_ca_path", &self.root_ca_path)
            .field("client_cert_path", &self.client_cert_path)
            .field("client_key_path", &self.client_key_path)
            .field("max_open_conns", &self.max_open_conns)
            .field("disable_migration", &self.disable_migration)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}
