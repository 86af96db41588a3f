//! `lanyard server healthcheck` and `lanyard agent healthcheck`: exit 0 when the process
//! answers and is ready, 1 with the reason otherwise (for container and systemd probes).
//!
//! Both ask the daemon's `grpc.health.v1.Health` service under the daemon's own name
//! (`lanyard.server`, `lanyard.agent`), so a probe pointed at the other daemon's socket, or at
//! a socket that is not Lanyard's, reports unhealthy instead of a false positive.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lanyard_proto::grpc::health::v1::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use lanyard_telemetry::{AGENT_SERVICE, SERVER_SERVICE};
use lanyard_workload::addr::EndpointAddr;
use tonic::transport::{Channel, Endpoint};

use super::agent::DEFAULT_AGENT_SOCKET;

/// How long a health check waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// `lanyard server healthcheck`: the gRPC health service on the admin socket.
#[derive(clap::Args, Debug)]
pub(crate) struct ServerHealthcheckArgs {
    /// The server's admin socket.
    #[arg(long, visible_alias = "socket-path", default_value = lanyard_server::DEFAULT_SOCKET)]
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
        let daemon = Daemon {
            name: "server",
            service: SERVER_SERVICE,
        };
        let shown = self.socket.display().to_string();
        if self.verbose {
            println!("Checking server {} over {shown}", depth(self.shallow));
        }
        let channel = async {
            crate::admin::connect(&self.socket)
                .await
                .context("server is unhealthy")
        };
        daemon
            .check(channel, &shown, self.shallow, self.verbose)
            .await?;
        println!("Server is healthy.");
        Ok(())
    }
}

/// `lanyard agent healthcheck`: the gRPC health service on the agent's Workload API socket.
#[derive(clap::Args, Debug)]
pub(crate) struct AgentHealthcheckArgs {
    /// The agent's Workload API socket: a path, `unix:///path` or `tcp://IP:PORT`, as for
    /// `agent api fetch x509`.
    #[arg(long, visible_alias = "socket-path", default_value = DEFAULT_AGENT_SOCKET)]
    socket: String,
    /// Only check that the agent is alive, not that it has its identity.
    #[arg(long)]
    shallow: bool,
    /// Say what is checked.
    #[arg(long)]
    verbose: bool,
}

impl AgentHealthcheckArgs {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let daemon = Daemon {
            name: "agent",
            service: AGENT_SERVICE,
        };
        let addr = super::agent::endpoint(Some(&self.socket))?;
        let shown = addr.to_string();
        if self.verbose {
            println!("Checking agent {} over {shown}", depth(self.shallow));
        }
        let channel = async {
            connect(&addr)
                .await
                .with_context(|| format!("agent is unhealthy: cannot connect to {shown}"))
        };
        daemon
            .check(channel, &shown, self.shallow, self.verbose)
            .await?;
        println!("Agent is healthy.");
        Ok(())
    }
}

/// Which daemon a check expects to find.
struct Daemon {
    /// `server` or `agent`, for messages.
    name: &'static str,
    /// Its health service name.
    service: &'static str,
}

impl Daemon {
    /// Asks the health service behind `channel` for readiness (or liveness when `shallow`);
    /// fails with a message for an operator unless the answer is `SERVING`.
    async fn check(
        &self,
        channel: impl Future<Output = anyhow::Result<Channel>>,
        shown: &str,
        shallow: bool,
        verbose: bool,
    ) -> anyhow::Result<()> {
        let name = self.name;
        let service = if shallow {
            format!("{}.liveness", self.service)
        } else {
            self.service.to_owned()
        };
        let call = async {
            let answer = HealthClient::new(channel.await?)
                .check(HealthCheckRequest { service })
                .await
                .map_err(|status| self.refusal(shown, &status))?;
            Ok::<_, anyhow::Error>(answer.into_inner())
        };
        let answer = tokio::time::timeout(TIMEOUT, call).await.map_err(|_| {
            anyhow::anyhow!(
                "{name} is unhealthy: no answer on {shown} within {}s",
                TIMEOUT.as_secs()
            )
        })??;
        let status = ServingStatus::try_from(answer.status).unwrap_or(ServingStatus::Unknown);
        if status != ServingStatus::Serving {
            anyhow::bail!(
                "{name} is unhealthy: {shown} answers {} for {}",
                status.as_str_name(),
                depth(shallow)
            );
        }
        if verbose {
            println!("Status: {}", status.as_str_name());
        }
        Ok(())
    }

    /// The message for a health call the socket refused.
    fn refusal(&self, shown: &str, status: &tonic::Status) -> anyhow::Error {
        let name = self.name;
        match status.code() {
            tonic::Code::NotFound => anyhow::anyhow!(
                "{name} is unhealthy: this socket is not a Lanyard {name} ({shown} does not \
                 answer for {:?}; is it another daemon's socket?)",
                self.service
            ),
            tonic::Code::Unimplemented => anyhow::anyhow!(
                "{name} is unhealthy: this socket is not a Lanyard {name} ({shown} serves no \
                 gRPC health service)"
            ),
            code if status.message().is_empty() => {
                anyhow::anyhow!("{name} is unhealthy: the health check on {shown} failed: {code:?}")
            }
            code => anyhow::anyhow!(
                "{name} is unhealthy: the health check on {shown} failed: {} ({code:?})",
                status.message()
            ),
        }
    }
}

/// `readiness` or `liveness`.
fn depth(shallow: bool) -> &'static str {
    if shallow { "liveness" } else { "readiness" }
}

/// A gRPC channel to the agent at `addr`.
async fn connect(addr: &EndpointAddr) -> anyhow::Result<Channel> {
    let channel = match addr {
        EndpointAddr::Unix(path) => lanyard_workload::client::unix_channel(path).await?,
        EndpointAddr::Tcp(sock) => {
            Endpoint::from_shared(format!("http://{sock}"))?
                .connect()
                .await?
        }
    };
    Ok(channel)
}
