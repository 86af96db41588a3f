//! The command tree. Each module owns one top-level command.

mod agent;
mod bundle;
mod demo;
mod entry;
mod healthcheck;
mod mint;
mod server;
mod token;

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

/// Completes on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        tracing::info!("Shutting down");
    }
}
