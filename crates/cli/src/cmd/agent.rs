//! `lanyard agent ...`: run the agent, and the workload-side `api` commands.

use crate::output::out;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lanyard_workload::addr::EndpointAddr;
use lanyard_workload::client::{WorkloadClient, X509Context};

use super::OutputFormat;
use crate::config::agent::AgentFlags;
use crate::logging;

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
    /// Check a configuration (file and flags, as `run` takes them) without starting anything.
    Validate(RunArgs),
    /// Use the Workload API as a workload would.
    #[command(subcommand)]
    Api(ApiCommand),
    /// Check that the agent's Workload API answers (exit 0) or not (1).
    Healthcheck(super::healthcheck::AgentHealthcheckArgs),
}

/// Flags of `lanyard agent run` and `validate`.
#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    flags: AgentFlags,
}

#[derive(clap::Subcommand, Debug)]
enum ApiCommand {
    /// Fetch identities.
    #[command(subcommand)]
    Fetch(FetchCommand),
    /// Validate an identity document through the Workload API.
    #[command(subcommand)]
    Validate(ValidateCommand),
    /// Print every X509-SVID update until SIGINT or SIGTERM, reconnecting as needed.
    Watch(super::agent_watch::WatchArgs),
    /// Keep a certificate, key and bundle on disk up to date and notify a program, as
    /// spiffe-helper does.
    Helper(super::helper::HelperArgs),
}

#[derive(clap::Subcommand, Debug)]
enum ValidateCommand {
    /// Validate a JWT-SVID for an audience.
    Jwt(super::agent_jwt::ValidateJwtArgs),
}

#[derive(clap::Subcommand, Debug)]
enum FetchCommand {
    /// Fetch this process's X509-SVIDs and bundles.
    X509(FetchX509Args),
    /// Fetch JWT-SVIDs for an audience.
    Jwt(super::agent_jwt::FetchJwtArgs),
}

#[derive(clap::Args, Debug)]
struct FetchX509Args {
    /// Workload API socket: a path, `unix:///path` or `tcp://IP:PORT`; defaults to
    /// $SPIFFE_ENDPOINT_SOCKET, then to the agent's default socket (run as spire-agent,
    /// SPIRE's default socket, as SPIRE's CLI does).
    #[arg(long, visible_alias = "socket-path")]
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
            AgentCommand::Validate(args) => args.validate(),
            AgentCommand::Api(ApiCommand::Fetch(FetchCommand::X509(args))) => args.run().await,
            AgentCommand::Api(ApiCommand::Fetch(FetchCommand::Jwt(args))) => args.run().await,
            AgentCommand::Api(ApiCommand::Validate(ValidateCommand::Jwt(args))) => args.run().await,
            AgentCommand::Api(ApiCommand::Watch(args)) => args.run().await,
            AgentCommand::Api(ApiCommand::Helper(args)) => args.run().await,
            AgentCommand::Healthcheck(args) => args.run().await,
        }
    }
}

impl RunArgs {
    async fn run(self) -> anyhow::Result<()> {
        let settings = self.flags.load()?;
        // The path checks validate makes, so that run refuses with the same words.
        crate::config::validate::paths_before_run(
            &settings.config.data_dir,
            &settings.config.socket_path,
            &settings.log,
        )?;
        logging::init_with(&settings.log)?;
        lanyard_agent::run(settings.config, super::shutdown_signal())
            .await
            .context("agent stopped")
    }

    /// Builds the configuration exactly as `run` does, then checks it; prints each problem.
    fn validate(self) -> anyhow::Result<()> {
        let settings = self.flags.load()?;
        crate::config::validate::report(&crate::config::validate::agent(&settings))
    }
}

/// Resolves the Workload API address from a flag or `SPIFFE_ENDPOINT_SOCKET`, else the
/// agent's default socket. Run as `spire-agent`, the variable is not read: SPIRE's CLI dials its
/// default path whatever the environment says, and scripts written for it rely on that.
pub(crate) fn endpoint(flag: Option<&str>) -> anyhow::Result<EndpointAddr> {
    let default = || EndpointAddr::Unix(PathBuf::from(crate::spire_args::agent_socket()));
    match flag {
        // URIs are parsed strictly; anything without a scheme is a socket path, as the
        // flag's help says.
        Some(s) if s.starts_with("unix:") || s.starts_with("tcp:") => {
            EndpointAddr::parse(s).map_err(|e| anyhow::anyhow!("--socket: {e}"))
        }
        Some(s) if !s.is_empty() => Ok(EndpointAddr::Unix(PathBuf::from(s))),
        Some(_) => anyhow::bail!("--socket is empty: give a socket path or unix:///path"),
        None if crate::spire_args::invoked_as_spire() => Ok(default()),
        None => match std::env::var("SPIFFE_ENDPOINT_SOCKET") {
            Ok(v) => {
                EndpointAddr::parse(&v).map_err(|e| anyhow::anyhow!("SPIFFE_ENDPOINT_SOCKET: {e}"))
            }
            Err(_) => Ok(default()),
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
