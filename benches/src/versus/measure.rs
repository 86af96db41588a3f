//! The side-by-side measurements on running deployments: idle agents, first fetches on new
//! connections, entry changes reaching an open stream, and server signing throughput.
//!
//! Where both systems can be measured in the same moment (idle cost, propagation) they are,
//! so they share the machine's noise; where one would disturb the other (latency samples,
//! CPU-bound signing) they take turns, sample by sample or window by window.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use lanyard_proto::spire::api::server::svid::v1::{MintX509svidRequest, svid_client::SvidClient};
use lanyard_proto::spire::api::types;
use lanyard_proto::workload::X509svidResponse;
use tonic::Streaming;

use crate::cpu::{clock_ticks_per_sec, cpu_ticks_all, settle};
use crate::procs::{TD, entry, rss_bytes};
use crate::rawclient;
use crate::report::percentile;
use crate::versus::deploy::Server;

/// Mint calls in flight at once: enough to keep both cores of the server busy.
const MINT_IN_FLIGHT: usize = 16;

/// Idle cost of each agent over one shared window.
pub(crate) struct IdleCost {
    /// Percent of one core, per agent in the order given.
    pub(crate) cpu_pct: Vec<f64>,
    /// Resident memory at the end of the window, bytes.
    pub(crate) rss: Vec<u64>,
    /// One clock tick over the window, in percent of a core: the resolution.
    pub(crate) resolution_pct: f64,
    pub(crate) window: Duration,
}

/// Lets the agents `pids` go quiet, then samples their CPU time and memory over `window`.
pub(crate) async fn idle(pids: &[u32], window: Duration) -> anyhow::Result<IdleCost> {
    let settled = settle(pids).await?;
    eprintln!(
        "versus: agents quiet after {:.0} s; sampling {} s",
        settled.as_secs_f64(),
        window.as_secs()
    );
    let before = cpu_ticks_all(pids)?;
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let after = cpu_ticks_all(pids)?;
    let window = started.elapsed();
    let hz = clock_ticks_per_sec() as f64;
    let cpu_pct = before
        .iter()
        .zip(&after)
        .map(|(b, a)| a.saturating_sub(*b) as f64 / hz / window.as_secs_f64() * 100.0)
        .collect();
    let rss = pids
        .iter()
        .map(|p| rss_bytes(*p))
        .collect::<anyhow::Result<_>>()?;
    Ok(IdleCost {
        cpu_pct,
        rss,
        resolution_pct: 100.0 / hz / window.as_secs_f64(),
        window,
    })
}

/// Latency percentiles, milliseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
}

impl Latency {
    fn of(samples: &mut [f64]) -> Self {
        Self {
            p50: percentile(samples, 50.0),
            p99: percentile(samples, 99.0),
        }
    }
}

/// `samples` first `FetchX509SVID` messages on a new connection from each socket, taking
/// turns sample by sample; percentiles per socket, in the order given.
pub(crate) async fn first_fetch(sockets: &[&Path], samples: usize) -> anyhow::Result<Vec<Latency>> {
    let mut ms: Vec<Vec<f64>> = vec![Vec::with_capacity(samples); sockets.len()];
    // Unmeasured warm-up: each agent's first answers fill caches once.
    for socket in sockets {
        for _ in 0..10 {
            one_fetch(socket).await?;
        }
    }
    for _ in 0..samples {
        for (k, socket) in sockets.iter().enumerate() {
            ms[k].push(one_fetch(socket).await?.as_secs_f64() * 1e3);
        }
    }
    Ok(ms.iter_mut().map(|s| Latency::of(s)).collect())
}

/// Connect, open `FetchX509SVID`, first message: the time a new workload waits.
async fn one_fetch(socket: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut client = rawclient::connect(socket).await?;
    rawclient::open_x509(&mut client).await?;
    Ok(started.elapsed())
}

/// One stream per agent open while `rounds` entries for this process are created, one per
/// round on every server at the same moment; per server, the delays from the create call's
/// start until a stream message carries the new SPIFFE ID.
pub(crate) async fn propagation(
    pairs: &[(&Server, &Path, String)],
    rounds: usize,
) -> anyhow::Result<Vec<Latency>> {
    let uid = nix::unistd::getuid().as_raw();
    let mut streams = Vec::with_capacity(pairs.len());
    for (_, socket, _) in pairs {
        let mut client = rawclient::connect(socket).await?;
        let (_, stream) = rawclient::open_x509(&mut client).await?;
        streams.push((client, stream));
    }
    let mut ms: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); pairs.len()];
    for round in 0..rounds {
        let path = format!("/versus/propagate/{round}");
        let id = format!("spiffe://{TD}{path}");
        let waits = pairs.iter().zip(streams.iter_mut()).map(|(pair, stream)| {
            let (server, _, parent) = pair;
            let entry = entry(&path, parent, uid);
            let id = id.as_str();
            async move {
                let started = Instant::now();
                server.create_entries(vec![entry]).await?;
                wait_for(&mut stream.1, id).await?;
                anyhow::Ok(started.elapsed())
            }
        });
        let delays = futures::future::try_join_all(waits).await?;
        for (k, delay) in delays.into_iter().enumerate() {
            ms[k].push(delay.as_secs_f64() * 1e3);
        }
    }
    Ok(ms.iter_mut().map(|s| Latency::of(s)).collect())
}

/// Reads `stream` until a message lists `id` (at most a minute).
async fn wait_for(stream: &mut Streaming<X509svidResponse>, id: &str) -> anyhow::Result<()> {
    let deadline = Duration::from_secs(60);
    tokio::time::timeout(deadline, async {
        loop {
            let message = stream
                .message()
                .await?
                .context("the agent ended the stream")?;
            if message.svids.iter().any(|s| s.spiffe_id == id) {
                return anyhow::Ok(());
            }
        }
    })
    .await
    .with_context(|| format!("{id} did not reach the open stream within a minute"))?
}

/// X509-SVIDs per second the server signs through `MintX509SVID` on its admin socket over
/// `window`, [`MINT_IN_FLIGHT`] calls at a time, all for one CSR made here (so the figure
/// is the server's: parse, check, sign, encode, and no key generation on either side).
pub(crate) async fn mint_throughput(server: &Server, window: Duration) -> anyhow::Result<f64> {
    let csr = csr()?;
    let client = SvidClient::new(server.admin.clone());
    // Warm-up, unmeasured, and a check that the answer is an SVID.
    let answer = client
        .clone()
        .mint_x509svid(MintX509svidRequest {
            csr: csr.clone(),
            ttl: 0,
        })
        .await?
        .into_inner();
    let svid: types::X509svid = answer
        .svid
        .context("MintX509SVID answered without an SVID")?;
    anyhow::ensure!(!svid.cert_chain.is_empty(), "MintX509SVID: empty chain");
    let started = Instant::now();
    let deadline = started + window;
    let workers = (0..MINT_IN_FLIGHT).map(|_| {
        let mut client = client.clone();
        let csr = csr.clone();
        tokio::spawn(async move {
            let mut signed = 0u64;
            while Instant::now() < deadline {
                client
                    .mint_x509svid(MintX509svidRequest {
                        csr: csr.clone(),
                        ttl: 0,
                    })
                    .await?;
                signed += 1;
            }
            anyhow::Ok(signed)
        })
    });
    let mut signed = 0;
    for worker in futures::future::join_all(workers).await {
        signed += worker??;
    }
    Ok(signed as f64 / started.elapsed().as_secs_f64())
}

/// A PKCS#10 request for `spiffe://example.org/versus/mint`, P-256.
fn csr() -> anyhow::Result<Vec<u8>> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.subject_alt_names = vec![rcgen::SanType::URI(rcgen::string::Ia5String::try_from(
        format!("spiffe://{TD}/versus/mint"),
    )?)];
    Ok(params.serialize_request(&key)?.der().to_vec())
}
