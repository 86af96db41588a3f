//! [`SqliteDatastore`]: the [`Datastore`] on an SQLite file (or in memory, for tests).
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction, which takes SQLite's write lock before the
//! first read. Check-then-write sequences (duplicate entries, join tokens, agent serials) are
//! therefore serialized, and a second writer waits for the busy timeout instead of failing
//! half-way with a stale snapshot.

mod agents;
mod bundles;
mod canonical;
mod entries;
mod entry_list;
mod entry_rows;
mod journal;
mod tokens;

#[cfg(test)]
mod test_support;

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::datastore::Datastore;
use crate::error::DatastoreError;
use crate::id::EntryId;
use crate::model::{AttestedAgent, Entry, EntryFilter, NewEntry, StoredBundle, TokenUse};
use lanyard_ca::{JournalError, JournalStore};
use lanyard_spiffe::{SpiffeId, TrustDomain};

/// The schema migrations, embedded at compile time and applied by [`SqliteDatastore::open`].
static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a write waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections to a database file. SQLite allows one writer at a time; the rest serve reads.
const FILE_POOL_SIZE: u32 = 8;

/// A [`Datastore`] on SQLite.
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone, Debug)]
pub struct SqliteDatastore {
    pool: SqlitePool,
}

impl SqliteDatastore {
    /// Opens the database file at `path`, creating it if missing, and brings its schema up to
    /// date. The file is used in WAL mode with foreign keys enforced and `synchronous=FULL`, so a
    /// write that returned is on disk.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Open`] if the file cannot be opened or created;
    /// [`DatastoreError::Migration`] if the schema cannot be applied (for example a database
    /// written by a newer Lanyard).
    pub async fn open(path: &Path) -> Result<Self, DatastoreError> {
        // The database holds join tokens and the CA journal: owner-only, whatever the umask.
        create_owner_only(path);
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(FILE_POOL_SIZE)
            .connect_with(options)
            .await
            .map_err(|source| DatastoreError::Open {
                path: path.to_owned(),
                source,
            })?;
        let store = Self::migrated(pool).await?;
        restrict_to_owner(path)?;
        Ok(store)
    }

    /// A fresh, empty database in process memory, for tests and throwaway servers. Its data is
    /// gone when the last clone is dropped.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Migration`] or [`DatastoreError::Database`] if SQLite cannot set it up.
    pub async fn in_memory() -> Result<Self, DatastoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // Each connection to `:memory:` is its own database, so the pool holds exactly one
        // connection and never closes it for idleness or age.
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> Result<Self, DatastoreError> {
        MIGRATOR.run(&pool).await?;
        tracing::debug!(
            migrations = MIGRATOR.iter().count(),
            "datastore schema up to date"
        );
        Ok(SqliteDatastore { pool })
    }

    /// Closes every connection after in-flight operations finish. Operations started afterwards
    /// fail. Closing a file database lets SQLite checkpoint its write-ahead log.
    pub async fn close(&self) {
        // Folding the WAL into the main file before the last connection closes keeps the
        // database file complete on its own (backups that copy only it lose nothing).
        if let Ok(mut conn) = self.pool.acquire().await {
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut *conn)
                .await;
        }
        self.pool.close().await;
    }

    /// Deletes join tokens that expired before `before` (used or not) and returns how many went.
    /// A pruned token is [`TokenUse::Unknown`] from then on.
    ///
    /// # Errors
    ///
    /// Database failures only.
    pub async fn prune_join_tokens(&self, before: i64) -> Result<u64, DatastoreError> {
        tokens::prune(&self.pool, before).await
    }

    /// Starts a write transaction holding SQLite's write lock.
    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>, DatastoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Starts a read transaction: every query in it sees the same snapshot.
    async fn read_tx(&self) -> Result<Transaction<'static, Sqlite>, DatastoreError> {
        Ok(self.pool.begin().await?)
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

#[async_trait]
impl Datastore for SqliteDatastore {
    async fn close(&self) {
        SqliteDatastore::close(self).await;
    }

    async fn create_entry(&self, e: NewEntry) -> Result<Entry, DatastoreError> {
        let mut tx = self.write_tx().await?;
        let entry = entries::create(&mut tx, e, unix_now()).await?;
        tx.commit().await?;
        Ok(entry)
    }

    async fn get_entry(&self, id: &EntryId) -> Result<Option<Entry>, DatastoreError> {
        let mut tx = self.read_tx().await?;
        let entry = entries::get(&mut tx, id).await?;
        tx.commit().await?;
        Ok(entry)
    }

    async fn list_entries(
        &self,
        filter: &EntryFilter,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<(Vec<Entry>, Option<String>), DatastoreError> {
        let after = page_token.map(entry_list::decode_page_token).transpose()?;
        let mut tx = self.read_tx().await?;
        let page = entry_list::list(&mut tx, filter, page_size, after.as_ref()).await?;
        tx.commit().await?;
        Ok(page)
    }

    async fn delete_entry(&self, id: &EntryId) -> Result<Option<Entry>, DatastoreError> {
        let mut tx = self.write_tx().await?;
        let entry = entries::delete(&mut tx, id).await?;
        tx.commit().await?;
        Ok(entry)
    }

    async fn all_entries(&self) -> Result<Vec<Entry>, DatastoreError> {
        let mut tx = self.read_tx().await?;
        let all = entries::all(&mut tx).await?;
        tx.commit().await?;
        Ok(all)
    }

    async fn create_join_token(&self, token: &str, expires_at: i64) -> Result<(), DatastoreError> {
        tokens::create(&self.pool, token, expires_at).await
    }

    async fn consume_join_token(&self, token: &str, now: i64) -> Result<TokenUse, DatastoreError> {
        let mut tx = self.write_tx().await?;
        let outcome = tokens::consume(&mut tx, token, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn create_agent(&self, a: &AttestedAgent) -> Result<(), DatastoreError> {
        let mut tx = self.write_tx().await?;
        agents::create(&mut tx, a, unix_now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_agent(&self, id: &SpiffeId) -> Result<Option<AttestedAgent>, DatastoreError> {
        let mut tx = self.read_tx().await?;
        let agent = agents::get(&mut tx, id).await?;
        tx.commit().await?;
        Ok(agent)
    }

    async fn set_agent_new_serial(
        &self,
        id: &SpiffeId,
        serial: &str,
        expires_at: i64,
    ) -> Result<(), DatastoreError> {
        agents::set_new_serial(&self.pool, id, serial, expires_at).await
    }

    async fn promote_agent_serial(
        &self,
        id: &SpiffeId,
        serial: &str,
    ) -> Result<(), DatastoreError> {
        let mut tx = self.write_tx().await?;
        agents::promote_serial(&mut tx, id, serial).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_agents(&self) -> Result<Vec<AttestedAgent>, DatastoreError> {
        let mut tx = self.read_tx().await?;
        let all = agents::list(&mut tx).await?;
        tx.commit().await?;
        Ok(all)
    }

    async fn get_bundle(&self, td: &TrustDomain) -> Result<Option<StoredBundle>, DatastoreError> {
        let mut tx = self.read_tx().await?;
        let bundle = bundles::get(&mut tx, td).await?;
        tx.commit().await?;
        Ok(bundle)
    }

    async fn set_bundle_authorities(
        &self,
        td: &TrustDomain,
        x509: Vec<Vec<u8>>,
    ) -> Result<StoredBundle, DatastoreError> {
        let mut tx = self.write_tx().await?;
        let bundle = bundles::set_authorities(&mut tx, td, x509, unix_now()).await?;
        tx.commit().await?;
        Ok(bundle)
    }

    async fn bump_bundle_sequence(
        &self,
        td: &TrustDomain,
    ) -> Result<Option<StoredBundle>, DatastoreError> {
        let mut tx = self.write_tx().await?;
        let bundle = bundles::bump_sequence(&mut tx, td, unix_now()).await?;
        tx.commit().await?;
        Ok(bundle)
    }
}

#[async_trait]
impl JournalStore for SqliteDatastore {
    async fn load_journal(&self) -> Result<Option<Vec<u8>>, JournalError> {
        journal::load(&self.pool)
            .await
            .map_err(JournalError::storage)
    }

    async fn save_journal(&self, blob: &[u8]) -> Result<(), JournalError> {
        let mut tx = self.write_tx().await.map_err(JournalError::storage)?;
        journal::save(&mut tx, blob, unix_now())
            .await
            .map_err(JournalError::storage)?;
        tx.commit().await.map_err(JournalError::storage)
    }
}

#[cfg(test)]
mod tests {
    use lanyard_ca::JournalStore;

    use super::test_support::{entry, id};
    use super::*;

    #[tokio::test]
    async fn database_files_are_owner_only_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        // A file left world-readable by an older version is tightened too.
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = SqliteDatastore::open(&path).await.unwrap();
        store.create_join_token("t", 1_000).await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", path.display());
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }

    #[tokio::test]
    async fn opens_the_file_in_wal_mode_with_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.sqlite3");
        let store = SqliteDatastore::open(&path).await.unwrap();
        assert!(path.exists(), "the file is created");

        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
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

        let store = SqliteDatastore::open(&path).await.unwrap();
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
        store.save_journal(b"journal").await.unwrap();
        store.close().await;
        drop(store);

        // Opening again also re-runs the (already applied) migrations.
        let store = SqliteDatastore::open(&path).await.unwrap();
        assert_eq!(store.all_entries().await.unwrap(), vec![created]);
        assert_eq!(store.get_agent(&agent.id).await.unwrap(), Some(agent));
        assert_eq!(store.get_bundle(&td).await.unwrap(), Some(bundle));
        assert_eq!(store.load_journal().await.unwrap().unwrap(), b"journal");
        assert_eq!(
            store.consume_join_token("t", 10).await.unwrap(),
            TokenUse::Accepted
        );
    }

    #[tokio::test]
    async fn reports_the_path_when_the_file_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("db.sqlite3");
        let err = SqliteDatastore::open(&path).await.unwrap_err();
        assert!(matches!(err, DatastoreError::Open { .. }), "{err}");
        assert!(err.to_string().contains("missing-dir"), "{err}");
    }

    #[tokio::test]
    async fn in_memory_clones_share_one_database() {
        let store = SqliteDatastore::in_memory().await.unwrap();
        let clone = store.clone();
        clone.create_join_token("t", 10).await.unwrap();
        assert_eq!(
            store.consume_join_token("t", 1).await.unwrap(),
            TokenUse::Accepted
        );
    }
}
