//! `lanyard server healthcheck` and `lanyard agent healthcheck`: exit 0 when the process
//! answers and is ready, 1 with the reason otherwise (for container and systemd probes).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lanyard_proto::grpc::health::v1::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::agent::DEFAULT_AGENT_SOCKET;

/// How long a health check waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// `lanyard server healthcheck`: the gRPC health service on the admin socket.
#[derive(clap::Args, Debug)]
pub(crate) struct ServerHealthcheckArgs {
    /// The server's admin socket.
    #[arg(long, default_value = lanyard_server::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Only check that the server is alive, not that its datastore and CA work.
    #[arg(long)]
    shallow: bool,
    /// Say what is checked.
    #[arg(long)]
    verbose: bool,
}

impl ServerHealthcheckArgs {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let service = if self.shallow { "liveness" } else { "" };
        if self.verbose {
            println!(
                "Checking server {} over {}",
                if self.shallow {
                    "liveness"
                } else {
                    "readiness"
                },
                self.socket.display()
            );
        }
        let check = async {
            let channel = crate::admin::connect(&self.socket).await?;
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: service.to_owned(),
                })
                .await
                .map_err(|s| crate::admin::rpc_error("health check failed", s))
        };
        let answer = tokio::time::timeout(TIMEOUT, check)
            .await
            .with_context(|| {
                format!(
                    "server is unhealthy: no answer on {} within {}s",
                    self.socket.display(),
                    TIMEOUT.as_secs()
                )
            })?
            .context("server is unhealthy")?
            .into_inner();
        let status = ServingStatus::try_from(answer.status).unwrap_or(ServingStatus::Unknown);
        if status != ServingStatus::Serving {
            anyhow::bail!("server is unhealthy: status {}", status.as_str_name());
        }
        if self.verbose {
            println!("Status: {}", status.as_str_name());
        }
        println!("Server is healthy.");
        Ok(())
    }
}

/// `lanyard agent healthcheck`: the agent's own Workload API.
#[derive(clap::Args, Debug)]
pub(crate) struct AgentHealthcheckArgs {
    /// The agent's Workload API socket (a path or `unix:///path`).
    #[arg(long, default_value = DEFAULT_AGENT_SOCKET)]
    socket: String,
    /// Only check that the socket accepts connections, not that the Workload API answers.
    #[arg(long)]
    shallow: bool,
    /// Say what is checked.
    #[arg(long)]
    verbose: bool,
}

impl AgentHealthcheckArgs {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let socket = PathBuf::from(self.socket.strip_prefix("unix://").unwrap_or(&self.socket));
        if self.verbose {
            println!("Checking the Workload API on {}", socket.display());
        }
        if self.shallow {
            tokio::net::UnixStream::connect(&socket)
                .await
                .with_context(|| {
                    format!("agent is unhealthy: cannot connect to {}", socket.display())
                })?;
        } else {
            lanyard_agent::workload_api_answers(&socket, TIMEOUT)
                .await
                .map_err(|reason| anyhow::anyhow!("agent is unhealthy: {reason}"))?;
        }
        println!("Agent is healthy.");
        Ok(())
    }
}
