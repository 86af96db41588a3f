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
use crate::procs::{Env, TD, entry, rss_bytes};
use crate::progress::Progress;
use crate::report::Row;

/// What S13 counts as idle: the target, in percent of one core.
const CPU_TARGET_PCT: f64 = 0.5;
/// First uid of the entries no workload uses.
const IDLE_UID_BASE: u32 = 300_000;
/// Longest wait for the agents to go quiet after the marker arrived.
const SETTLE_CAP: Duration = Duration::from_secs(120);

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
async fn wait_for_identity(addr: &EndpointAddr, id: &str) -> anyhow::Result<()> {
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

/// Waits until two consecutive 2 s intervals cost each agent at most 1 % of a core (SVIDs
/// beyond the marker may still be signing when it arrives), at most [`SETTLE_CAP`]; returns
/// the time it took.
async fn settle(pids: &[u32]) -> anyhow::Result<Duration> {
    const STEP: Duration = Duration::from_secs(2);
    let quiet_ticks = clock_ticks_per_sec() * STEP.as_secs() / 100;
    let started = Instant::now();
    let mut quiet = 0;
    let mut last = cpu_ticks_all(pids)?;
    while quiet < 2 && started.elapsed() < SETTLE_CAP {
        tokio::time::sleep(STEP).await;
        let now = cpu_ticks_all(pids)?;
        let busy = now
            .iter()
            .zip(&last)
            .any(|(n, l)| n.saturating_sub(*l) > quiet_ticks);
        quiet = if busy { 0 } else { quiet + 1 };
        last = now;
    }
    Ok(started.elapsed())
}

fn cpu_ticks_all(pids: &[u32]) -> anyhow::Result<Vec<u64>> {
    pids.iter().map(|p| cpu_ticks(*p)).collect()
}

/// User plus system CPU time of process `pid` (all its threads, dead ones included), in
/// clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    stat_cpu_ticks(&stat)
        .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat has no utime/stime fields: {stat}"))
}

/// Fields 14 and 15 (utime, stime) of a `/proc/<pid>/stat` line. The command name (field 2)
/// is in parentheses and may hold spaces and parentheses itself, so counting starts after
/// the last `)`.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The kernel's clock ticks per second (`AT_CLKTCK` from this process's auxiliary vector),
/// 100 when unreadable (the value Linux uses on every common architecture).
fn clock_ticks_per_sec() -> u64 {
    std::fs::read("/proc/self/auxv")
        .ok()
        .and_then(|auxv| auxv_value(&auxv, AT_CLKTCK))
        .filter(|hz| *hz > 0)
        .unwrap_or(100)
}

/// The `AT_CLKTCK` key of the auxiliary vector (`<elf.h>`).
const AT_CLKTCK: u64 = 17;

/// The value of `key` in an auxiliary vector: pairs of native words.
fn auxv_value(auxv: &[u8], key: u64) -> Option<u64> {
    const WORD: usize = size_of::<usize>();
    let word = |b: &[u8]| -> Option<u64> { Some(usize::from_ne_bytes(b.try_into().ok()?) as u64) };
    auxv.chunks_exact(2 * WORD)
        .find(|pair| word(&pair[..WORD]) == Some(key))
        .and_then(|pair| word(&pair[WORD..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (lan yard) (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    37 5 0 0 20 0 12 0 100 0 0";
        assert_eq!(stat_cpu_ticks(stat), Some(42));
    }

    #[test]
    fn a_truncated_stat_line_has_no_cpu_ticks() {
        assert_eq!(stat_cpu_ticks("4242 (lanyard) S 1 4242"), None);
        assert_eq!(stat_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn finds_a_key_in_an_auxiliary_vector() {
        let mut auxv = Vec::new();
        for (k, v) in [(6usize, 4096usize), (17, 250), (0, 0)] {
            auxv.extend_from_slice(&k.to_ne_bytes());
            auxv.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(auxv_value(&auxv, AT_CLKTCK), Some(250));
        assert_eq!(auxv_value(&auxv, 99), None);
    }

    #[test]
    fn this_process_reports_its_own_cpu_time() {
        assert!(cpu_ticks(std::process::id()).is_ok());
        assert!(clock_ticks_per_sec() > 0);
    }
}
