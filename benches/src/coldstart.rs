//! S5 (server cold start) and S6 (server memory per entry), and S7 on the side: real
//! `lanyard server run` processes on data directories filled through the datastore crate.
//!
//! First a server starts on an empty data directory: its resident memory is the baseline S6
//! subtracts, and S7 writes through its admin API. Then one data directory grows to each size
//! of the plan in turn; before each start, SQLite alone reads the entry and selector tables
//! (S5's floor), then the server starts and is timed until its admin socket's health service
//! answers `SERVING`, which it does once every entry and agent is indexed in memory.

use std::path::Path;
use std::time::{Duration, Instant};

use lanyard_datastore::{Datastore, SqlDatastore};
use lanyard_server::bench_support::AuthorizedLookup;
use lanyard_spiffe::TrustDomain;

use crate::populate::DataDir;
use crate::procs::TD;
use crate::report::Row;
use crate::select::{Group, Selection};
use crate::serverproc::{Memory, ServerProc};
use crate::{Plan, storefloor, writes};

/// The longest a start may take (a debug build with a million entries is slow).
const START_TIMEOUT: Duration = Duration::from_secs(900);
/// Pause between ready and reading memory, for the tasks started at ready to settle.
const SETTLE: Duration = Duration::from_millis(500);
/// Bytes in a megabyte as the performance reference counts them.
const MB: f64 = 1e6;

/// The S5, S6 and S7 rows the selection asks for.
pub(crate) async fn run(
    lanyard: &Path,
    plan: &Plan,
    selection: &Selection,
) -> anyhow::Result<Vec<Row>> {
    let scratch = tempfile::Builder::new()
        .prefix("lanyard-bench-start-")
        .tempdir_in("/tmp")?;
    let mut rows = Vec::new();

    let empty = DataDir::create(&scratch.path().join("empty"))?;
    eprintln!("S5 starting a server on an empty data directory");
    let server = start(lanyard, &empty, scratch.path()).await?;
    let baseline = Baseline {
        start: server.ready_after,
        memory: server.memory()?,
    };
    if selection.has(Group::Writes) {
        rows.extend(writes::run(&server.admin, &empty.path, plan).await?);
    }
    server.stop().await?;
    if !selection.has(Group::Start) {
        return Ok(rows);
    }

    let mut dir = DataDir::create(&scratch.path().join("populated"))?;
    for &n in &plan.start_entries {
        let fill_rate = dir.grow_to(n).await?;
        let (scan, entries, selectors) = storefloor::sqlite_scan(&dir.database()).await?;
        anyhow::ensure!(
            entries == n as u64 && selectors == 2 * n as u64,
            "the datastore holds {entries} entries and {selectors} selectors, expected {n} and {}",
            2 * n
        );
        let parts = Breakdown::measure(&dir).await?;
        eprintln!("S5 starting a server with {n} entries");
        let server = start(lanyard, &dir, scratch.path()).await?;
        let memory = server.memory()?;
        let ready = server.ready_after;
        server.stop().await?;
        eprintln!(
            "S5 {n} entries: ready after {:.2} s, RSS {:.0} MB (peak {:.0} MB); SQLite scan \
             {scan:.3} s; in this process: snapshot {:.2} s, index {:.2} s; populated at \
             {fill_rate:.0} entries/s",
            ready.as_secs_f64(),
            memory.rss as f64 / MB,
            memory.peak as f64 / MB,
            parts.snapshot,
            parts.index,
        );
        rows.push(start_row(n, ready, memory, scan, &parts, &baseline));
        rows.push(memory_row(&dir, memory, &baseline));
    }
    Ok(rows)
}

/// Where a start's time goes, measured in this process with the server's own code: the
/// datastore's `entries_snapshot` (what the server reads at start) and building the server's
/// entry index from it.
struct Breakdown {
    snapshot: f64,
    index: f64,
}

impl Breakdown {
    async fn measure(dir: &DataDir) -> anyhow::Result<Self> {
        let store = SqlDatastore::open(&dir.database()).await?;
        let started = Instant::now();
        let (entries, _) = store.entries_snapshot().await?;
        let snapshot = started.elapsed().as_secs_f64();
        store.close().await;
        anyhow::ensure!(
            entries.len() == dir.entries,
            "the snapshot has {} entries, expected {}",
            entries.len(),
            dir.entries
        );
        let td = TrustDomain::new(TD)?;
        let started = Instant::now();
        let index = AuthorizedLookup::new(&td, entries, Vec::new())?;
        let built = started.elapsed().as_secs_f64();
        drop(index);
        Ok(Self {
            snapshot,
            index: built,
        })
    }
}

/// The server on the empty data directory.
struct Baseline {
    start: Duration,
    memory: Memory,
}

/// Starts a server on `dir` (socket and log in a directory of their own), lets it settle.
async fn start(lanyard: &Path, dir: &DataDir, scratch: &Path) -> anyhow::Result<ServerProc> {
    let run = scratch.join(format!("run-{}", dir.entries));
    std::fs::create_dir_all(&run)?;
    let server = ServerProc::start(lanyard, &dir.path, &run, START_TIMEOUT).await?;
    tokio::time::sleep(SETTLE).await;
    Ok(server)
}

fn start_row(
    n: usize,
    ready: Duration,
    memory: Memory,
    scan: f64,
    parts: &Breakdown,
    base: &Baseline,
) -> Row {
    let secs = ready.as_secs_f64();
    Row {
        id: "S5",
        name: format!(
            "server cold start, {n} entries x 2 selectors, SQLite, spawn to health SERVING \
             (RSS {:.0} MB, peak {:.0} MB; empty datastore {:.2} s; same steps in the \
             harness: entries_snapshot {:.2} s, index build {:.2} s)",
            memory.rss as f64 / MB,
            memory.peak as f64 / MB,
            base.start.as_secs_f64(),
            parts.snapshot,
            parts.index,
        ),
        measured: secs,
        unit: "s",
        floor: scan,
        floor_what: "SQLite scan of the entry and selector tables",
        ratio: secs / scan,
        target: "1 M entries ready < 5 s, RSS < 500 MB".into(),
        spire: "events cache build 27 min with 500 k events (#5771); no normal-case figure",
    }
}

fn memory_row(dir: &DataDir, memory: Memory, base: &Baseline) -> Row {
    let per_100k = |bytes: f64| bytes / dir.entries as f64 * 100_000.0 / MB;
    let grown = memory.rss.saturating_sub(base.memory.rss) as f64;
    let measured = per_100k(grown);
    let floor = per_100k(dir.payload as f64);
    Row {
        id: "S6",
        name: format!(
            "server memory per 100k entries, {} entries (RSS {:.0} MB - {:.0} MB empty; {:.0} \
             B/entry)",
            dir.entries,
            memory.rss as f64 / MB,
            base.memory.rss as f64 / MB,
            grown / dir.entries as f64
        ),
        measured,
        unit: "MB/100k entries",
        floor,
        floor_what: "the entries' field bytes, no pointers or index",
        ratio: measured / floor,
        target: "<= 30 MB/100k entries (plain Rust layout ~42)".into(),
        spire: "not published",
    }
}
