//! [`SqlDatastore`]: the [`Datastore`](crate::Datastore) on SQLite, PostgreSQL or MySQL, with one
//! body of SQL for all three through sqlx's `Any` driver.
//!
//! Writes are serialized: SQLite's `BEGIN IMMEDIATE` takes the database's write lock before the
//! first read, and on the server engines every write transaction first locks the one row of
//! `write_lock`. Check-then-write sequences (duplicate entries, join tokens, agent serials) are
//! therefore race-free, and the change feed's sequence numbers grow in commit order. Reads run
//! in transactions that see one snapshot.

mod agent_list;
mod agents;
mod bundle_rows;
mod bundles;
mod canonical;
mod changes;
mod config;
mod connect;
mod dialect;
mod entries;
mod entry_filter;
mod entry_list;
mod entry_rows;
mod entry_snapshot;
mod entry_update;
mod exec;
mod federation;
mod journal;
mod migrate;
mod owner;
mod page;
mod redact;
mod store;
mod tokens;

#[cfg(test)]
mod test_support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::AnyPool;

pub use config::{DEFAULT_CONNECT_TIMEOUT, DatabaseConfig, Engine};
use dialect::Dialect;
use exec::{Tx, TxKind};

use crate::error::DatastoreError;

/// A [`Datastore`](crate::Datastore) on an SQL database.
///
/// Cloning is cheap and shares the connection pool and the statement counter.
#[derive(Clone, Debug)]
pub struct SqlDatastore {
    pool: AnyPool,
    dialect: Dialect,
    queries: Arc<AtomicU64>,
}

/// The SQLite datastore under its earlier name.
pub type SqliteDatastore = SqlDatastore;

impl SqlDatastore {
    /// Opens the SQLite file at `path`, creating it (owner-only, mode 0600) if missing, and
    /// brings its schema up to date. The file is used in WAL mode with foreign keys enforced
    /// and `synchronous=FULL`, so a write that returned is on disk.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Open`] if the file cannot be opened or created;
    /// [`DatastoreError::Permissions`] if it cannot be made owner-only;
    /// [`DatastoreError::Migration`] if the schema cannot be applied (for example a database
    /// written by a newer Lanyard).
    pub async fn open_sqlite(path: &Path) -> Result<Self, DatastoreError> {
        // The database holds join tokens and the CA journal: owner-only, whatever the umask.
        create_owner_only(path);
        let pool = connect::sqlite_file(path).await?;
        let store = Self::ready(pool, Dialect::Sqlite, false).await?;
        restrict_to_owner(path)?;
        Ok(store)
    }

    /// Same as [`SqlDatastore::open_sqlite`].
    ///
    /// # Errors
    ///
    /// As for [`SqlDatastore::open_sqlite`].
    pub async fn open(path: &Path) -> Result<Self, DatastoreError> {
        Self::open_sqlite(path).await
    }

    /// A fresh, empty SQLite database in process memory, for tests and throwaway servers. Its
    /// data is gone when the last clone is dropped.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Migration`] or [`DatastoreError::Database`] if SQLite cannot set it up.
    pub async fn in_memory() -> Result<Self, DatastoreError> {
        let pool = connect::sqlite_memory().await?;
        Self::ready(pool, Dialect::Sqlite, false).await
    }

    /// Connects to the database `config` names. For [`Engine::Sqlite`] the connection string
    /// is the file's path (see [`SqlDatastore::open_sqlite`]); for the server engines it is a
    /// URL. Migrations run unless `config.disable_migration`.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::InvalidInput`] for a connection string of the wrong form;
    /// [`DatastoreError::Connect`] if the server cannot be reached or refuses the login (the
    /// message never contains the password); [`DatastoreError::Migration`] if the schema
    /// cannot be applied; [`DatastoreError::SchemaBehind`] if migrations are disabled and the
    /// schema is older than this Lanyard needs.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, DatastoreError> {
        let dialect = match config.engine {
            Engine::Sqlite => {
                let path = connect::sqlite_path(config)?;
                create_owner_only(path);
                let pool = connect::sqlite_file(path).await?;
                let store = Self::ready(pool, Dialect::Sqlite, config.disable_migration).await?;
                restrict_to_owner(path)?;
                return Ok(store);
            }
            Engine::Postgres => Dialect::Postgres,
            Engine::Mysql => Dialect::Mysql,
        };
        let url = connect::server_url(config)?;
        let pool = connect::server(config, &url).await?;
        Self::ready(pool, dialect, config.disable_migration).await
    }

    async fn ready(
        pool: AnyPool,
        dialect: Dialect,
        disable_migration: bool,
    ) -> Result<Self, DatastoreError> {
        if disable_migration {
            migrate::check(&pool, dialect).await?;
        } else {
            migrate::run(&pool, dialect).await?;
        }
        Ok(SqlDatastore {
            pool,
            dialect,
            queries: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The engine behind this datastore.
    pub fn engine(&self) -> Engine {
        match self.dialect {
            Dialect::Sqlite => Engine::Sqlite,
            Dialect::Postgres => Engine::Postgres,
            Dialect::Mysql => Engine::Mysql,
        }
    }

    /// How many SQL statements this datastore (and its clones) ran since it was opened,
    /// transaction control included. Lets tests prove that a cached path touches no database.
    pub fn query_count(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Closes every connection after in-flight operations finish. Operations started afterwards
    /// fail. Closing a SQLite file first folds its write-ahead log into the database file.
    pub async fn close(&self) {
        // A database file that is complete on its own survives backups that copy only it.
        if self.dialect == Dialect::Sqlite
            && let Ok(mut conn) = self.pool.acquire().await
        {
            self.queries.fetch_add(1, Ordering::Relaxed);
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut *conn)
                .await;
        }
        self.pool.close().await;
    }

    /// Deletes join tokens that expired before `before` (used or not) and returns how many went.
    /// A pruned token is [`TokenUse::Unknown`](crate::TokenUse::Unknown) from then on.
    ///
    /// # Errors
    ///
    /// Database failures only.
    pub async fn prune_join_tokens(&self, before: i64) -> Result<u64, DatastoreError> {
        let mut tx = self.write_tx().await?;
        let pruned = tokens::prune(&mut tx, before).await?;
        tx.commit().await?;
        Ok(pruned)
    }

    /// Starts a write transaction, serialized with every other writer.
    async fn write_tx(&self) -> Result<Tx, DatastoreError> {
        Tx::begin(
            &self.pool,
            self.dialect,
            Arc::clone(&self.queries),
            TxKind::Write,
        )
        .await
    }

    /// Starts a read transaction: every query in it sees the same snapshot.
    async fn read_tx(&self) -> Result<Tx, DatastoreError> {
        Tx::begin(
            &self.pool,
            self.dialect,
            Arc::clone(&self.queries),
            TxKind::Read,
        )
        .await
    }
}

/// Creates the database file at `path` with mode 0600 if it does not exist yet, so it is never
/// readable by others even for a moment. Best effort: if this fails, opening the database
/// fails too and reports why.
fn create_owner_only(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
}

/// Sets mode 0600 on the database file and its `-wal` and `-shm` companions (those that
/// exist), independently of the umask they were created under.
fn restrict_to_owner(path: &Path) -> Result<(), DatastoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = vec![path.to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(name.into());
    }
    for file in files {
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(DatastoreError::Permissions { path: file, source }),
        }
    }
    Ok(())
}

/// The current time in unix seconds, for bookkeeping columns (`created_at`, `updated_at`) that no
/// expiry decision reads.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use lanyard_spiffe::TrustDomain;

    use super::test_support::{entry, id};
    use super::*;
    use crate::{AttestedAgent, Datastore, TokenUse};

    #[tokio::test]
    async fn database_files_are_owner_only_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        // A file left world-readable by an older version is tightened too.
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = SqlDatastore::open_sqlite(&path).await.unwrap();
        store.create_join_token("t", 1_000).await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", path.display());
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }

    #[tokio::test]
    async fn opens_the_file_in_wal_mode_with_foreign_keys_and_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.sqlite3");
        let store = SqlDatastore::open_sqlite(&path).await.unwrap();
        assert!(path.exists(), "the file is created");

        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        for (pragma, expected) in [
            ("PRAGMA foreign_keys", 1),
            ("PRAGMA synchronous", 2),
            ("PRAGMA busy_timeout", 10_000),
        ] {
            let value: i64 = sqlx::query_scalar(pragma)
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert_eq!(value, expected, "{pragma}");
        }
    }

    #[tokio::test]
    async fn opens_paths_with_characters_that_urls_decode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a %41?b#c.sqlite3");
        let store = SqlDatastore::open_sqlite(&path).await.unwrap();
        store.create_join_token("t", 1_000).await.unwrap();
        store.close().await;
        assert!(path.exists(), "{}", path.display());
    }

    #[tokio::test]
    async fn data_survives_closing_and_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.sqlite3");
        let td = TrustDomain::new("example.org").unwrap();
        let agent = AttestedAgent {
            id: id("spiffe://example.org/spire/agent/x"),
            attestation_type: "join_token".into(),
            serial: "7".into(),
            expires_at: 100,
            new_serial: Some("8".into()),
            new_expires_at: 200,
            banned: false,
            can_reattest: true,
            selectors: Vec::new(),
        };

        let store = SqlDatastore::open_sqlite(&path).await.unwrap();
        let created = store
            .create_entry(entry("web", "x", &["unix:uid:1"]))
            .await
            .unwrap();
        store.create_join_token("t", 1_000).await.unwrap();
        store.create_agent(&agent).await.unwrap();
        let bundle = store
            .set_bundle_authorities(&td, vec![vec![9]])
            .await
            .unwrap();
        store.save_ca_journal("server-a", b"journal").await.unwrap();
        store.close().await;
        drop(store);

        // Opening again also re-runs the (already applied) migrations.
        let store = SqlDatastore::open_sqlite(&path).await.unwrap();
        assert_eq!(store.all_entries().await.unwrap(), vec![created]);
        assert_eq!(store.get_agent(&agent.id).await.unwrap(), Some(agent));
        assert_eq!(store.get_bundle(&td).await.unwrap(), Some(bundle));
        assert_eq!(
            store.load_ca_journal("server-a").await.unwrap().unwrap(),
            b"journal"
        );
        assert_eq!(
            store.consume_join_token("t", 10).await.unwrap(),
            TokenUse::Accepted
        );
    }

    #[tokio::test]
    async fn reports_the_path_when_the_file_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("db.sqlite3");
        let err = SqlDatastore::open_sqlite(&path).await.unwrap_err();
        assert!(matches!(err, DatastoreError::Open { .. }), "{err}");
        assert!(err.to_string().contains("missing-dir"), "{err}");
    }

    #[tokio::test]
    async fn in_memory_clones_share_one_database() {
        let store = SqlDatastore::in_memory().await.unwrap();
        let clone = store.clone();
        clone.create_join_token("t", 10).await.unwrap();
        assert_eq!(
            store.consume_join_token("t", 1).await.unwrap(),
            TokenUse::Accepted
        );
    }

    #[tokio::test]
    async fn connection_failures_and_debug_output_never_show_the_password() {
        for (engine, url) in [
            (
                Engine::Postgres,
                "postgres://spire:Secr3tPw@127.0.0.1:1/spire?sslmode=disable",
            ),
            (Engine::Mysql, "spire:Secr3tPw@tcp(127.0.0.1:1)/spire"),
            (
                Engine::Postgres,
                "host=127.0.0.1 port=1 user=spire password=Secr3tPw sslmode=x",
            ),
        ] {
            let config = DatabaseConfig {
                connect_timeout: std::time::Duration::from_millis(300),
                ..DatabaseConfig::new(engine, url)
            };
            assert!(!format!("{config:?}").contains("Secr3tPw"), "{config:?}");
            let err = SqlDatastore::connect(&config).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    DatastoreError::Connect { .. } | DatastoreError::InvalidInput(_)
                ),
                "{err}"
            );
            assert!(!err.to_string().contains("Secr3tPw"), "{err}");
            assert!(!format!("{err:?}").contains("Secr3tPw"), "{err:?}");
            if let DatastoreError::Connect { reason, .. } = &err {
                assert!(
                    !reason.contains("pool timed out"),
                    "the cause is kept: {reason}"
                );
            }
        }
    }

    #[tokio::test]
    async fn counts_every_statement_and_nothing_else() {
        let store = SqlDatastore::in_memory().await.unwrap();
        let before = store.query_count();
        store.get_entry(&crate::EntryId::new()).await.unwrap();
        let one_read = store.query_count() - before;
        // BEGIN, the entry query, COMMIT at least.
        assert!(one_read >= 3, "{one_read}");
        let idle = store.query_count();
        assert_eq!(
            store.query_count(),
            idle,
            "reading the counter runs nothing"
        );
        store.get_entry(&crate::EntryId::new()).await.unwrap();
        assert_eq!(store.query_count() - idle, one_read);
    }
}
