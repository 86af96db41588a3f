//! Fixtures shared by the SQLite tests.

use lanyard_spiffe::{Selector, SpiffeId};
use tempfile::TempDir;

use super::SqliteDatastore;
use crate::model::NewEntry;

pub(super) fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

pub(super) fn sels(list: &[&str]) -> Vec<Selector> {
    list.iter().map(|s| Selector::parse(s).unwrap()).collect()
}

/// A workload entry `spiffe://example.org/<name>` under the agent `.../agent/<parent>`.
pub(super) fn entry(name: &str, parent: &str, selectors: &[&str]) -> NewEntry {
    NewEntry::new(
        id(&format!("spiffe://example.org/{name}")),
        id(&format!("spiffe://example.org/agent/{parent}")),
        sels(selectors),
    )
}

pub(super) async fn memory() -> SqliteDatastore {
    SqliteDatastore::in_memory().await.unwrap()
}

/// A database file in a fresh temporary directory (kept alive by the returned guard).
pub(super) async fn file() -> (TempDir, SqliteDatastore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteDatastore::open(&dir.path().join("datastore.sqlite3"))
        .await
        .unwrap();
    (dir, store)
}
