//! A damaged SQLite file is refused at once with SQLite's own reason, not after the pool's
//! 30 s acquire timeout with only "pool timed out" (found by truncating a server's database).

use lanyard_datastore::{Datastore, NewEntry, SqlDatastore};
use lanyard_spiffe::{Selector, SpiffeId};

#[tokio::test]
async fn a_truncated_database_is_refused_with_sqlites_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("datastore.sqlite3");
    {
        let store = SqlDatastore::open_sqlite(&path).await.unwrap();
        // Enough rows that the file spans several pages, so a cut leaves a broken b-tree.
        let entries: Vec<NewEntry> = (0..500)
            .map(|i| {
                NewEntry::new(
                    SpiffeId::parse(&format!("spiffe://example.org/w/{i}")).unwrap(),
                    SpiffeId::parse("spiffe://example.org/node").unwrap(),
                    vec![Selector::new("unix", &format!("uid:{i}")).unwrap()],
                )
            })
            .collect();
        for e in entries {
            store.create_entry(e).await.unwrap();
        }
        store.close().await;
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("datastore.sqlite3{suffix}")));
    }
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(4096).unwrap();

    let err = SqlDatastore::open_sqlite(&path)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("malformed"), "{err}");
    assert!(!err.contains("timed out"), "{err}");
}
