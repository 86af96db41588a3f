//! Benchmarks seen from a workload: a real `lanyard agent run` process serves this process
//! (matched by its uid) through the Workload API.

use std::time::{Duration, Instant};

use futures::StreamExt;
use lanyard_proto::spire::api::server::localauthority::v1::PrepareX509AuthorityRequest;
use lanyard_proto::spire::api::server::localauthority::v1::local_authority_client::LocalAuthorityClient;
use lanyard_workload::EndpointAddr;
use lanyard_workload::client::WorkloadClient;

use crate::Plan;
use crate::calibrate::Floors;
use crate::procs::{Env, entry, rss_bytes};
use crate::progress::Progress;
use crate::rawclient;
use crate::report::{Row, percentile};

/// S9 (first FetchX509SVID message), S8 (entry create to workload) and the agent's RSS.
pub(crate) async fn run(env: &mut Env, plan: &Plan, floors: &Floors) -> anyhow::Result<Vec<Row>> {
    let uid = nix::unistd::getuid().as_raw();
    let token = env.token().await?;
    let agent_path = format!("/spire/agent/join_token/{token}");
    env.create_entries(vec![entry("/bench/workload", &agent_path, uid)])
        .await?;
    // Room for every SVID of the S6 row: it measures what a cached SVID costs.
    let cache_size = (plan.cached_svids + 100).to_string();
    let (socket, pid) = env
        .start_agent_with(
            &token,
            "workload-agent",
            &["--x509-svid-cache-max-size", &cache_size],
        )
        .await?;
    let addr = EndpointAddr::Unix(socket.clone());
    wait_for_identity(
        &addr,
        "spiffe://example.org/bench/workload",
        Duration::from_secs(60),
    )
    .await?;

    let mut rows = first_fetch(&addr, plan, floors).await?;
    rows.push(propagation(env, &addr, &agent_path, uid, plan, floors).await?);
    rows.push(agent_rss(env, &addr, &agent_path, uid, pid, plan).await?);
    rows.extend(streams(env, &addr, pid, plan, floors).await?);
    Ok(rows)
}

async fn wait_for_identity(addr: &EndpointAddr, id: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
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

/// S9: a new connection, then the first FetchX509SVID message, as a freshly started workload
/// sees it: once with a bare client (the message received and decoded: the agent's and the
/// transport's share), once with our client library, which also checks every certificate and
/// that the key matches.
async fn first_fetch(
    addr: &EndpointAddr,
    plan: &Plan,
    floors: &Floors,
) -> anyhow::Result<Vec<Row>> {
    let EndpointAddr::Unix(path) = addr else {
        anyhow::bail!("the agent serves a unix socket");
    };
    let mut progress = Progress::new("S9 first FetchX509SVID message", plan.fetches);
    let mut raw = Vec::with_capacity(plan.fetches);
    for i in 0..plan.fetches {
        let t = Instant::now();
        let mut client = rawclient::connect(path).await?;
        rawclient::open_x509(&mut client).await?;
        raw.push(t.elapsed().as_secs_f64() * 1e6);
        progress.update(i + 1);
    }
    progress.finish();
    let parsed_count = plan.fetches / 4;
    let mut progress = Progress::new("S9 first X.509 context, client library", parsed_count);
    let mut parsed = Vec::with_capacity(parsed_count);
    for i in 0..parsed_count {
        let t = Instant::now();
        let mut client = WorkloadClient::connect(addr).await?;
        let ctx = client.fetch_x509_context().await?;
        parsed.push(t.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(!ctx.svids.is_empty(), "empty answer");
        progress.update(i + 1);
    }
    progress.finish();
    let row = |samples: &mut Vec<f64>, what: &str| {
        let p50 = percentile(samples, 50.0);
        let p99 = percentile(samples, 99.0);
        Row {
            id: "S9",
            name: format!(
                "first FetchX509SVID message, new connection, {what} (p50; p99 {p99:.0} us)"
            ),
            measured: p50,
            unit: "us",
            floor: floors.socketpair_rtt_us,
            floor_what: "unix socketpair round trip",
            ratio: p50 / floors.socketpair_rtt_us,
            target: "p50 <= 150 us, p99 <= 1 ms".into(),
            spire: "grpc-go transport alone ~100 us/call",
        }
    };
    Ok(vec![
        row(&mut raw, "bare client"),
        row(
            &mut parsed,
            "our client library (certificates and key checked)",
        ),
    ])
}

/// S8: an entry created through the admin API until an open workload stream carries it.
async fn propagation(
    env: &Env,
    addr: &EndpointAddr,
    agent_path: &str,
    uid: u32,
    plan: &Plan,
    floors: &Floors,
) -> anyhow::Result<Row> {
    let mut progress = Progress::new("S8 entry create to workload", plan.propagations);
    let mut client = WorkloadClient::connect(addr).await?;
    let mut stream = client.watch_x509_context().await?;
    stream.next().await.transpose()?;
    let mut samples = Vec::new();
    for i in 0..plan.propagations {
        let id = format!("spiffe://example.org/bench/propagated/{i}");
        let t = Instant::now();
        env.create_entries(vec![entry(
            &format!("/bench/propagated/{i}"),
            agent_path,
            uid,
        )])
        .await?;
        loop {
            let ctx = tokio::time::timeout(Duration::from_secs(60), stream.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("the stream ended"))??;
            if ctx.svids.iter().any(|s| s.spiffe_id().as_str() == id) {
                break;
            }
        }
        samples.push(t.elapsed().as_secs_f64() * 1e3);
        progress.update(i + 1);
    }
    progress.finish();
    let p50 = percentile(&mut samples, 50.0);
    let max = percentile(&mut samples, 100.0);
    Ok(Row {
        id: "S8",
        name: format!("entry create -> open workload stream (p50; max {max:.0} ms), 1 agent"),
        measured: p50,
        unit: "ms",
        floor: floors.socketpair_rtt_us / 1e3,
        floor_what: "unix socketpair round trip",
        ratio: p50 / (floors.socketpair_rtt_us / 1e3),
        target: "p50 < 200 ms, p99 < 1 s".into(),
        spire: "<= 10 s by design, 7 s observed",
    })
}

/// Agent RSS with `plan.cached_svids` authorized entries, each with a signed SVID.
async fn agent_rss(
    env: &Env,
    addr: &EndpointAddr,
    agent_path: &str,
    uid: u32,
    pid: u32,
    plan: &Plan,
) -> anyhow::Result<Row> {
    let before = rss_bytes(pid)?;
    let mut progress = Progress::new("RSS registering entries for the agent", plan.cached_svids);
    let entries: Vec<_> = (0..plan.cached_svids)
        .map(|j| {
            entry(
                &format!("/bench/cached/{j}"),
                agent_path,
                200_000 + j as u32,
            )
        })
        .collect();
    for (n, chunk) in entries.chunks(500).enumerate() {
        env.create_entries(chunk.to_vec()).await?;
        progress.update(((n + 1) * 500).min(plan.cached_svids));
    }
    progress.finish();
    // A marker entry for this process, created last: once it arrives, the agent has synced
    // (and signed SVIDs for) everything created before it.
    env.create_entries(vec![entry("/bench/marker", agent_path, uid)])
        .await?;
    wait_for_identity(
        addr,
        "spiffe://example.org/bench/marker",
        Duration::from_secs(600),
    )
    .await?;
    let after = rss_bytes(pid)?;
    let svid_payload = 522.0 + 138.0;
    let per_svid = after.saturating_sub(before) as f64 / plan.cached_svids as f64;
    Ok(Row {
        id: "S6",
        name: format!(
            "agent RSS {:.1} MB with {} cached SVIDs (bytes per cached SVID)",
            after as f64 / 1e6,
            plan.cached_svids
        ),
        measured: per_svid,
        unit: "B/SVID",
        floor: svid_payload,
        floor_what: "P-256 leaf DER + PKCS#8 key",
        ratio: per_svid / svid_payload,
        target: "<= 1 KB per cached SVID".into(),
        spire: "~3 KB per cached SVID",
    })
}

/// S12: many open FetchX509SVID streams on one agent (bare clients, as `rawclient`): memory
/// per stream, and how long one bundle change (the server preparing its next X.509
/// authority, which joins the trust bundle) takes to reach all of them once the agent has it.
async fn streams(
    env: &Env,
    addr: &EndpointAddr,
    pid: u32,
    plan: &Plan,
    floors: &Floors,
) -> anyhow::Result<Vec<Row>> {
    let EndpointAddr::Unix(path) = addr else {
        anyhow::bail!("the agent serves a unix socket");
    };
    let before = rss_bytes(pid)?;
    let mut progress = Progress::new("S12 opening Workload API streams", plan.streams);
    let mut open = Vec::with_capacity(plan.streams);
    let mut bundle = Vec::new();
    for i in 0..plan.streams {
        let mut client = rawclient::connect(path).await?;
        let (first, stream) = rawclient::open_x509(&mut client).await?;
        bundle = first.svids[0].bundle.clone();
        open.push((client, stream));
        progress.update(i + 1);
    }
    progress.finish();
    let after = rss_bytes(pid)?;
    let per_stream = after.saturating_sub(before) as f64 / plan.streams as f64;

    LocalAuthorityClient::new(env.admin.clone())
        .prepare_x509_authority(PrepareX509AuthorityRequest {})
        .await?;
    let progress = Progress::new("S12 bundle change reaching every stream", plan.streams);
    let old = &bundle;
    let arrivals = futures::future::join_all(open.iter_mut().map(|(_, stream)| async move {
        loop {
            match stream.message().await {
                Ok(Some(m)) if m.svids.first().is_some_and(|s| s.bundle != *old) => {
                    return Ok(Instant::now());
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err(anyhow::anyhow!("stream ended")),
                Err(e) => return Err(anyhow::anyhow!("stream failed: {e}")),
            }
        }
    }));
    let arrivals = tokio::time::timeout(Duration::from_secs(120), arrivals).await?;
    progress.finish();
    let arrivals: Vec<Instant> = arrivals.into_iter().collect::<anyhow::Result<_>>()?;
    let first = arrivals.iter().min().copied().unwrap_or_else(Instant::now);
    let last = arrivals.iter().max().copied().unwrap_or(first);
    let fan_out_ms = last.duration_since(first).as_secs_f64() * 1e3;
    let payload = 4096.0;
    Ok(vec![
        Row {
            id: "S12",
            name: format!(
                "agent RSS per open FetchX509SVID stream ({} streams)",
                plan.streams
            ),
            measured: per_stream,
            unit: "B/stream",
            floor: payload,
            floor_what: "one ~4 KB message buffered per stream",
            ratio: per_stream / payload,
            target: "<= 10 KB per stream".into(),
            spire: "450 SDS streams ~3.5 GB (leak, #5348)",
        },
        Row {
            id: "S12",
            name: format!(
                "one bundle change fanned out to {} open streams (first to last)",
                plan.streams
            ),
            measured: fan_out_ms,
            unit: "ms",
            floor: floors.socketpair_rtt_us * plan.streams as f64 / 1e3,
            floor_what: "one socketpair round trip per stream",
            ratio: fan_out_ms / (floors.socketpair_rtt_us * plan.streams as f64 / 1e3),
            target: "< 1 s to 10k streams".into(),
            spire: "not published",
        },
        shared_streams(path, pid, plan).await?,
    ])
}

/// Streams a connection carries in [`shared_streams`].
const STREAMS_PER_CONNECTION: usize = 100;

/// S12 with connections shared: `plan.streams` more streams, [`STREAMS_PER_CONNECTION`] to a
/// connection (as a proxy multiplexing its workloads' watches would), so the figure is what
/// a stream costs apart from its connection's buffers.
async fn shared_streams(path: &std::path::Path, pid: u32, plan: &Plan) -> anyhow::Result<Row> {
    let before = rss_bytes(pid)?;
    let mut progress = Progress::new("S12 streams sharing connections", plan.streams);
    let mut open = Vec::with_capacity(plan.streams);
    let mut client = rawclient::connect(path).await?;
    for i in 0..plan.streams {
        if i > 0 && i % STREAMS_PER_CONNECTION == 0 {
            client = rawclient::connect(path).await?;
        }
        open.push(rawclient::open_x509(&mut client).await?.1);
        progress.update(i + 1);
    }
    progress.finish();
    let per_stream = rss_bytes(pid)?.saturating_sub(before) as f64 / plan.streams as f64;
    drop(open);
    let payload = 4096.0;
    Ok(Row {
        id: "S12",
        name: format!(
            "agent RSS per open FetchX509SVID stream, {STREAMS_PER_CONNECTION} streams per connection ({} streams)",
            plan.streams
        ),
        measured: per_stream,
        unit: "B/stream",
        floor: payload,
        floor_what: "one ~4 KB message buffered per stream",
        ratio: per_stream / payload,
        target: "<= 10 KB per stream".into(),
        spire: "450 SDS streams ~3.5 GB (leak, #5348)",
    })
}
