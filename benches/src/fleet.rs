//! A simulated fleet in one process: many agents as lightweight tasks, each attested with
//! its own join token and holding its own mTLS connection with its own SVID, against one real
//! server on loopback. Agents are spread over 127.0.0.x source addresses so ephemeral ports
//! do not run out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use lanyard_proto::spire::api::server::agent::v1::{
    AgentX509svidParams, AttestAgentRequest, agent_client::AgentClient, attest_agent_request,
    attest_agent_response,
};
use lanyard_proto::spire::api::server::entry::v1::{
    GetAuthorizedEntriesRequest, entry_client::EntryClient,
};
use lanyard_proto::spire::api::server::svid::v1::{
    BatchNewX509svidRequest, NewX509svidParams, svid_client::SvidClient,
};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::tls::{Authorizer, SpiffeServerVerifier, crypto_provider};
use lanyard_spiffe::{BundleSource, SpiffeId, TrustDomain, X509Svid};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint};

use crate::Plan;
use crate::calibrate::Floors;
use crate::procs::{Env, TD, entry};
use crate::progress::Progress;
use crate::report::Row;

/// How many agents attest at the same time.
const ATTEST_CONCURRENCY: usize = 32;
/// CSRs per BatchNewX509SVID request, as the agent sends them.
const BATCH: usize = 500;
/// Distinct workload keys; the server verifies every CSR whichever key it carries.
const CSR_POOL: usize = 32;

/// One simulated agent.
struct SimAgent {
    /// Path of the agent's SPIFFE ID.
    path: String,
    channel: Channel,
}

/// S2: X509-SVID issuance through BatchNewX509SVID over mTLS from the simulated fleet.
pub(crate) async fn issuance(env: &Env, plan: &Plan, floors: &Floors) -> anyhow::Result<Row> {
    raise_fd_limit();
    let server: SocketAddr = env.addr.parse()?;
    let bundle: Arc<dyn BundleSource> = Arc::new(env.bundle().await?);
    let td = TrustDomain::new(TD)?;
    let server_id = SpiffeId::from_segments(&td, &["spire", "server"])?;

    let mut progress = Progress::new("S2 attesting simulated agents", plan.agents);
    let done = AtomicUsize::new(0);
    let agents: Vec<SimAgent> = futures::stream::iter(0..plan.agents)
        .map(|i| {
            let bundle = bundle.clone();
            let server_id = server_id.clone();
            async move { attest(env, i, server, bundle, server_id).await }
        })
        .buffer_unordered(ATTEST_CONCURRENCY)
        .inspect(|_| {
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress.update(n);
        })
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    progress.finish();

    let total_entries = plan.agents * plan.entries_per_agent;
    let mut progress = Progress::new("S2 registering entries", total_entries);
    let mut entries = Vec::with_capacity(BATCH);
    for (i, agent) in agents.iter().enumerate() {
        for j in 0..plan.entries_per_agent {
            entries.push(entry(
                &format!("/fleet/{i}/{j}"),
                &agent.path,
                100_000 + j as u32,
            ));
            if entries.len() == BATCH {
                env.create_entries(std::mem::take(&mut entries)).await?;
                progress.update(i * plan.entries_per_agent + j + 1);
            }
        }
    }
    env.create_entries(entries).await?;
    progress.finish();

    let csrs = Arc::new(csr_pool()?);
    let expected = total_entries * plan.issue_rounds;
    let mut progress = Progress::new("S2 issuing X509-SVIDs", expected);
    let issued = AtomicUsize::new(0);
    let started = Instant::now();
    let results = futures::future::join_all(agents.iter().map(|agent| {
        let csrs = csrs.clone();
        let issued = &issued;
        async move { issue_all(agent, &csrs, plan.issue_rounds, issued).await }
    }));
    let ticker = async {
        loop {
            progress.update(issued.load(Ordering::Relaxed));
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    let results = tokio::select! {
        r = results => r,
        () = ticker => unreachable_ticker(),
    };
    let elapsed = started.elapsed().as_secs_f64();
    progress.finish();
    for r in results {
        r?;
    }
    let count = issued.load(Ordering::Relaxed);
    anyhow::ensure!(count == expected, "{count} of {expected} SVIDs issued");

    let rate = count as f64 / elapsed;
    let floor = floors.issuance_per_sec();
    Ok(Row {
        id: "S2",
        name: format!(
            "X509-SVID issuance, BatchNewX509SVID over mTLS ({} agents x {} entries)",
            plan.agents, plan.entries_per_agent
        ),
        measured: rate,
        unit: "SVIDs/s",
        floor,
        floor_what: "CSR verify + leaf sign, all cores",
        ratio: rate / floor,
        target: ">= 0.60 of floor".into(),
        spire: "none published; 500 signs/s per agent IP rate limit",
    })
}

fn unreachable_ticker() -> Vec<anyhow::Result<()>> {
    Vec::new()
}

async fn issue_all(
    agent: &SimAgent,
    csrs: &[Vec<u8>],
    rounds: usize,
    issued: &AtomicUsize,
) -> anyhow::Result<()> {
    let entries = EntryClient::new(agent.channel.clone())
        .get_authorized_entries(GetAuthorizedEntriesRequest { output_mask: None })
        .await?
        .into_inner()
        .entries;
    let mut svid = SvidClient::new(agent.channel.clone());
    for _ in 0..rounds {
        for chunk in entries.chunks(BATCH) {
            let params = chunk
                .iter()
                .enumerate()
                .map(|(k, e)| NewX509svidParams {
                    entry_id: e.id.clone(),
                    csr: csrs[k % csrs.len()].clone(),
                })
                .collect();
            let results = svid
                .batch_new_x509svid(BatchNewX509svidRequest { params })
                .await?
                .into_inner()
                .results;
            let ok = results
                .iter()
                .filter(|r| r.status.as_ref().is_some_and(|s| s.code == 0))
                .count();
            anyhow::ensure!(
                ok == chunk.len(),
                "{} of {} CSRs refused",
                chunk.len() - ok,
                chunk.len()
            );
            issued.fetch_add(ok, Ordering::Relaxed);
        }
    }
    Ok(())
}

fn csr_pool() -> anyhow::Result<Vec<Vec<u8>>> {
    (0..CSR_POOL)
        .map(|_| {
            let key = lanyard_ca::generate_key_pair(lanyard_ca::KeyType::EcP256)?;
            Ok(lanyard_ca::make_csr(&key, None)?)
        })
        .collect()
}

/// Attests agent `i` with a fresh join token and opens its mTLS connection.
async fn attest(
    env: &Env,
    i: usize,
    server: SocketAddr,
    bundle: Arc<dyn BundleSource>,
    server_id: SpiffeId,
) -> anyhow::Result<SimAgent> {
    let token = env.token().await?;
    let key = lanyard_ca::generate_key_pair(lanyard_ca::KeyType::EcP256)?;
    let csr = lanyard_ca::make_csr(&key, None)?;
    let verifier = Arc::new(SpiffeServerVerifier::new(
        bundle.clone(),
        Authorizer::Exact(server_id.clone()),
    ));
    let mut anonymous = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    anonymous.alpn_protocols = vec![b"h2".to_vec()];
    let source = source_addr(i);
    let channel = connect(server, source, anonymous).await?;

    let request = AttestAgentRequest {
        step: Some(attest_agent_request::Step::Params(
            attest_agent_request::Params {
                data: Some(types::AttestationData {
                    r#type: "join_token".into(),
                    payload: token.into_bytes(),
                }),
                params: Some(AgentX509svidParams { csr }),
            },
        )),
    };
    let mut responses = AgentClient::new(channel)
        .attest_agent(futures::stream::iter([request]))
        .await?
        .into_inner();
    let result = match responses.message().await?.and_then(|m| m.step) {
        Some(attest_agent_response::Step::Result(r)) => r,
        _ => anyhow::bail!("attestation answered without a result"),
    };
    let wire = result.svid.context("attestation result without an SVID")?;
    let chain: Vec<u8> = wire.cert_chain.concat();
    let svid = X509Svid::parse_der(&chain, &key.serialize_der())?;
    let path = svid.spiffe_id().path().to_string();

    let mut mtls = lanyard_spiffe::tls::client_config(&svid, bundle, Authorizer::Exact(server_id))?;
    mtls.alpn_protocols = vec![b"h2".to_vec()];
    let channel = connect(server, source, mtls).await?;
    Ok(SimAgent { path, channel })
}

/// 127.0.0.2 to 127.0.0.251, round robin.
fn source_addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 250) as u8))
}

async fn connect(server: SocketAddr, source: IpAddr, tls: ClientConfig) -> anyhow::Result<Channel> {
    let connector = TlsConnector::from(Arc::new(tls));
    let channel = Endpoint::from_static("http://lanyard-server")
        .connect_with_connector(tower::service_fn(move |_| {
            let connector = connector.clone();
            async move {
                let socket = TcpSocket::new_v4()?;
                socket.bind(SocketAddr::new(source, 0))?;
                let tcp = socket.connect(server).await?;
                let name = ServerName::try_from("lanyard-server").map_err(std::io::Error::other)?;
                let tls = connector.connect(name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await?;
    Ok(channel)
}

/// Lifts the open-files limit to the hard limit; a large fleet needs a descriptor per agent
/// connection on both sides.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
