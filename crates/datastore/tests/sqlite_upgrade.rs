//! A SQLite database written by an earlier Lanyard (schema 1 only) upgrades on open and keeps
//! its data.

#![expect(
    clippy::unwrap_used,
    reason = "integration test helpers assert by panicking"
)]

use std::path::Path;

use lanyard_datastore::{
    DatabaseConfig, Datastore, DatastoreError, Engine, EntryFilter, SelectorMatch, SqlDatastore,
};
use lanyard_spiffe::{Selector, SpiffeId};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

/// Creates `path` with only migration 1 applied and one entry and agent written the way schema
/// 1 stored them (flags as SQLite booleans).
async fn schema_one_database(path: &Path) {
    let only_first = tempfile::tempdir().unwrap();
    let first = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite/0001_initial.sql");
    std::fs::copy(&first, only_first.path().join("0001_initial.sql")).unwrap();
    let migrator = Migrator::new(only_first.path()).await.unwrap();

    let pool = SqlitePoolOptions::new()
        .connect_with(
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
    migrator.run(&pool).await.unwrap();
    for statement in [
        "INSERT INTO registered_entries (id, spiffe_id, parent_id, selector_key, x509_svid_ttl, \
         jwt_svid_ttl, admin, downstream, expires_at, store_svid, hint, revision_number, \
         created_at) VALUES ('old-entry', 'spiffe://example.org/web', \
         'spiffe://example.org/agent', 'k', 60, 0, TRUE, FALSE, 0, TRUE, 'h', 3, 100)",
        "INSERT INTO entry_selectors (entry_id, type, value) VALUES ('old-entry', 'unix', 'uid:1')",
        "INSERT INTO attested_agents (spiffe_id, attestation_type, serial, expires_at, new_serial, \
         new_expires_at, banned, can_reattest, created_at) VALUES \
         ('spiffe://example.org/agent', 'join_token', '1', 10, NULL, 0, FALSE, TRUE, 100)",
        "INSERT INTO ca_journal (id, data, updated_at) VALUES (1, X'6a6f75726e616c', 100)",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

#[tokio::test]
async fn a_schema_one_database_upgrades_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite3");
    schema_one_database(&path).await;

    let store = SqlDatastore::open_sqlite(&path).await.unwrap();
    let entries = store.all_entries().await.unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e.id.as_str(), "old-entry");
    assert!(e.admin && e.store_svid && !e.downstream);
    assert_eq!(
        (e.x509_svid_ttl, e.revision_number, e.hint.as_str()),
        (60, 3, "h")
    );
    assert_eq!(e.selectors, [Selector::parse("unix:uid:1").unwrap()]);
    let f = EntryFilter {
        downstream: Some(false),
        selectors: Some((e.selectors.clone(), SelectorMatch::Superset)),
        ..EntryFilter::default()
    };
    assert_eq!(store.count_entries(&f).await.unwrap(), 1);

    let agent = store
        .get_agent(&SpiffeId::parse("spiffe://example.org/agent").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(agent.can_reattest && !agent.banned);
    // The new tables work on the upgraded file.
    assert_eq!(store.latest_change().await.unwrap(), 0);
    store.delete_entry(&e.id).await.unwrap();
    assert_eq!(store.latest_change().await.unwrap(), 1);
    // The single CA journal of schema 1 belongs to the one server that used the file.
    assert_eq!(
        store.load_ca_journal("the-server").await.unwrap().unwrap(),
        b"journal"
    );
}

#[tokio::test]
async fn with_migrations_disabled_a_schema_one_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite3");
    schema_one_database(&path).await;

    let config = DatabaseConfig {
        disable_migration: true,
        ..DatabaseConfig::new(Engine::Sqlite, path.to_str().unwrap())
    };
    let err = SqlDatastore::connect(&config).await.unwrap_err();
    assert!(
        matches!(
            err,
            DatastoreError::SchemaBehind {
                applied: 1,
                required: 4
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("run the migration"), "{err}");
}

#[tokio::test]
async fn servers_opening_a_new_file_together_both_end_up_with_the_full_schema() {
    // Servers sharing a database may start at the same moment; one of them losing the race to
    // apply a migration must not stop it from starting.
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("shared-{round}.sqlite3"));
        let (a, b, c) = tokio::join!(
            SqlDatastore::open_sqlite(&path),
            SqlDatastore::open_sqlite(&path),
            SqlDatastore::open_sqlite(&path),
        );
        for store in [a, b, c] {
            let store = store.unwrap();
            assert_eq!(store.latest_change().await.unwrap(), 0);
            store.close().await;
        }
    }
}
