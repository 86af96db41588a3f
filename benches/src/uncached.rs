//! S10: the first fetch of an identity the agent has not signed yet. The agent holds
//! `plan.cached_svids` authorized entries with its SVID cache bounded to a tenth of them, so
//! most identities are signed only when their workload first asks. Each sample is a workload
//! with the uid of a different entry (`setpriv` runs `lanyard agent api fetch x509` as that
//! uid), timed from spawn to exit; the floor is the same command fetching an identity the agent
//! holds, so the difference is what signing on demand costs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::Plan;
use crate::procs::{Env, entry};
use crate::progress::Progress;
use crate::report::{Row, percentile};

/// The first uid of the entries; far from any real account.
const FIRST_UID: u32 = 300_000;

pub(crate) async fn run(env: &mut Env, plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let uid = nix::unistd::getuid().as_raw();
    if uid != 0 || which("setpriv").is_none() {
        eprintln!("S10 skipped: it runs workloads as other uids, which needs root and setpriv");
        return Ok(Vec::new());
    }
    let token = env.token().await?;
    let agent_path = format!("/spire/agent/join_token/{token}");
    let entries = plan.cached_svids;
    let bound = (entries / 10).max(1);
    let mut progress = Progress::new("S10 registering entries", entries);
    let all: Vec<_> = (0..entries)
        .map(|j| {
            entry(
                &format!("/bench/s10/{j}"),
                &agent_path,
                FIRST_UID + j as u32,
            )
        })
        .collect();
    for (n, chunk) in all.chunks(500).enumerate() {
        env.create_entries(chunk.to_vec()).await?;
        progress.update(((n + 1) * 500).min(entries));
    }
    progress.finish();
    env.create_entries(vec![entry("/bench/s10/marker", &agent_path, uid)])
        .await?;
    let bound_arg = bound.to_string();
    let (socket, _pid) = env
        .start_agent_with(
            &token,
            "s10-agent",
            &["--x509-svid-cache-max-size", &bound_arg],
        )
        .await?;
    // Workloads of other uids must reach the socket; the scratch directory is private.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755))?;

    // The marker arrives last: once it is served, the agent has every entry and has signed
    // what its bound allows.
    let marker_deadline = Instant::now() + Duration::from_secs(600);
    while fetch(&env.lanyard, &socket, None).await.is_err() {
        anyhow::ensure!(
            Instant::now() < marker_deadline,
            "the S10 agent never served its marker"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let samples = plan.fetches.clamp(20, 200).min(entries);
    let mut cached = Vec::with_capacity(samples);
    let mut progress = Progress::new("S10 fetches of a cached identity", samples);
    for i in 0..samples {
        cached.push(fetch(&env.lanyard, &socket, None).await?);
        progress.update(i + 1);
    }
    progress.finish();
    // Spread over the entries with a stride coprime to their count, so no uid repeats.
    let stride = (entries / samples).max(1) * 7 + 1;
    let mut fresh = Vec::with_capacity(samples);
    let mut progress = Progress::new("S10 first fetches of uncached identities", samples);
    for i in 0..samples {
        let j = (i * stride) % entries;
        fresh.push(fetch(&env.lanyard, &socket, Some(FIRST_UID + j as u32)).await?);
        progress.update(i + 1);
    }
    progress.finish();

    let floor = percentile(&mut cached, 50.0);
    let p50 = percentile(&mut fresh, 50.0);
    let p99 = percentile(&mut fresh, 99.0);
    Ok(vec![Row {
        id: "S10",
        name: format!(
            "first fetch of an identity not cached, {entries} entries, cache bound {bound} (p50; p99 {p99:.1} ms; a fresh process per fetch)"
        ),
        measured: p50,
        unit: "ms",
        floor,
        floor_what: "the same command fetching a cached identity (p50)",
        ratio: p50 / floor,
        target: "p99 <= 10 ms + RTT".into(),
        spire: "waits for 500 ms sync tick + RTT",
    }])
}

/// Runs `lanyard agent api fetch x509` against `socket` (as `uid` when given) and returns how
/// long it took, in milliseconds; fails when it does not exit 0.
async fn fetch(lanyard: &Path, socket: &Path, uid: Option<u32>) -> anyhow::Result<f64> {
    let mut command = match uid {
        Some(uid) => {
            let mut c = tokio::process::Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .arg("--clear-groups")
                .arg(lanyard);
            c
        }
        None => tokio::process::Command::new(lanyard),
    };
    command
        .args(["agent", "api", "fetch", "x509", "--socket"])
        .arg(socket)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let t = Instant::now();
    let out = command.output().await.context("running the fetch")?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(
        out.status.success(),
        "fetch as uid {uid:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(ms)
}

/// The first `name` on `PATH`.
fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}
