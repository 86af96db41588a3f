//! Storage floors measured in the same run: how fast this disk makes a small write durable,
//! and how fast SQLite alone reads the two entry tables.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

/// Durable 4 KiB appends per second (`write` + `fdatasync`, as a WAL commit does) to a file
/// in `dir`, over about `budget`.
pub(crate) fn fsync_per_sec(dir: &Path, budget: Duration) -> anyhow::Result<f64> {
    let file = tempfile::NamedTempFile::new_in(dir)?;
    let mut out = OpenOptions::new().append(true).open(file.path())?;
    let block = [0x5a_u8; 4096];
    let started = Instant::now();
    let mut n = 0u64;
    while n < 20 || started.elapsed() < budget {
        out.write_all(&block)?;
        out.sync_data()?;
        n += 1;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Seconds SQLite takes to read every row of the entry and selector tables of the database at
/// `path`, touching each row's strings (so neither count can be answered from a small index),
/// and how many rows each had. The better of two runs: the page cache is warm, as it is for
/// the server start that follows.
pub(crate) async fn sqlite_scan(path: &Path) -> anyhow::Result<(f64, u64, u64)> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await?;
    let mut best = f64::INFINITY;
    let mut counts = (0, 0);
    for _ in 0..2 {
        let started = Instant::now();
        let (entries, _): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), SUM(LENGTH(id) + LENGTH(spiffe_id) + LENGTH(parent_id) \
             + LENGTH(hint)) FROM registered_entries",
        )
        .fetch_one(&mut conn)
        .await?;
        let (selectors, _): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), SUM(LENGTH(entry_id) + LENGTH(type) + LENGTH(value)) \
             FROM entry_selectors",
        )
        .fetch_one(&mut conn)
        .await?;
        best = best.min(started.elapsed().as_secs_f64());
        counts = (u64::try_from(entries)?, u64::try_from(selectors)?);
    }
    Ok((best, counts.0, counts.1))
}
