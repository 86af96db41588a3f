//! `lanyard-bench`: Lanyard's benchmark harness.
//!
//! Every run first measures this machine's floors in the same process (ECDSA P-256 sign and
//! verify with aws-lc-rs, a raw unix socketpair round trip), then runs the benchmarks against
//! real `lanyard` processes and reports each figure next to its floor as a ratio, so numbers
//! from a noisy shared machine stay comparable. Benchmarks with a floor of their own (the
//! disk's fsync rate, a plain SQLite scan, a plain `Vec` clone) measure it in the same run,
//! next to the figure. Results go to the terminal as a table and to
//! `target/bench/<size>.json`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod agents;
mod calibrate;
mod coldstart;
mod cpu;
mod fleet;
mod idle;
mod lookup;
mod populate;
mod procs;
mod progress;
mod rawclient;
mod report;
mod select;
mod serverproc;
mod storefloor;
mod uncached;
mod versus;
mod workload;
mod writes;

use std::path::PathBuf;

use clap::Parser;

use crate::select::{Group, Selection};

/// Benchmark sizes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Size {
    /// A few minutes on 2 cores; CI can run it without judging the numbers.
    Quick,
    /// By hand: the fleet sizes of the performance targets.
    Full,
}

/// Lanyard benchmarks with same-run calibration.
#[derive(Parser, Debug)]
#[command(name = "lanyard-bench", version)]
struct Args {
    /// Which size to run.
    #[arg(long, value_enum, default_value = "quick")]
    size: Size,
    /// The `lanyard` binary under test (default: next to this one).
    #[arg(long)]
    lanyard: Option<PathBuf>,
    /// Simulated agents (overrides the size's default).
    #[arg(long)]
    agents: Option<usize>,
    /// Entries per simulated agent (overrides the size's default).
    #[arg(long)]
    entries_per_agent: Option<usize>,
    /// Open Workload API streams (overrides the size's default).
    #[arg(long)]
    streams: Option<usize>,
    /// Real agents S8 runs across, each with one open stream (overrides the size's default).
    #[arg(long)]
    s8_agents: Option<usize>,
    /// Entry counts the server is started with for S5 and S6, comma-separated (overrides
    /// the size's default; a start with no entries is always added as the baseline).
    #[arg(long, value_delimiter = ',')]
    start_entries: Vec<usize>,
    /// Run only these benchmarks, comma-separated (`S4,S5`); benchmarks sharing a setup run
    /// together (see `select.rs`).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The directory holding SPIRE's `spire-server` and `spire-agent` for `VS` (default:
    /// `LANYARD_TEST_SPIRE_BIN`, else `.ci/spire.sh`'s cache).
    #[arg(long)]
    spire_bin: Option<PathBuf>,
    /// Where to write the JSON results (default: target/bench/<size>.json).
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Numbers that depend on the size.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) size: Size,
    pub(crate) agents: usize,
    pub(crate) entries_per_agent: usize,
    pub(crate) issue_rounds: usize,
    pub(crate) fetches: usize,
    pub(crate) propagations: usize,
    pub(crate) cached_svids: usize,
    pub(crate) streams: usize,
    /// S4: agents in the index, all matching both node aliases.
    pub(crate) lookup_agents: usize,
    /// S4: entries under each of the two node aliases.
    pub(crate) lookup_alias_entries: usize,
    /// S4: entries parented directly to the one large agent.
    pub(crate) lookup_direct_entries: usize,
    /// S5/S6: entry counts the server starts with (ascending; 0 is measured separately).
    pub(crate) start_entries: Vec<usize>,
    /// S7: sequential `BatchCreateEntry` calls of one entry each.
    pub(crate) single_writes: usize,
    /// S7: `BatchCreateEntry` calls of [`writes::BATCH`] entries each.
    pub(crate) batch_writes: usize,
    /// S8 across agents: real `lanyard agent run` processes, one stream each.
    pub(crate) s8_agents: usize,
    /// S8 across agents: rounds of create, update and delete on a random agent.
    pub(crate) s8_rounds: usize,
    /// S13: authorized entries of the idle agents (one agent with none is always added).
    pub(crate) idle_entries: Vec<usize>,
    /// S13: how long the idle agents are sampled.
    pub(crate) idle_window: std::time::Duration,
    /// VS: first fetches per system.
    pub(crate) versus_fetches: usize,
    /// VS: entries created to time their way to an open stream.
    pub(crate) versus_rounds: usize,
    /// VS: how long each server signs for the throughput figure.
    pub(crate) versus_mint_window: std::time::Duration,
    /// VS: entries each server holds for the start measure.
    pub(crate) versus_start_entries: usize,
}

impl Plan {
    fn new(args: &Args) -> Self {
        let mut plan = match args.size {
            Size::Quick => Plan {
                size: Size::Quick,
                agents: 50,
                entries_per_agent: 20,
                issue_rounds: 3,
                fetches: 2_000,
                propagations: 5,
                cached_svids: 1_000,
                streams: 100,
                lookup_agents: 500,
                lookup_alias_entries: 30,
                lookup_direct_entries: 1_000,
                start_entries: vec![10_000],
                single_writes: 100,
                batch_writes: 5,
                s8_agents: 10,
                s8_rounds: 20,
                idle_entries: vec![1_000],
                idle_window: std::time::Duration::from_secs(10),
                versus_fetches: 200,
                versus_rounds: 5,
                versus_mint_window: std::time::Duration::from_secs(5),
                versus_start_entries: 10_000,
            },
            Size::Full => Plan {
                size: Size::Full,
                agents: 10_000,
                entries_per_agent: 100,
                issue_rounds: 1,
                fetches: 20_000,
                propagations: 20,
                cached_svids: 10_000,
                streams: 10_000,
                // SPIRE's shape (`pkg/server/authorizedentries` benchmarks).
                lookup_agents: 50_000,
                lookup_alias_entries: 300,
                lookup_direct_entries: 100_000,
                start_entries: vec![100_000, 1_000_000],
                single_writes: 1_000,
                batch_writes: 50,
                s8_agents: 100,
                s8_rounds: 200,
                idle_entries: vec![1_000, 10_000],
                idle_window: std::time::Duration::from_secs(60),
                versus_fetches: 1_000,
                versus_rounds: 20,
                versus_mint_window: std::time::Duration::from_secs(15),
                versus_start_entries: 100_000,
            },
        };
        if let Some(n) = args.agents {
            plan.agents = n;
        }
        if let Some(n) = args.entries_per_agent {
            plan.entries_per_agent = n;
        }
        if let Some(n) = args.streams {
            plan.streams = n;
        }
        if let Some(n) = args.s8_agents {
            plan.s8_agents = n;
        }
        if !args.start_entries.is_empty() {
            plan.start_entries = args.start_entries.clone();
            plan.start_entries.retain(|n| *n > 0);
            plan.start_entries.sort_unstable();
            plan.start_entries.dedup();
        }
        plan
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let plan = Plan::new(&args);
    let selection = Selection::new(&args.only)?;
    let lanyard = match &args.lanyard {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("lanyard"))
            .ok_or_else(|| anyhow::anyhow!("cannot locate the lanyard binary"))?,
    };
    anyhow::ensure!(
        lanyard.exists(),
        "{} does not exist: build it first with `cargo build --release --bins`",
        lanyard.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let spire = if selection.has(Group::Versus) {
        let found = versus::find_spire(args.spire_bin.as_deref());
        if found.is_none() {
            anyhow::ensure!(
                !selection.named(Group::Versus),
                "VS needs SPIRE {}'s spire-server and spire-agent: run .ci/spire.sh or pass \
                 --spire-bin DIR",
                versus::SPIRE_VERSION
            );
            eprintln!(
                "SKIPPED: VS (beside SPIRE {}): no SPIRE binaries; run .ci/spire.sh or pass \
                 --spire-bin DIR",
                versus::SPIRE_VERSION
            );
        }
        found
    } else {
        None
    };

    let floors = calibrate::run();
    let mut rows = Vec::new();
    let mut versus_rows = Vec::new();
    runtime.block_on(async {
        if selection.has(Group::Fleet)
            || selection.has(Group::Workload)
            || selection.has(Group::Uncached)
        {
            let mut env = procs::Env::start(&lanyard).await?;
            if selection.has(Group::Fleet) {
                rows.push(fleet::issuance(&env, &plan, &floors).await?);
            }
            if selection.has(Group::Workload) {
                rows.extend(workload::run(&mut env, &plan, &floors).await?);
            }
            if selection.has(Group::Uncached) {
                rows.extend(uncached::run(&mut env, &plan).await?);
            }
            env.stop().await;
        }
        // Each starts its own server and agents.
        if selection.has(Group::Push) {
            rows.extend(agents::run(&lanyard, &plan, &floors).await?);
        }
        if selection.has(Group::Idle) {
            rows.extend(idle::run(&lanyard, &plan).await?);
        }
        anyhow::Ok(())
    })?;
    // In process and CPU-bound: runs while no server is up.
    if selection.has(Group::Lookup) {
        rows.extend(lookup::run(&plan)?);
    }
    runtime.block_on(async {
        if selection.has(Group::Start) || selection.has(Group::Writes) {
            rows.extend(coldstart::run(&lanyard, &plan, &selection).await?);
        }
        if let Some(spire) = spire {
            let bins = versus::Binaries {
                lanyard: lanyard.clone(),
                spire,
            };
            versus_rows = versus::run(&bins, &plan, &floors).await?;
        }
        anyhow::Ok(())
    })?;

    let report = report::Report::new(&plan, &floors, rows);
    report.print();
    versus::print(&versus_rows, versus::SPIRE_VERSION);
    let path = args.json.unwrap_or_else(|| {
        PathBuf::from("target/bench").join(match plan.size {
            Size::Quick => "quick.json",
            Size::Full => "full.json",
        })
    });
    report.write_json(&path, versus::json(&versus_rows, versus::SPIRE_VERSION))?;
    eprintln!("results written to {}", path.display());
    Ok(())
}
