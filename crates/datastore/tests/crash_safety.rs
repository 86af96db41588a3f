//! A SQLite datastore killed (SIGKILL) while writing batches of entries comes back with whole
//! batches only: every entry it holds has all its selectors, DNS names and federated trust
//! domains, and nothing the writer reported as committed is lost.
//!
//! The writer is this test binary run again (the ignored test below), so the kill hits a real
//! process in the middle of its work, not a task inside the test's own runtime.

#![expect(
    clippy::unwrap_used,
    reason = "integration test helpers assert by panicking"
)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use lanyard_datastore::{Datastore, NewEntry, SqlDatastore};
use lanyard_spiffe::{Selector, SpiffeId, TrustDomain};

/// Set in the writer's environment: the database file to write to.
const WRITER_DB: &str = "LANYARD_CRASH_WRITER_DB";

const BATCH: usize = 50;

/// Batches the parent waits to see committed before it kills the writer.
const BATCHES_BEFORE_KILL: usize = 4;

fn new_entry(batch: usize, i: usize) -> NewEntry {
    let id = |s: String| SpiffeId::parse(&s).unwrap();
    let mut e = NewEntry::new(
        id(format!("spiffe://example.org/w/{batch}/{i}")),
        id("spiffe://example.org/agent/a".to_owned()),
        vec![
            Selector::new("unix", &format!("uid:{i}")).unwrap(),
            Selector::new("unix", &format!("gid:{batch}")).unwrap(),
            Selector::new("k8s", "ns:crash").unwrap(),
        ],
    );
    e.dns_names = vec![format!("w{i}.example.org"), format!("b{batch}.example.org")];
    e.federates_with = vec![
        TrustDomain::new("a.org").unwrap(),
        TrustDomain::new("b.org").unwrap(),
    ];
    e
}

/// The writer: creates batches until killed, printing the total after each commit.
#[tokio::test]
#[ignore = "the writer process of a_killed_writer_leaves_only_whole_batches"]
async fn crash_writer() {
    let path =
        std::env::var(WRITER_DB).expect("run only by a_killed_writer_leaves_only_whole_batches");
    let store = SqlDatastore::open_sqlite(path.as_ref()).await.unwrap();
    let mut committed = 0;
    for batch in 0.. {
        let outcomes = store
            .create_entries((0..BATCH).map(|i| new_entry(batch, i)).collect())
            .await
            .unwrap();
        assert!(outcomes.iter().all(Result::is_ok));
        committed += outcomes.len();
        let mut out = std::io::stdout().lock();
        writeln!(out, "COMMITTED {committed}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn a_killed_writer_leaves_only_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.sqlite3");
    let mut writer = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WRITER_DB, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Read reports until enough batches are in, then kill at once: by then the writer is inside
    // its next transaction.
    let mut lines = BufReader::new(writer.stdout.take().unwrap()).lines();
    let mut reported = 0;
    let mut batches_seen = 0;
    while batches_seen < BATCHES_BEFORE_KILL {
        let line = lines.next().expect("the writer ended early").unwrap();
        if let Some(n) = line.strip_prefix("COMMITTED ") {
            reported = n.parse::<usize>().unwrap();
            batches_seen += 1;
        }
    }
    writer.kill().unwrap(); // SIGKILL
    // Reports already in the pipe still count.
    for line in lines {
        if let Some(n) = line.unwrap().strip_prefix("COMMITTED ") {
            reported = n.parse().unwrap();
        }
    }
    writer.wait().unwrap();

    let store = SqlDatastore::open_sqlite(&path).await.unwrap();
    let entries = store.all_entries().await.unwrap();
    // A batch committed after the last report (killed before it could print) is the only
    // allowed surplus; a partial batch never is.
    assert!(
        entries.len() == reported || entries.len() == reported + BATCH,
        "{} entries stored, {reported} reported committed",
        entries.len()
    );
    assert_eq!(entries.len() % BATCH, 0, "only whole batches");
    for e in &entries {
        assert_eq!(
            (e.selectors.len(), e.dns_names.len(), e.federates_with.len()),
            (3, 2, 2),
            "entry {} is incomplete",
            e.spiffe_id
        );
    }
    // No child rows without their entry either.
    store.close().await;
    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    for (table, per_entry) in [
        ("entry_selectors", 3),
        ("entry_dns_names", 2),
        ("entry_federates_with", 2),
        ("changes", 1),
    ] {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&raw)
                .await
                .unwrap();
        assert_eq!(
            n,
            i64::try_from(entries.len() * per_entry).unwrap(),
            "{table}"
        );
    }
    raw.close().await;
}
