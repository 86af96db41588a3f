//! `VS`: Lanyard beside SPIRE on the same machine in the same run, each figure as a
//! Lanyard/SPIRE ratio.
//!
//! The SPIRE binaries are the ones `.ci/spire.sh` builds from the Go module proxy
//! (`spire-server` and `spire-agent` v1.13.3). Both systems run as shipped: release binaries,
//! SQLite, keys on disk, default log level, default sync intervals and caches. Measures, in
//! the order they run:
//!
//! 1. agent RSS and idle CPU with 1,000 authorized entries (both agents sign all of them:
//!    each one's SVID cache holds 1,000 by default), sampled in one shared window;
//! 2. the first `FetchX509SVID` message on a new connection, p50/p99, taking turns;
//! 3. entry create to workload: an entry for this process created on both servers at once,
//!    timed until the agent's open stream carries it;
//! 4. server X509-SVID signing throughput through `MintX509SVID`, one server at a time;
//! 5. server start time and RSS on a datastore holding `plan.versus_start_entries` entries,
//!    one server at a time.

mod deploy;
mod measure;
mod table;

use std::path::{Path, PathBuf};
use std::time::Instant;

use lanyard_workload::EndpointAddr;

pub(crate) use deploy::Binaries;
use deploy::{Agent, Kind, Server};
use measure::Latency;
use table::{Better, VsRow as Row};

use crate::Plan;
use crate::calibrate::Floors;
use crate::cpu::settle;
use crate::idle::wait_for_identity;
use crate::procs::{TD, entry, rss_bytes};
use crate::progress::Progress;

/// The SPIRE release compared against, as `.ci/spire.sh` builds it.
pub(crate) const SPIRE_VERSION: &str = "v1.13.3";
/// Authorized entries of each agent in the idle measure, the marker included.
const AGENT_ENTRIES: usize = 1_000;
/// First uid of entries no process here runs as.
const UNUSED_UID_BASE: u32 = 400_000;
/// Fake agents the start measure's entries are spread over.
const START_PARENTS: usize = 100;

pub(crate) use table::{json, print};

/// Where the SPIRE binaries are: `--spire-bin`, `LANYARD_TEST_SPIRE_BIN`, or `.ci/spire.sh`'s
/// cache (`LANYARD_SPIRE_CACHE`, default `~/.cache/lanyard-spire`); `None` unless both
/// binaries are there.
pub(crate) fn find_spire(flag: Option<&Path>) -> Option<PathBuf> {
    let dir = match (flag, std::env::var_os("LANYARD_TEST_SPIRE_BIN")) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(dir)) => PathBuf::from(dir),
        (None, None) => {
            let cache = match std::env::var_os("LANYARD_SPIRE_CACHE") {
                Some(c) => PathBuf::from(c),
                None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/lanyard-spire"),
            };
            cache.join(SPIRE_VERSION).join("bin")
        }
    };
    ["spire-server", "spire-agent"]
        .iter()
        .all(|b| dir.join(b).is_file())
        .then_some(dir)
}

/// Every side-by-side measure.
pub(crate) async fn run(bins: &Binaries, plan: &Plan, floors: &Floors) -> anyhow::Result<Vec<Row>> {
    let scratch = tempfile::Builder::new()
        .prefix("lanyard-versus-")
        .tempdir_in("/tmp")?;
    let mut servers = Vec::new();
    for kind in Kind::BOTH {
        let dir = scratch.path().join(kind.name());
        let server = Server::start(bins, kind, &dir.join("server")).await?;
        eprintln!(
            "versus: {} server ready {:.0} ms after spawn",
            kind.name(),
            server.ready_after.as_secs_f64() * 1e3
        );
        servers.push(server);
    }
    let mut rows = Vec::new();
    let mut agents = Vec::new();
    let mut parents = Vec::new();
    for server in &servers {
        let (agent, parent) = agent_with_entries(server, scratch.path()).await?;
        agents.push(agent);
        parents.push(parent);
    }

    let pids = agents
        .iter()
        .map(Agent::pid)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let idle = measure::idle(&pids, plan.idle_window).await?;
    rows.push(Row {
        measure: format!(
            "agent idle CPU, {AGENT_ENTRIES} entries, {:.0} s window (one tick {:.3} %)",
            idle.window.as_secs_f64(),
            idle.resolution_pct
        ),
        unit: "% of a core",
        lanyard: idle.cpu_pct[0],
        spire: idle.cpu_pct[1],
        better: Better::Lower,
        floor: None,
    });
    rows.push(Row {
        measure: format!("agent RSS, {AGENT_ENTRIES} entries, synced and idle"),
        unit: "MB",
        lanyard: idle.rss[0] as f64 / 1e6,
        spire: idle.rss[1] as f64 / 1e6,
        better: Better::Lower,
        floor: None,
    });

    let sockets: Vec<&Path> = agents.iter().map(|a| a.socket.as_path()).collect();
    let fetch = measure::first_fetch(&sockets, plan.versus_fetches).await?;
    rows.extend(latency_rows(
        &format!(
            "first FetchX509SVID message on a new connection ({} samples each)",
            plan.versus_fetches
        ),
        &fetch,
        Some((floors.socketpair_rtt_us / 1e3, "socketpair round trip")),
    ));

    let pairs: Vec<(&Server, &Path, String)> = servers
        .iter()
        .zip(&sockets)
        .zip(&parents)
        .map(|((s, socket), parent)| (s, *socket, parent.clone()))
        .collect();
    let delay = measure::propagation(&pairs, plan.versus_rounds).await?;
    rows.extend(latency_rows(
        &format!(
            "entry create to open workload stream, default sync ({} rounds)",
            plan.versus_rounds
        ),
        &delay,
        None,
    ));

    for agent in &mut agents {
        agent.stop().await?;
    }
    let mut mint = Vec::new();
    for server in &servers {
        mint.push(measure::mint_throughput(server, plan.versus_mint_window).await?);
    }
    rows.push(Row {
        measure: format!(
            "server X509-SVID signing, MintX509SVID on the admin socket, {} s each",
            plan.versus_mint_window.as_secs()
        ),
        unit: "SVIDs/s",
        lanyard: mint[0],
        spire: mint[1],
        better: Better::Higher,
        floor: Some((floors.sign_per_sec, "ECDSA P-256 signs/s, one core")),
    });

    let existing = AGENT_ENTRIES + plan.versus_rounds;
    rows.extend(start_rows(&mut servers, existing, plan.versus_start_entries).await?);
    for server in &mut servers {
        server.stop().await?;
    }
    Ok(rows)
}

/// A token, `AGENT_ENTRIES - 1` entries for uids nothing runs as and a marker entry for this
/// process, then the agent; returns once the marker reached this process, with the agent's
/// ID path (the parent of its entries).
async fn agent_with_entries(server: &Server, scratch: &Path) -> anyhow::Result<(Agent, String)> {
    let token = server.token().await?;
    let parent = format!("/spire/agent/join_token/{token}");
    let mut entries: Vec<_> = (0..AGENT_ENTRIES - 1)
        .map(|j| {
            let uid = UNUSED_UID_BASE + j as u32;
            entry(&format!("/versus/idle/{j}"), &parent, uid)
        })
        .collect();
    let marker = "/versus/marker";
    entries.push(entry(marker, &parent, nix::unistd::getuid().as_raw()));
    server.create_entries(entries).await?;
    let agent = server
        .start_agent(&token, &scratch.join(server.kind.name()).join("agent"))
        .await?;
    let started = Instant::now();
    wait_for_identity(
        &EndpointAddr::Unix(agent.socket.clone()),
        &format!("spiffe://{TD}{marker}"),
    )
    .await?;
    eprintln!(
        "versus: {} agent served its entries {:.1} s after its start",
        server.kind.name(),
        started.elapsed().as_secs_f64()
    );
    Ok((agent, parent))
}

fn latency_rows(what: &str, both: &[Latency], floor: Option<(f64, &'static str)>) -> Vec<Row> {
    vec![
        Row {
            measure: format!("{what}, p50"),
            unit: "ms",
            lanyard: both[0].p50,
            spire: both[1].p50,
            better: Better::Lower,
            floor,
        },
        Row {
            measure: format!("{what}, p99"),
            unit: "ms",
            lanyard: both[0].p99,
            spire: both[1].p99,
            better: Better::Lower,
            floor,
        },
    ]
}

/// Fills each server from `existing` to `total` entries, then restarts it alone and
/// measures the time to its first `SERVING` health answer and its memory once it is quiet.
async fn start_rows(
    servers: &mut [Server],
    existing: usize,
    total: usize,
) -> anyhow::Result<Vec<Row>> {
    let mut ready = Vec::new();
    let mut rss = Vec::new();
    let mut fill = Vec::new();
    let add = total.saturating_sub(existing);
    for server in servers.iter_mut() {
        let started = Instant::now();
        let mut progress = Progress::new(
            match server.kind {
                Kind::Lanyard => "versus: filling the lanyard server",
                Kind::Spire => "versus: filling the spire server",
            },
            add,
        );
        let entries: Vec<_> = (0..add)
            .map(|j| {
                let parent = format!("/versus/node/{}", j % START_PARENTS);
                entry(&format!("/versus/start/{j}"), &parent, j as u32)
            })
            .collect();
        for (k, chunk) in entries.chunks(10_000).enumerate() {
            server.create_entries(chunk.to_vec()).await?;
            progress.update(((k + 1) * 10_000).min(add));
        }
        progress.finish();
        fill.push(add as f64 / started.elapsed().as_secs_f64());
        server.restart().await?;
        settle(&[server.pid()?]).await?;
        ready.push(server.ready_after.as_secs_f64() * 1e3);
        rss.push(rss_bytes(server.pid()?)? as f64 / 1e6);
        eprintln!(
            "versus: {} server with {total} entries ready after {:.0} ms",
            server.kind.name(),
            server.ready_after.as_secs_f64() * 1e3
        );
    }
    Ok(vec![
        Row {
            measure: format!("server start to SERVING health answer, {total} entries"),
            unit: "ms",
            lanyard: ready[0],
            spire: ready[1],
            better: Better::Lower,
            floor: None,
        },
        Row {
            measure: format!("server RSS after start, {total} entries, quiet"),
            unit: "MB",
            lanyard: rss[0],
            spire: rss[1],
            better: Better::Lower,
            floor: None,
        },
        Row {
            measure: "entries created through BatchCreateEntry (500 per call, 4 calls in flight)"
                .into(),
            unit: "entries/s",
            lanyard: fill[0],
            spire: fill[1],
            better: Better::Higher,
            floor: None,
        },
    ])
}
