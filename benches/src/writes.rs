//! S7: durable entry writes through the admin API (`BatchCreateEntry` over the unix socket),
//! one entry per call and [`BATCH`] per call, against the disk's fsync rate measured in the
//! same run on the same filesystem.

use std::path::Path;
use std::time::{Duration, Instant};

use lanyard_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, entry_client::EntryClient,
};
use lanyard_proto::spire::api::types;
use tonic::transport::Channel;

use crate::Plan;
use crate::procs::entry;
use crate::progress::Progress;
use crate::report::Row;
use crate::storefloor::fsync_per_sec;

/// Entries per call in the batched half.
pub(crate) const BATCH: usize = 1_000;
/// How long each sample of the fsync rate runs.
const FSYNC_BUDGET: Duration = Duration::from_millis(100);
/// Unbatched calls between two samples of the fsync rate.
const FSYNC_EVERY: usize = 10;

/// S7, two rows. `admin` is a running server's admin channel; `data_dir` its data directory
/// (the fsync floor is measured next to it).
pub(crate) async fn run(admin: &Channel, data_dir: &Path, plan: &Plan) -> anyhow::Result<Vec<Row>> {
    // This VM's fsync rate swings tenfold within seconds (shared host): the floor is sampled
    // every few unbatched calls, so both see the same disk.
    let mut client = EntryClient::new(admin.clone());
    let mut fsync_samples = Vec::new();
    let mut calls_time = Duration::ZERO;
    let mut progress = Progress::new("S7 BatchCreateEntry, 1 entry per call", plan.single_writes);
    for i in 0..plan.single_writes {
        if i % FSYNC_EVERY == 0 {
            fsync_samples.push(fsync_per_sec(data_dir, FSYNC_BUDGET)?);
        }
        let started = Instant::now();
        create(
            &mut client,
            vec![entry(&format!("/s7/single/{i}"), "/s7", 1)],
        )
        .await?;
        calls_time += started.elapsed();
        progress.update(i + 1);
    }
    fsync_samples.push(fsync_per_sec(data_dir, FSYNC_BUDGET)?);
    progress.finish();
    let single = plan.single_writes as f64 / calls_time.as_secs_f64();
    let fsyncs = fsync_samples.iter().sum::<f64>() / fsync_samples.len() as f64;
    let (low, high) = fsync_samples
        .iter()
        .fold((f64::INFINITY, 0.0_f64), |(lo, hi), r| {
            (lo.min(*r), hi.max(*r))
        });

    let total = plan.batch_writes * BATCH;
    let mut progress = Progress::new("S7 BatchCreateEntry, 1,000 entries per call", total);
    let started = Instant::now();
    for b in 0..plan.batch_writes {
        let batch = (0..BATCH)
            .map(|k| entry(&format!("/s7/batch/{b}/{k}"), "/s7", 1))
            .collect();
        create(&mut client, batch).await?;
        progress.update((b + 1) * BATCH);
    }
    let batched = total as f64 / started.elapsed().as_secs_f64();
    progress.finish();

    let spire = "none published";
    Ok(vec![
        Row {
            id: "S7",
            name: format!(
                "durable entry writes, BatchCreateEntry 1 entry per call ({} sequential calls; \
                 fsync samples {low:.0}-{high:.0}/s)",
                plan.single_writes
            ),
            measured: single,
            unit: "entries/s",
            floor: fsyncs,
            floor_what: "4 KiB append + fdatasync/s, same filesystem, sampled between calls",
            ratio: single / fsyncs,
            target: "one commit per call: close to the fsync rate".into(),
            spire,
        },
        Row {
            id: "S7",
            name: format!(
                "durable entry writes, BatchCreateEntry {BATCH} entries per call ({} calls)",
                plan.batch_writes
            ),
            measured: batched,
            unit: "entries/s",
            floor: fsyncs * BATCH as f64,
            floor_what: "fsync rate x 1,000 entries per commit",
            ratio: batched / (fsyncs * BATCH as f64),
            target: ">= 5 k entries/s durable".into(),
            spire,
        },
    ])
}

/// One `BatchCreateEntry` call; fails unless every entry was created.
async fn create(
    client: &mut EntryClient<Channel>,
    entries: Vec<types::Entry>,
) -> anyhow::Result<()> {
    let sent = entries.len();
    let results = client
        .batch_create_entry(BatchCreateEntryRequest {
            entries,
            output_mask: None,
        })
        .await?
        .into_inner()
        .results;
    anyhow::ensure!(
        results.len() == sent,
        "{} results for {sent} entries",
        results.len()
    );
    for r in results {
        let status = r.status.unwrap_or_default();
        anyhow::ensure!(status.code == 0, "entry refused: {}", status.message);
    }
    Ok(())
}
