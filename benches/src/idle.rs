//! S13, the agent's idle cost: real `lanyard agent run` processes with no entries and with
//! each of `plan.idle_entries` authorized entries, left alone once synced, sampled for CPU
//! time and resident memory.
//!
//! The entries carry `unix:uid` selectors of users that run nothing, so the agent holds and
//! signs for them (up to its SVID cache limit) while no workload asks. Each agent also gets
//! one marker entry for this process, created after the others: once the marker's SVID
//! reaches us, the agent has synced everything before it. The agents keep the default sync
//! interval (5 s) and their push stream: that is what an idle agent costs as shipped.
//!
//! All agents idle side by side in the same window, so they share its noise.

use std::path::Path;
use std::time::{Duration, Instant};

use lanyard_workload::{EndpointAddr, WorkloadClient};

use crate::Plan;
use crate::cpu::{clock_ticks_per_sec, cpu_ticks_all, settle};
use crate::procs::{Env, TD, entry, rss_bytes};
use crate::progress::Progress;
use crate::report::Row;

/// What S13 counts as idle: the target, in percent of one core.
const CPU_TARGET_PCT: f64 = 0.5;
/// First uid of the entries no workload uses.
const IDLE_UID_BASE: u32 = 300_000;

/// One agent under observation.
struct Idle {
    entries: usize,
    pid: u32,
}

/// S13 for an agent with no entries and with each of `plan.idle_entries`.
pub(crate) async fn run(lanyard: &Path, plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let mut env = Env::start(lanyard).await?;
    let rows = measure(&mut env, plan).await;
    // On error too: `Env`'s drop guard would only kill, this also reaps.
    env.stop().await;
    rows
}

async fn measure(env: &mut Env, plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let uid = nix::unistd::getuid().as_raw();
    let sizes: Vec<usize> = std::iter::once(0)
        .chain(plan.idle_entries.iter().copied())
        .collect();
    let mut agents = Vec::with_capacity(sizes.len());
    for (k, &n) in sizes.iter().enumerate() {
        let token = env.token().await?;
        let parent = format!("/spire/agent/join_token/{token}");
        let mut progress = Progress::new("S13 registering entries", n);
        let entries: Vec<_> = (0..n)
            .map(|j| {
                let other = IDLE_UID_BASE + j as u32;
                entry(&format!("/bench/idle/{k}/{j}"), &parent, other)
            })
            .collect();
        for (c, chunk) in entries.chunks(500).enumerate() {
            env.create_entries(chunk.to_vec()).await?;
            progress.update(((c + 1) * 500).min(n));
        }
        progress.finish();
        let marker = format!("/bench/idle/{k}/marker");
        env.create_entries(vec![entry(&marker, &parent, uid)])
            .await?;
        let (socket, pid) = env.start_agent(&token, &format!("idle-{k}")).await?;
        let synced = Instant::now();
        wait_for_identity(
            &EndpointAddr::Unix(socket),
            &format!("spiffe://{TD}{marker}"),
        )
        .await?;
        eprintln!(
            "S13: agent with {n} entries synced {:.1} s after its start",
            synced.elapsed().as_secs_f64()
        );
        agents.push(Idle { entries: n, pid });
    }

    let pids: Vec<u32> = agents.iter().map(|a| a.pid).collect();
    let settled = settle(&pids).await?;
    eprintln!("S13: agents quiet after {:.0} s", settled.as_secs_f64());

    let progress = Progress::new(
        "S13 idle window (seconds)",
        plan.idle_window.as_secs() as usize,
    );
    let before = cpu_ticks_all(&pids)?;
    let started = Instant::now();
    tokio::time::sleep(plan.idle_window).await;
    let after = cpu_ticks_all(&pids)?;
    let window = started.elapsed().as_secs_f64();
    progress.finish();
    let hz = clock_ticks_per_sec() as f64;
    let cpu_pct: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| a.saturating_sub(*b) as f64 / hz / window * 100.0)
        .collect();
    let rss: Vec<u64> = pids
        .iter()
        .map(|p| rss_bytes(*p))
        .collect::<anyhow::Result<_>>()?;

    let resolution = 100.0 / hz / window;
    let (base_cpu, base_rss) = (cpu_pct[0], rss[0] as f64 / 1e6);
    let mut rows = Vec::new();
    for (k, agent) in agents.iter().enumerate().skip(1) {
        let n = agent.entries;
        rows.push(Row {
            id: "S13",
            name: format!(
                "agent idle CPU, {n} authorized entries, default 5 s sync + push stream, \
                 {window:.0} s window (agent with no entries: {base_cpu:.2} %; one clock tick \
                 is {resolution:.3} %)"
            ),
            measured: cpu_pct[k],
            unit: "% of a core",
            floor: CPU_TARGET_PCT,
            floor_what: "the target itself: an idle process costs 0, no lower floor",
            ratio: cpu_pct[k] / CPU_TARGET_PCT,
            target: "< 0.5 % of one core".into(),
            spire: "full sync every 5 s up to 500 entries; 390-630 mCPU with k8s attestor (#3957)",
        });
        let mb = rss[k] as f64 / 1e6;
        let per_entry = rss[k].saturating_sub(rss[0]) as f64 / n as f64;
        rows.push(Row {
            id: "S13",
            name: format!(
                "agent RSS, {n} authorized entries, synced and idle ({per_entry:.0} B per entry \
                 over the agent with none)"
            ),
            measured: mb,
            unit: "MB",
            floor: base_rss,
            floor_what: "RSS of the same agent with no entries",
            ratio: mb / base_rss,
            target: "< 50 MB at 10 k entries".into(),
            spire: "39-60 MiB per agent with 46 entries (#3957)",
        });
    }
    Ok(rows)
}

/// Waits until the agent at `addr` serves `id` to this process.
pub(crate) async fn wait_for_identity(addr: &EndpointAddr, id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Ok(mut c) = WorkloadClient::connect(addr).await
            && let Ok(ctx) = c.fetch_x509_context().await
            && ctx.svids.iter().any(|s| s.spiffe_id().as_str() == id)
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{id} never reached the workload");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
