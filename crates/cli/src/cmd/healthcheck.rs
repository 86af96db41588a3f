//! `lanyard server healthcheck` and `lanyard agent healthcheck`: exit 0 when the process
//! answers and is ready, 1 otherwise (for container and systemd probes).
//!
//! Both ask the daemon's `grpc.health.v1.Health` service under the daemon's own name
//! (`lanyard.server`, `lanyard.agent`), so a probe pointed at the other daemon's socket, or at
//! a socket that is not Lanyard's, reports unhealthy instead of a false positive.
//!
//! What they print is what SPIRE v1.13.3's `spire-server healthcheck` and `spire-agent
//! healthcheck` print, line for line and stream for stream, because probes and scripts match
//! on it: `Server is healthy.` on stdout; `Error: server is unhealthy: unable to determine
//! health` (server) or `Agent is unhealthy: unable to determine health` (agent) on stderr when
//! nothing answers; `... returned status "NOT_SERVING"` for an answer other than SERVING.
//! `--verbose` adds `Checking server health...` on stdout first and, when nothing answered, a
//! `Failed to check health: <reason>` line on stderr with Lanyard's own reason.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use lanyard_proto::grpc::health::v1::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use lanyard_telemetry::{AGENT_SERVICE, SERVER_SERVICE};
use lanyard_workload::addr::EndpointAddr;
use tonic::transport::{Channel, Endpoint};

use crate::output::out;

/// How long a health check waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// `lanyard server healthcheck`: the gRPC health service on the admin socket.
#[derive(clap::Args, Debug)]
pub(crate) struct ServerHealthcheckArgs {
    /// The server's admin socket (SPIRE's default path when run as spire-server).
    #[arg(long, visible_alias = "socket-path", default_value = crate::spire_args::server_socket())]
    socket: PathBuf,
    /// Only check that the server is alive, not that its datastore and CA work.
    #[arg(long)]
    shallow: bool,
    /// Say what is checked, and why a check failed.
    #[arg(long)]
    verbose: bool,
}

impl ServerHealthcheckArgs {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let daemon = Daemon::Server;
        if self.verbose {
            out!("{}", daemon.checking());
        }
        let shown = self.socket.display().to_string();
        let finding = daemon
            .check(crate::admin::connect(&self.socket), &shown, self.shallow)
            .await;
        finish(daemon, self.verbose, &finding);
        Ok(())
    }
}

/// `lanyard agent healthcheck`: the gRPC health service on the agent's Workload API socket.
#[derive(clap::Args, Debug)]
pub(crate) struct AgentHealthcheckArgs {
    /// The agent's Workload API socket: a path, `unix:///path` or `tcp://IP:PORT`, as for
    /// `agent api fetch x509` (SPIRE's default path when run as spire-agent).
    #[arg(long, visible_alias = "socket-path", default_value = crate::spire_args::agent_socket())]
    socket: String,
    /// Only check that the agent is alive, not that it has its identity.
    #[arg(long)]
    shallow: bool,
    /// Say what is checked, and why a check failed.
    #[arg(long)]
    verbose: bool,
}

impl AgentHealthcheckArgs {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let daemon = Daemon::Agent;
        let addr = super::agent::endpoint(Some(&self.socket))?;
        if self.verbose {
            out!("{}", daemon.checking());
        }
        let shown = addr.to_string();
        let finding = daemon.check(connect(&addr), &shown, self.shallow).await;
        finish(daemon, self.verbose, &finding);
        Ok(())
    }
}

/// Which daemon a check expects to find.
#[derive(Debug, Clone, Copy)]
enum Daemon {
    Server,
    Agent,
}

/// What a health check found.
#[derive(Debug, PartialEq, Eq)]
enum Finding {
    /// The daemon answered SERVING.
    Healthy,
    /// No answer: no socket, nobody listening, the wrong service, a timeout. The reason is
    /// Lanyard's own, for `--verbose`.
    Undetermined(String),
    /// An answer other than SERVING.
    Status(ServingStatus),
}

/// The lines a check prints after `Checking ... health...`, and whether it passed.
#[derive(Debug, PartialEq, Eq)]
struct Report {
    stdout: Vec<String>,
    stderr: Vec<String>,
    healthy: bool,
}

impl Daemon {
    fn name(self) -> &'static str {
        match self {
            Daemon::Server => "server",
            Daemon::Agent => "agent",
        }
    }

    /// Its health service name.
    fn service(self) -> &'static str {
        match self {
            Daemon::Server => SERVER_SERVICE,
            Daemon::Agent => AGENT_SERVICE,
        }
    }

    /// The first line of `--verbose`, on stdout.
    fn checking(self) -> String {
        format!("Checking {} health...", self.name())
    }

    /// The last line of a failed check, on stderr: SPIRE's server CLI reports it as an
    /// `Error:`, its agent CLI in a sentence of its own.
    fn unhealthy(self, reason: &str) -> String {
        match self {
            Daemon::Server => format!("Error: server is unhealthy: {reason}"),
            Daemon::Agent => format!("Agent is unhealthy: {reason}"),
        }
    }

    /// Asks the health service behind `channel` for readiness (or liveness when `shallow`).
    async fn check(
        self,
        channel: impl Future<Output = anyhow::Result<Channel>>,
        shown: &str,
        shallow: bool,
    ) -> Finding {
        let service = if shallow {
            format!("{}.liveness", self.service())
        } else {
            self.service().to_owned()
        };
        let call = async {
            let channel = channel.await.map_err(|e| causes(&e))?;
            HealthClient::new(channel)
                .check(HealthCheckRequest { service })
                .await
                .map(tonic::Response::into_inner)
                .map_err(|status| self.refusal(shown, &status))
        };
        match tokio::time::timeout(TIMEOUT, call).await {
            Err(_) => Finding::Undetermined(format!(
                "no answer on {shown} within {}s",
                TIMEOUT.as_secs()
            )),
            Ok(Err(reason)) => Finding::Undetermined(reason),
            Ok(Ok(answer)) => {
                match ServingStatus::try_from(answer.status).unwrap_or(ServingStatus::Unknown) {
                    ServingStatus::Serving => Finding::Healthy,
                    status => Finding::Status(status),
                }
            }
        }
    }

    /// Why the socket refused the health call.
    fn refusal(self, shown: &str, status: &tonic::Status) -> String {
        let name = self.name();
        match status.code() {
            tonic::Code::NotFound => format!(
                "this socket is not a Lanyard {name} ({shown} does not answer for {:?}; is it \
                 another daemon's socket?)",
                self.service()
            ),
            tonic::Code::Unimplemented => format!(
                "this socket is not a Lanyard {name} ({shown} serves no gRPC health service)"
            ),
            code if status.message().is_empty() => {
                format!("the health check on {shown} failed: {code:?}")
            }
            code => format!(
                "the health check on {shown} failed: {} ({code:?})",
                status.message()
            ),
        }
    }

    /// What SPIRE's CLI prints for `finding`, after the `--verbose` opening line.
    fn report(self, verbose: bool, finding: &Finding) -> Report {
        let name = self.name();
        let (stdout, stderr) = match finding {
            Finding::Healthy => {
                let mut capitalized = name.to_owned();
                capitalized[..1].make_ascii_uppercase();
                (vec![format!("{capitalized} is healthy.")], Vec::new())
            }
            Finding::Undetermined(reason) => {
                let mut stderr = Vec::new();
                if verbose {
                    stderr.push(format!("Failed to check health: {reason}"));
                }
                stderr.push(self.unhealthy("unable to determine health"));
                (Vec::new(), stderr)
            }
            Finding::Status(status) => {
                let reason = format!("{name} returned status {:?}", status.as_str_name());
                (Vec::new(), vec![self.unhealthy(&reason)])
            }
        };
        Report {
            stdout,
            stderr,
            healthy: *finding == Finding::Healthy,
        }
    }
}

/// Prints the report on `finding` and, for an unhealthy daemon, ends the process with status 1.
///
/// The process ends here rather than by returning an error, which `main` would print as
/// `error: ...`: the failure lines are SPIRE's, and a probe or script may match them exactly.
fn finish(daemon: Daemon, verbose: bool, finding: &Finding) {
    let report = daemon.report(verbose, finding);
    for line in &report.stdout {
        out!("{line}");
    }
    if report.healthy {
        return;
    }
    let mut stderr = std::io::stderr().lock();
    for line in &report.stderr {
        // Nothing is left to tell about a stderr that cannot be written; the status says it.
        let _ = writeln!(stderr, "{line}");
    }
    let _ = std::io::stdout().flush();
    std::process::exit(1);
}

/// An error and its causes, joined by `: `, without a cause the text before it already holds.
fn causes(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain().map(ToString::to_string) {
        if out.contains(&cause) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&cause);
    }
    out
}

/// A gRPC channel to the agent at `addr`.
async fn connect(addr: &EndpointAddr) -> anyhow::Result<Channel> {
    let channel = match addr {
        EndpointAddr::Unix(path) => lanyard_workload::client::unix_channel(path).await,
        EndpointAddr::Tcp(sock) => match Endpoint::from_shared(format!("http://{sock}")) {
            Ok(endpoint) => endpoint.connect().await,
            Err(e) => Err(e),
        },
    };
    channel.with_context(|| format!("cannot connect to {addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn healthy_daemons_say_so_on_stdout_as_spire_does() {
        for verbose in [false, true] {
            let server = Daemon::Server.report(verbose, &Finding::Healthy);
            assert_eq!(server.stdout, lines(&["Server is healthy."]));
            assert!(server.stderr.is_empty() && server.healthy);
            let agent = Daemon::Agent.report(verbose, &Finding::Healthy);
            assert_eq!(agent.stdout, lines(&["Agent is healthy."]));
            assert!(agent.stderr.is_empty() && agent.healthy);
        }
        assert_eq!(Daemon::Server.checking(), "Checking server health...");
        assert_eq!(Daemon::Agent.checking(), "Checking agent health...");
    }

    #[test]
    fn no_answer_is_spires_one_line_and_the_reason_only_when_verbose() {
        let nothing = Finding::Undetermined("cannot connect to /x.sock: refused".into());
        let server = Daemon::Server.report(false, &nothing);
        assert_eq!(
            server.stderr,
            lines(&["Error: server is unhealthy: unable to determine health"])
        );
        assert!(server.stdout.is_empty() && !server.healthy);
        let agent = Daemon::Agent.report(true, &nothing);
        assert_eq!(
            agent.stderr,
            lines(&[
                "Failed to check health: cannot connect to /x.sock: refused",
                "Agent is unhealthy: unable to determine health",
            ])
        );
        assert!(agent.stdout.is_empty() && !agent.healthy);
    }

    #[test]
    fn an_answer_other_than_serving_names_the_status_as_spire_does() {
        let not_serving = Finding::Status(ServingStatus::NotServing);
        for verbose in [false, true] {
            let server = Daemon::Server.report(verbose, &not_serving);
            assert_eq!(
                server.stderr,
                lines(&[r#"Error: server is unhealthy: server returned status "NOT_SERVING""#])
            );
            assert!(!server.healthy);
            let agent = Daemon::Agent.report(verbose, &not_serving);
            assert_eq!(
                agent.stderr,
                lines(&[r#"Agent is unhealthy: agent returned status "NOT_SERVING""#])
            );
        }
    }

    #[tokio::test]
    async fn a_missing_socket_is_undetermined_with_the_path_in_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.sock");
        let addr = EndpointAddr::Unix(path.clone());
        let finding = Daemon::Agent
            .check(connect(&addr), &addr.to_string(), false)
            .await;
        let Finding::Undetermined(reason) = finding else {
            panic!("{finding:?}");
        };
        assert!(reason.contains(&path.display().to_string()), "{reason}");
        let finding = Daemon::Server
            .check(crate::admin::connect(&path), "none.sock", true)
            .await;
        assert!(matches!(finding, Finding::Undetermined(_)), "{finding:?}");
    }
}
