//! `lanyard agent ...`: run the agent, and the workload-side `api` commands.

use crate::output::out;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lanyard_agent::{AgentConfig, TrustBootstrap};
use lanyard_ca::KeyType;
use lanyard_spiffe::TrustDomain;
use lanyard_workload::addr::EndpointAddr;
use lanyard_workload::client::{WorkloadClient, X509Context};

use super::OutputFormat;
use super::server::parse_trust_domain;
use crate::logging::{self, LogFormat};

/// Where the agent serves the Workload API unless configured.
pub(crate) const DEFAULT_AGENT_SOCKET: &str = "/tmp/lanyard-agent/public/api.sock";

/// `lanyard agent`.
#[derive(clap::Args, Debug)]
pub(crate) struct AgentArgs {
    #[command(subcommand)]
    command: AgentCommand,
}

#[derive(clap::Subcommand, Debug)]
enum AgentCommand {
    /// Run the agent until SIGINT or SIGTERM.
    Run(RunArgs),
    /// Use the Workload API as a workload would.
    #[command(subcommand)]
    Api(ApiCommand),
}

/// Flags of `lanyard agent run`; each mirrors a SPIRE `agent {}` key.
#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Trust domain of the server.
    #[arg(long, default_value = "example.org", value_parser = parse_trust_domain)]
    trust_domain: TrustDomain,
    /// Directory for the agent's key, SVID and bundle.
    #[arg(long, default_value = ".lanyard/agent")]
    data_dir: PathBuf,
    /// The server's agent API, host:port.
    #[arg(long, default_value = "127.0.0.1:8081")]
    server_address: String,
    /// Join token for the first attestation; not needed once the agent has an SVID.
    #[arg(long)]
    join_token: Option<String>,
    /// PEM file with the server's CA certificates, used to authenticate the server.
    #[arg(long, required_unless_present = "insecure_bootstrap")]
    trust_bundle: Option<PathBuf>,
    /// Trust whatever server answers on the first connection (overrides the default of
    /// requiring --trust-bundle). Only for experiments: it allows a man in the middle.
    #[arg(long, conflicts_with = "trust_bundle")]
    insecure_bootstrap: bool,
    /// Unix socket of the Workload API.
    #[arg(long, default_value = DEFAULT_AGENT_SOCKET)]
    socket: PathBuf,
    /// How often the agent asks the server for entry and bundle changes.
    #[arg(long, default_value = "5s", value_parser = crate::duration::parse)]
    sync_interval: Duration,
    /// Key type of workload X509-SVIDs: ec-p256, ec-p384 or rsa-2048.
    #[arg(long, default_value = "ec-p256")]
    workload_x509_svid_key_type: KeyType,
    /// Log level.
    #[arg(long, default_value = "info", value_parser = ["error", "warn", "info", "debug", "trace"])]
    log_level: String,
    /// Log format.
    #[arg(long, value_enum, default_value_t)]
    log_format: LogFormat,
}

#[derive(clap::Subcommand, Debug)]
enum ApiCommand {
    /// Fetch identities.
    #[command(subcommand)]
    Fetch(FetchCommand),
}

#[derive(clap::Subcommand, Debug)]
enum FetchCommand {
    /// Fetch this process's X509-SVIDs and bundles.
    X509(FetchX509Args),
}

#[derive(clap::Args, Debug)]
struct FetchX509Args {
    /// Workload API socket: a path, `unix:///path` or `tcp://IP:PORT`; defaults to
    /// $SPIFFE_ENDPOINT_SOCKET, then to the agent's default socket.
    #[arg(long)]
    socket: Option<String>,
    /// Write svid.N.pem, svid.N.key and bundle.N.pem into this directory.
    #[arg(long)]
    write: Option<PathBuf>,
    /// Give up after this long without an answer.
    #[arg(long, default_value = "5s", value_parser = crate::duration::parse)]
    timeout: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

impl AgentArgs {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self.command {
            AgentCommand::Run(args) => args.run().await,
            AgentCommand::Api(ApiCommand::Fetch(FetchCommand::X509(args))) => args.run().await,
        }
    }
}

impl RunArgs {
    async fn run(self) -> anyhow::Result<()> {
        logging::init(&self.log_level, self.log_format);
        let trust_bundle = match (self.trust_bundle, self.insecure_bootstrap) {
            (Some(path), false) => TrustBootstrap::Pem(path),
            (None, true) => TrustBootstrap::Insecure,
            _ => anyhow::bail!("give exactly one of --trust-bundle PATH or --insecure-bootstrap"),
        };
        let config = AgentConfig {
            trust_domain: self.trust_domain,
            data_dir: self.data_dir,
            server_address: self.server_address,
            trust_bundle,
            join_token: self.join_token,
            socket_path: self.socket,
            sync_interval: self.sync_interval,
            workload_key_type: self.workload_x509_svid_key_type,
        };
        lanyard_agent::run(config, super::shutdown_signal())
            .await
            .context("agent stopped")
    }
}

/// Resolves the Workload API address from a flag or `SPIFFE_ENDPOINT_SOCKET`.
pub(crate) fn endpoint(flag: Option<&str>) -> anyhow::Result<EndpointAddr> {
    match flag {
        // URIs are parsed strictly; anything without a scheme is a socket path, as the
        // flag's help says.
        Some(s) if s.starts_with("unix:") || s.starts_with("tcp:") => {
            EndpointAddr::parse(s).map_err(|e| anyhow::anyhow!("--socket: {e}"))
        }
        Some(s) if !s.is_empty() => Ok(EndpointAddr::Unix(PathBuf::from(s))),
        Some(_) => anyhow::bail!("--socket is empty: give a socket path or unix:///path"),
        None => match std::env::var("SPIFFE_ENDPOINT_SOCKET") {
            Ok(v) => {
                EndpointAddr::parse(&v).map_err(|e| anyhow::anyhow!("SPIFFE_ENDPOINT_SOCKET: {e}"))
            }
            Err(_) => Ok(EndpointAddr::Unix(PathBuf::from(DEFAULT_AGENT_SOCKET))),
        },
    }
}

impl FetchX509Args {
    async fn run(self) -> anyhow::Result<()> {
        let addr = endpoint(self.socket.as_deref())?;
        let context = tokio::time::timeout(self.timeout, fetch(&addr))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "no answer from the Workload API at {addr} within {:?}",
                    self.timeout
                )
            })??;
        print_context(&context, self.output)?;
        if let Some(dir) = &self.write {
            let written = crate::svid_files::write(dir, &context.svids, &context.bundles)?;
            for w in written {
                out!(
                    "Wrote {}, {} and {}",
                    w.svid.display(),
                    w.key.display(),
                    w.bundle.display()
                );
            }
        }
        Ok(())
    }
}

async fn fetch(addr: &EndpointAddr) -> anyhow::Result<X509Context> {
    // The client's error already names the address.
    let mut client = WorkloadClient::connect(addr).await?;
    client
        .fetch_x509_context()
        .await
        .context("the Workload API refused to give an X509-SVID")
}

fn print_context(context: &X509Context, format: OutputFormat) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => {
            let svids: Vec<_> = context
                .svids
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "spiffe_id": s.spiffe_id().to_string(),
                        "expires_at": unix(s.not_after()),
                        "x509_svid": lanyard_spiffe::x509::certs_to_pem(s.chain()),
                    })
                })
                .collect();
            let bundles: serde_json::Map<_, _> = context
                .bundles
                .iter()
                .map(|b| {
                    (
                        b.trust_domain().id_string(),
                        serde_json::Value::String(b.to_pem()),
                    )
                })
                .collect();
            crate::output::print_json(&serde_json::json!({"svids": svids, "bundles": bundles}))
        }
        OutputFormat::Pretty => {
            out!("Received {} svid after fetching", context.svids.len());
            for s in &context.svids {
                out!();
                out!("SPIFFE ID        : {}", s.spiffe_id());
                out!(
                    "SVID Valid After : {}",
                    humantime::format_rfc3339_seconds(s.not_before())
                );
                out!(
                    "SVID Valid Until : {}",
                    humantime::format_rfc3339_seconds(s.not_after())
                );
            }
            for b in &context.bundles {
                out!();
                out!(
                    "Bundle           : {} ({} CA certificates)",
                    b.trust_domain().id_string(),
                    b.authorities().len()
                );
            }
            Ok(())
        }
    }
}

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
