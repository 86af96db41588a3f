//! `lanyard-bench`: Lanyard's benchmark harness.
//!
//! Every run first measures this machine's floors in the same process (ECDSA P-256 sign and
//! verify with aws-lc-rs, a raw unix socketpair round trip), then runs the benchmarks against
//! real `lanyard` processes and reports each figure next to its floor as a ratio, so numbers
//! from a noisy shared machine stay comparable. Results go to the terminal as a table and to
//! `target/bench/<size>.json`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod calibrate;
mod fleet;
mod procs;
mod progress;
mod report;
mod workload;

use std::path::PathBuf;

use clap::Parser;

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
    /// Where to write the JSON results (default: target/bench/<size>.json).
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Numbers that depend on the size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub(crate) size: Size,
    pub(crate) agents: usize,
    pub(crate) entries_per_agent: usize,
    pub(crate) issue_rounds: usize,
    pub(crate) fetches: usize,
    pub(crate) propagations: usize,
    pub(crate) cached_svids: usize,
    pub(crate) streams: usize,
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
        plan
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let plan = Plan::new(&args);
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

    let floors = calibrate::run();
    let mut rows = Vec::new();
    runtime.block_on(async {
        let mut env = procs::Env::start(&lanyard).await?;
        rows.push(fleet::issuance(&env, &plan, &floors).await?);
        rows.extend(workload::run(&mut env, &plan, &floors).await?);
        env.stop().await;
        anyhow::Ok(())
    })?;

    let report = report::Report::new(&plan, &floors, rows);
    report.print();
    let path = args.json.unwrap_or_else(|| {
        PathBuf::from("target/bench").join(match plan.size {
            Size::Quick => "quick.json",
            Size::Full => "full.json",
        })
    });
    report.write_json(&path)?;
    eprintln!("results written to {}", path.display());
    Ok(())
}
