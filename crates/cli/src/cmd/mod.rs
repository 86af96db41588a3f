//! The command tree. Each module owns one top-level command.

mod admin_out;
mod agent;
mod agent_jwt;
mod agent_watch;
mod bundle;
mod demo;
mod entry;
mod federation;
pub(crate) mod file_write;
mod healthcheck;
mod helper;
mod localauthority;
mod matching;
mod mint;
mod retry_report;
mod server;
pub(crate) mod server_agent;
mod token;
mod wire_json;

/// The top-level commands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// Run or administer the signing server.
    Server(server::ServerArgs),
    /// Run the node agent, or use its Workload API as a workload.
    Agent(agent::AgentArgs),
    /// Start a server and an agent on this machine and fetch an identity from them.
    Demo(demo::DemoArgs),
}

impl Command {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Server(args) => args.run().await,
            Command::Agent(args) => args.run().await,
            Command::Demo(args) => args.run().await,
        }
    }
}

/// Output style of `show`/`list`/`fetch` commands.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum OutputFormat {
    /// Aligned `key : value` blocks, as SPIRE prints them.
    #[default]
    Pretty,
    /// JSON for scripts.
    Json,
}

/// Completes on SIGINT or SIGTERM. The signal handlers are installed when this is called,
/// not when the future is first polled, so a daemon never dies of the default disposition while
/// it starts.
///
/// The other signals an operator sends a daemon never stop it:
/// - SIGHUP and SIGUSR2 reopen the log file (for logrotate's `postrotate`); without a log file
///   they are logged and ignored;
/// - SIGUSR1 logs a status line and is otherwise ignored.
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    let hup = signal(SignalKind::hangup());
    let usr1 = signal(SignalKind::user_defined1());
    let usr2 = signal(SignalKind::user_defined2());
    async move {
        match (int, term, hup, usr1, usr2) {
            (Ok(mut int), Ok(mut term), Ok(mut hup), Ok(mut usr1), Ok(mut usr2)) => loop {
                tokio::select! {
                    _ = int.recv() => break,
                    _ = term.recv() => break,
                    _ = hup.recv() => reopen_log_file("SIGHUP"),
                    _ = usr2.recv() => reopen_log_file("SIGUSR2"),
                    _ = usr1.recv() => tracing::info!(
                        signal = "SIGUSR1",
                        pid = std::process::id(),
                        "Running; SIGUSR1 has no action (SIGHUP or SIGUSR2 reopen the log file)"
                    ),
                }
            },
            _ => {
                tracing::warn!("Cannot install signal handlers; only Ctrl-C stops the process");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        tracing::info!("Shutting down");
    }
}

/// Reopens the log file on `signal`, saying so in the (new) log.
fn reopen_log_file(signal: &'static str) {
    match crate::logging::reopen_log_file() {
        Some(Ok(path)) => {
            tracing::info!(signal, path = %path.display(), "reopened log file");
        }
        Some(Err(e)) => {
            tracing::warn!(signal, error = %e, "Cannot reopen the log file; still writing to the old one");
        }
        None => tracing::info!(
            signal,
            "No log file to reopen (logging to stderr); signal ignored"
        ),
    }
}
