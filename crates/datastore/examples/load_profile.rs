//! Measures what a server start costs in the datastore: fills a SQLite file with benchmark-shaped
//! entries (`fill <file> <n>`), or times `entries_snapshot` on one and reports the process's
//! resident memory before, at the end of and after dropping the snapshot (`snapshot <file>`).
//!
//! The entries have the shape of the S5/S6 benchmark's: `/bench/workload/<i>` under one of
//! `n / 100` agents, with a `unix:uid` and a `k8s:ns` selector.

use std::path::Path;
use std::time::Instant;

use lanyard_datastore::{Datastore, NewEntry, SqlDatastore};
use lanyard_spiffe::{Selector, SpiffeId, TrustDomain};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1..) {
        Some([cmd, file, n]) if cmd == "fill" => fill(Path::new(file), n.parse()?).await,
        Some([cmd, file]) if cmd == "snapshot" => snapshot(Path::new(file)).await,
        _ => Err("usage: load_profile fill <file> <entries> | snapshot <file>".into()),
    }
}

async fn fill(file: &Path, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let store = SqlDatastore::open(file).await?;
    let td = TrustDomain::new("example.org")?;
    for start in (0..n).step_by(10_000) {
        let batch = (start..(start + 10_000).min(n))
            .map(|i| {
                Ok(NewEntry::new(
                    SpiffeId::from_path(&td, &format!("/bench/workload/{i}"))?,
                    SpiffeId::from_path(&td, &format!("/spire/agent/bench/{}", i / 100))?,
                    vec![
                        Selector::new("unix", &format!("uid:{i}"))?,
                        Selector::new("k8s", &format!("ns:ns-{}", i % 100))?,
                    ],
                ))
            })
            .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
        for created in store.create_entries(batch).await? {
            created?;
        }
    }
    store.close().await;
    Ok(())
}

async fn snapshot(file: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let before = rss_kb();
    let store = SqlDatastore::open(file).await?;
    let opened = rss_kb();
    let started = Instant::now();
    let (entries, _) = store.entries_snapshot().await?;
    let took = started.elapsed();
    let loaded = rss_kb();
    let n = entries.len().max(1);
    println!(
        "{} entries in {:.3} s; RSS KB: start {before}, open {opened}, loaded {loaded} \
         ({} B/entry over open)",
        entries.len(),
        took.as_secs_f64(),
        (loaded - opened) * 1024 / n as i64
    );
    drop(entries);
    println!("after drop: {} KB", rss_kb());
    store.close().await;
    println!("after close: {} KB", rss_kb());
    Ok(())
}

/// `VmRSS` of this process in KB.
fn rss_kb() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
