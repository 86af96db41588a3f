//! `lanyard demo`: the whole system on this machine in one command.
//!
//! Starts a server (SQLite in a fresh folder) and an agent attested with a generated join
//! token, both in this process but talking over their real sockets; registers an entry for
//! the calling user (`unix:uid:<uid>`); then acts as a workload: fetches its X509-SVID
//! through the Workload API, validates it, and writes the files `openssl verify` accepts.

use crate::output::out;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use lanyard_agent::{AgentConfig, TrustBootstrap};
use lanyard_proto::spire::api::server::{
    agent::v1::{CreateJoinTokenRequest, agent_client::AgentClient},
    bundle::v1::{GetBundleRequest, bundle_client::BundleClient},
    entry::v1::{BatchCreateEntryRequest, entry_client::EntryClient},
};
use lanyard_proto::spire::api::types;
use lanyard_server::ServerConfig;
use lanyard_spiffe::{SpiffeId, TrustDomain};
use lanyard_workload::addr::EndpointAddr;
use lanyard_workload::client::{WorkloadClient, X509Context};
use rustls::pki_types::CertificateDer;

use crate::admin;
use crate::logging::{self, LogFormat};

/// How long the demo waits for the agent to serve the workload's first SVID.
const FIRST_SVID_DEADLINE: Duration = Duration::from_secs(30);

/// `lanyard demo`.
#[derive(clap::Args, Debug)]
pub(crate) struct DemoArgs {
    /// Folder for the demo's state and output; must be empty or absent. A fresh temporary
    /// folder by default.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Leave the server and agent running (renewing SVIDs) until Ctrl-C.
    #[arg(long)]
    keep_running: bool,
    /// Log level of the server and agent.
    #[arg(long, default_value = "warn", value_parser = ["error", "warn", "info", "debug", "trace"])]
    log_level: String,
}

impl DemoArgs {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        logging::init(&self.log_level, LogFormat::Text);
        let started = Instant::now();
        let dir = prepare_dir(self.dir.as_deref())?;
        let td = TrustDomain::new("example.org").map_err(|e| anyhow::anyhow!("{e}"))?;
        out!("Lanyard demo in {}", dir.display());

        // 1. The server, on an ephemeral loopback port.
        let mut config = ServerConfig::with_defaults(td.clone(), dir.join("server"));
        config.bind = "127.0.0.1:0".parse()?;
        config.socket_path = dir.join("server.sock");
        let server = lanyard_server::start(config.clone())
            .await
            .context("cannot start the server")?;
        out!(
            "  server   listening on {} (admin socket {})",
            server.agent_addr(),
            config.socket_path.display()
        );

        // 2. A join token and an entry for this user, through the admin API as an operator would.
        let admin_channel = admin::connect(&config.socket_path).await?;
        let token = AgentClient::new(admin_channel.clone())
            .create_join_token(CreateJoinTokenRequest::default())
            .await
            .map_err(|s| admin::rpc_error("join token", s))?
            .into_inner()
            .value;
        let agent_id = SpiffeId::from_segments(&td, &["spire", "agent", "join_token", &token])
            .map_err(|e| anyhow::anyhow!("agent ID: {e}"))?;
        let uid = nix::unistd::getuid().as_raw();
        let workload_id = SpiffeId::from_segments(&td, &["demo", "workload"])
            .map_err(|e| anyhow::anyhow!("workload ID: {e}"))?;
        create_entry(admin_channel.clone(), &workload_id, &agent_id, uid).await?;
        out!("  entry    {workload_id} for unix:uid:{uid}");

        // 3. The agent, trusting the server through its published bundle.
        let bundle_path = dir.join("bootstrap-bundle.pem");
        write_bootstrap_bundle(admin_channel, &bundle_path).await?;
        let socket = dir.join("agent.sock");
        let agent_config = AgentConfig {
            join_token: Some(token),
            socket_path: socket.clone(),
            sync_interval: Duration::from_secs(1),
            ..AgentConfig::new(
                td.clone(),
                dir.join("agent"),
                server.agent_addr().to_string(),
                TrustBootstrap::Pem(bundle_path),
            )
        };
        let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
        let agent = tokio::spawn(lanyard_agent::run(agent_config, async {
            let _ = agent_stopped.await;
        }));
        out!("  agent    {agent_id}");

        // 4. Be the workload.
        let addr = EndpointAddr::Unix(socket.clone());
        let context = first_context(&addr).await?;
        let svid = context
            .svids
            .first()
            .context("the Workload API answered without an SVID")?;
        verify(&context)?;
        let written = crate::svid_files::write(&dir, &context.svids, &context.bundles)?;
        let first = written.first().context("nothing was written")?;
        print_identity(svid, first);
        out!(
            "\nCheck it yourself:\n  openssl verify -CAfile {} {}",
            first.bundle.display(),
            first.svid.display()
        );
        jwt_round_trip(&addr).await?;
        out!("\nDone in {:.2}s.", started.elapsed().as_secs_f64());

        if self.keep_running {
            out!("\nServer and agent keep running and renewing; press Ctrl-C to stop.");
            out!("SPIFFE_ENDPOINT_SOCKET=unix://{}", socket.display());
            super::shutdown_signal().await;
        }
        let _ = stop_agent.send(());
        let _ = agent.await;
        server
            .stop()
            .await
            .context("server stopped with an error")?;
        Ok(())
    }
}

fn prepare_dir(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir().join(format!(
            "lanyard-demo-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        )),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        anyhow::bail!(
            "--dir {}: the folder is not empty; the demo needs a fresh one",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(std::fs::canonicalize(&dir)?)
}

async fn create_entry(
    channel: tonic::transport::Channel,
    workload: &SpiffeId,
    parent: &SpiffeId,
    uid: u32,
) -> anyhow::Result<()> {
    let result = EntryClient::new(channel)
        .batch_create_entry(BatchCreateEntryRequest {
            entries: vec![types::Entry {
                spiffe_id: Some(crate::output::wire_id(workload)),
                parent_id: Some(crate::output::wire_id(parent)),
                selectors: vec![types::Selector {
                    r#type: "unix".into(),
                    value: format!("uid:{uid}"),
                }],
                ..Default::default()
            }],
            output_mask: None,
        })
        .await
        .map_err(|s| admin::rpc_error("entry", s))?
        .into_inner();
    let status = result
        .results
        .first()
        .and_then(|r| r.status.clone())
        .unwrap_or_default();
    if status.code != 0 {
        anyhow::bail!("cannot create the demo entry: {}", status.message);
    }
    Ok(())
}

async fn write_bootstrap_bundle(
    channel: tonic::transport::Channel,
    path: &Path,
) -> anyhow::Result<()> {
    let bundle = BundleClient::new(channel)
        .get_bundle(GetBundleRequest::default())
        .await
        .map_err(|s| admin::rpc_error("bundle", s))?
        .into_inner();
    let certs: Vec<CertificateDer<'static>> = bundle
        .x509_authorities
        .into_iter()
        .map(|a| CertificateDer::from(a.asn1))
        .collect();
    std::fs::write(path, lanyard_spiffe::x509::certs_to_pem(&certs))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Polls until the agent has attested, synced and signed the workload's SVID.
async fn first_context(addr: &EndpointAddr) -> anyhow::Result<X509Context> {
    let deadline = Instant::now() + FIRST_SVID_DEADLINE;
    let mut last_error = String::from("no attempt made");
    while Instant::now() < deadline {
        match WorkloadClient::connect(addr).await {
            Ok(mut client) => match client.fetch_x509_context().await {
                Ok(context) => return Ok(context),
                Err(e) => last_error = e.to_string(),
            },
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("no SVID within {FIRST_SVID_DEADLINE:?}: {last_error}")
}

/// The audience of the demo's JWT-SVID.
const JWT_AUDIENCE: &str = "demo";

/// Fetches a JWT-SVID, has the agent validate it, and prints its claims.
async fn jwt_round_trip(addr: &EndpointAddr) -> anyhow::Result<()> {
    let mut client = WorkloadClient::connect(addr).await?;
    let svids = client
        .fetch_jwt_svids(&[JWT_AUDIENCE.to_string()], None)
        .await
        .context("the Workload API refused to give a JWT-SVID")?;
    let svid = svids
        .first()
        .context("the Workload API answered without a JWT-SVID")?;
    let (id, claims) = client
        .validate_jwt_svid(JWT_AUDIENCE, &svid.token)
        .await
        .context("the agent did not accept its own JWT-SVID")?;
    out!("\nJWT-SVID for audience {JWT_AUDIENCE:?}, validated by the agent as {id}");
    for (name, value) in &claims {
        out!("  {name:<4} {value}");
    }
    out!(
        "\nCheck it yourself:\n  lanyard agent api fetch jwt --audience {JWT_AUDIENCE} --socket {addr}"
    );
    Ok(())
}

/// Validates the SVID the way a peer would: chain to the bundle of its own trust domain.
fn verify(context: &X509Context) -> anyhow::Result<()> {
    let svid = context.svids.first().context("no SVID")?;
    let own = svid.spiffe_id().trust_domain();
    let bundle = context
        .bundles
        .iter()
        .find(|b| *b.trust_domain() == own)
        .context("no bundle for the SVID's trust domain")?;
    let id = lanyard_spiffe::x509::verify_chain(svid.chain(), bundle, SystemTime::now())
        .context("the SVID does not verify against its bundle")?;
    anyhow::ensure!(
        id == *svid.spiffe_id(),
        "verified ID {id} differs from the SVID's"
    );
    Ok(())
}

fn print_identity(svid: &lanyard_spiffe::X509Svid, files: &crate::svid_files::WrittenSvid) {
    let not_before = svid.not_before();
    let not_after = svid.not_after();
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    let rotates = not_before + lifetime / 2;
    out!("\nThis process is {}", svid.spiffe_id());
    out!(
        "  valid until  {}",
        humantime::format_rfc3339_seconds(not_after)
    );
    out!(
        "  rotates at   {} (half its lifetime)",
        humantime::format_rfc3339_seconds(rotates)
    );
    out!("  certificate  {}", files.svid.display());
    out!("  private key  {}", files.key.display());
    out!("  trust bundle {}", files.bundle.display());
}
