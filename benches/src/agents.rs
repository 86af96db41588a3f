//! S8 across a fleet of real agents: `plan.s8_agents` `lanyard agent run` processes against one
//! server, each serving this process (matched by its uid) one open `FetchX509SVID` stream.
//! Each round picks an agent at random, creates an entry under it, changes the entry's DNS
//! names, then deletes it, and times each step from the admin call until that agent's stream
//! shows it.
//!
//! The agents sync every hour (`--sync-interval 1h`), so a change reaches a stream within the
//! run only through the server's push channel (`Notify/Watch`). A change that has not arrived
//! after [`LOST_AFTER`] counts as a lost push: its sample is infinite (so it shows in p99 and
//! max once losses pass 1 %), and the run recovers by changing the agent's first entry, which
//! sends another push whose sync brings the lost change along.

use std::path::Path;
use std::pin::Pin;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use futures::{Stream, StreamExt};
use lanyard_workload::{ClientError, EndpointAddr, WorkloadClient, X509Context};

use crate::Plan;
use crate::admin::Admin;
use crate::calibrate::Floors;
use crate::procs::{Env, TD, entry};
use crate::progress::Progress;
use crate::report::{Row, percentile};

/// How long a change may take before its push counts as lost.
const LOST_AFTER: Duration = Duration::from_secs(5);
/// How long a stream may take to open, or a lost change to be recovered, before the run fails.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// An open `FetchX509SVID` stream.
type X509Stream = Pin<Box<dyn Stream<Item = Result<X509Context, ClientError>> + Send>>;

/// S8 with `plan.s8_agents` agents: create, update and delete, each timed to the stream.
pub(crate) async fn run(lanyard: &Path, plan: &Plan, floors: &Floors) -> anyhow::Result<Vec<Row>> {
    let mut env = Env::start(lanyard).await?;
    let rows = measure(&mut env, plan, floors).await;
    // On error too: `Env`'s drop guard would only kill, this also reaps.
    env.stop().await;
    rows
}

/// One agent of the fleet as its workload sees it.
struct Agent {
    stream: X509Stream,
    /// The agent's SPIFFE ID path, parent of its entries.
    parent: String,
    /// The entry every agent starts with; changing it forces a sync after a lost push.
    first_entry: String,
}

/// The samples of one kind of change, in ms; a lost push is infinite.
#[derive(Default)]
struct Samples {
    ms: Vec<f64>,
    lost: usize,
}

async fn measure(env: &mut Env, plan: &Plan, floors: &Floors) -> anyhow::Result<Vec<Row>> {
    anyhow::ensure!(
        plan.s8_agents > 0,
        "--s8-agents 0: at least one agent is needed"
    );
    let mut agents = start_fleet(env, plan.s8_agents).await?;
    let n = agents.len();
    let uid = nix::unistd::getuid().as_raw();
    let mut pusher = Pusher {
        admin: Admin::new(env.admin.clone()),
        touches: 0,
    };
    let rng = SystemRandom::new();
    let (mut created, mut updated, mut deleted) = Default::default();
    let mut progress = Progress::new("S8 create/update/delete rounds", plan.s8_rounds);
    for round in 0..plan.s8_rounds {
        let i = random_below(&rng, n)?;
        let agent = &mut agents[i];
        let path = format!("/bench/fleet/{i}/probe/{round}");
        let id = spiffe_id(&path);

        let t = Instant::now();
        let entry_id = pusher
            .admin
            .create_one(entry(&path, &agent.parent, uid))
            .await?;
        let leaf = pusher
            .deliver(agent, t, &mut created, ("creation", &id), |ctx| {
                svid_leaf(ctx, &id).map(<[u8]>::to_vec)
            })
            .await?;

        // A DNS name is an IA5String in the leaf's SAN extension: its bytes appear as is.
        let dns = format!("probe-{round}.bench.example");
        let t = Instant::now();
        pusher.admin.update_dns(&entry_id, &dns).await?;
        pusher
            .deliver(agent, t, &mut updated, ("update", &id), |ctx| {
                svid_leaf(ctx, &id)
                    .filter(|l| *l != leaf.as_slice() && contains(l, dns.as_bytes()))
                    .map(|_| ())
            })
            .await?;

        let t = Instant::now();
        pusher.admin.delete(&entry_id).await?;
        pusher
            .deliver(agent, t, &mut deleted, ("deletion", &id), |ctx| {
                svid_leaf(ctx, &id).is_none().then_some(())
            })
            .await?;
        progress.update(round + 1);
    }
    progress.finish();

    let rounds = plan.s8_rounds;
    Ok(vec![
        row(
            created,
            format!(
                "entry create -> open workload stream, {n} agents, {rounds} creates on random agents"
            ),
            floors,
        ),
        row(
            updated,
            format!("entry update (dns_names) -> re-signed SVID on the stream, {n} agents"),
            floors,
        ),
        row(
            deleted,
            format!("entry delete -> SVID withdrawn from the stream, {n} agents"),
            floors,
        ),
    ])
}

/// Registers `n` agents with one entry each for this process, starts them syncing hourly and
/// opens one stream to each.
async fn start_fleet(env: &mut Env, n: usize) -> anyhow::Result<Vec<Agent>> {
    let uid = nix::unistd::getuid().as_raw();
    // Tokens and first entries before any agent starts: each agent's first sync has its entry.
    let mut tokens = Vec::with_capacity(n);
    let mut parents = Vec::with_capacity(n);
    let mut first = Vec::with_capacity(n);
    for i in 0..n {
        let token = env.token().await?;
        let parent = format!("/spire/agent/join_token/{token}");
        first.push(entry(&format!("/bench/fleet/{i}/initial"), &parent, uid));
        tokens.push(token);
        parents.push(parent);
    }
    let first_entries = Admin::new(env.admin.clone()).create(first).await?;

    let started = Instant::now();
    let mut progress = Progress::new("S8 starting agents", n);
    let mut sockets = Vec::with_capacity(n);
    for (i, token) in tokens.iter().enumerate() {
        let (socket, _pid) = env
            .start_agent_with(token, &format!("fleet-{i}"), &["--sync-interval", "1h"])
            .await?;
        sockets.push(socket);
        progress.update(i + 1);
    }
    progress.finish();
    let mut progress = Progress::new("S8 opening one stream per agent", n);
    let mut agents = Vec::with_capacity(n);
    let fleet = sockets.into_iter().zip(parents).zip(first_entries);
    for (i, ((socket, parent), first_entry)) in fleet.enumerate() {
        let id = spiffe_id(&format!("/bench/fleet/{i}/initial"));
        agents.push(Agent {
            stream: open_stream(&EndpointAddr::Unix(socket), &id).await?,
            parent,
            first_entry,
        });
        progress.update(i + 1);
    }
    progress.finish();
    eprintln!(
        "S8: {n} agents started and streaming in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(agents)
}

/// Makes changes through the admin API and follows them to the streams.
struct Pusher {
    admin: Admin,
    /// Changes made to first entries so far, to force syncs after lost pushes.
    touches: usize,
}

impl Pusher {
    /// Waits until `agent`'s stream shows what `found` looks for, recording the time since `t`
    /// in `samples`. After [`LOST_AFTER`] the push counts as lost: the agent's first entry is
    /// changed (another push, whose sync brings the lost change along) until `found` succeeds.
    async fn deliver<T>(
        &mut self,
        agent: &mut Agent,
        t: Instant,
        samples: &mut Samples,
        (change, id): (&str, &str),
        mut found: impl FnMut(&X509Context) -> Option<T>,
    ) -> anyhow::Result<T> {
        if let Some(v) = until(&mut agent.stream, change, id, LOST_AFTER, &mut found).await? {
            samples.ms.push(ms_since(t));
            return Ok(v);
        }
        samples.ms.push(f64::INFINITY);
        samples.lost += 1;
        eprintln!("S8: the push for the {change} of {id} was lost; forcing a sync");
        loop {
            anyhow::ensure!(
                t.elapsed() < GIVE_UP_AFTER,
                "the {change} of {id} did not reach the workload stream within \
                 {GIVE_UP_AFTER:?}, even after changing the agent's first entry to force a sync"
            );
            self.touches += 1;
            let dns = format!("touch-{}.bench.example", self.touches);
            self.admin.update_dns(&agent.first_entry, &dns).await?;
            if let Some(v) = until(&mut agent.stream, change, id, LOST_AFTER, &mut found).await? {
                return Ok(v);
            }
        }
    }
}

/// A stream from the agent at `addr` that has carried `id`; retries while the agent is still
/// attesting or signing (it refuses callers it holds no identity for yet).
async fn open_stream(addr: &EndpointAddr, id: &str) -> anyhow::Result<X509Stream> {
    let deadline = Instant::now() + GIVE_UP_AFTER;
    let mut first = |ctx: &X509Context| svid_leaf(ctx, id).map(|_| ());
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Ok(mut client) = WorkloadClient::connect(addr).await
            && let Ok(stream) = client.watch_x509_context().await
        {
            let mut stream: X509Stream = Box::pin(stream);
            if let Ok(Some(())) = until(&mut stream, "first delivery", id, left, &mut first).await {
                return Ok(stream);
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{id} never reached a stream of {addr:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `stream` until `found` returns something; `None` when `within` passed first.
async fn until<T>(
    stream: &mut X509Stream,
    change: &str,
    id: &str,
    within: Duration,
    found: &mut impl FnMut(&X509Context) -> Option<T>,
) -> anyhow::Result<Option<T>> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let Ok(next) = tokio::time::timeout_at(deadline, stream.next()).await else {
            return Ok(None);
        };
        let ctx = next.ok_or_else(|| {
            anyhow::anyhow!("the stream ended waiting for the {change} of {id}")
        })??;
        if let Some(v) = found(&ctx) {
            return Ok(Some(v));
        }
    }
}

/// The leaf certificate of `id`'s SVID in `ctx`, if it holds one.
fn svid_leaf<'a>(ctx: &'a X509Context, id: &str) -> Option<&'a [u8]> {
    ctx.svids
        .iter()
        .find(|s| s.spiffe_id().as_str() == id)
        .map(|s| s.leaf().as_ref())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn spiffe_id(path: &str) -> String {
    format!("spiffe://{TD}{path}")
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// A uniform index below `n` (the modulo bias is negligible for fleet sizes).
fn random_below(rng: &SystemRandom, n: usize) -> anyhow::Result<usize> {
    let mut bytes = [0u8; 8];
    rng.fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
    Ok((u64::from_le_bytes(bytes) % n as u64) as usize)
}

/// An S8 row: p50 measured; p99, max and lost pushes in the name, and without the lost ones
/// when there are any; against one socketpair round trip.
fn row(mut samples: Samples, what: String, floors: &Floors) -> Row {
    let total = samples.ms.len();
    let p50 = percentile(&mut samples.ms, 50.0);
    let p99 = percentile(&mut samples.ms, 99.0);
    let max = percentile(&mut samples.ms, 100.0);
    let lost = match samples.lost {
        0 => format!("no push lost of {total}"),
        n => {
            let mut delivered: Vec<f64> = samples
                .ms
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            format!(
                "{n} of {total} pushes lost, counted as infinite; the delivered ones: p99 {:.1} \
                 ms, max {:.1} ms",
                percentile(&mut delivered, 99.0),
                percentile(&mut delivered, 100.0)
            )
        }
    };
    let floor = floors.socketpair_rtt_us / 1e3;
    Row {
        id: "S8",
        name: format!("{what} (p50; p99 {p99:.1} ms, max {max:.1} ms; {lost})"),
        measured: p50,
        unit: "ms",
        floor,
        floor_what: "unix socketpair round trip",
        ratio: p50 / floor,
        target: "p50 < 200 ms, p99 < 1 s (at 5k agents), nothing lost".into(),
        spire: "<= 10 s by design, 7 s observed, 30-60 s at scale",
    }
}
