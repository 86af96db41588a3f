//! `lanyard server ...`: run the server, and the admin commands that talk to its socket.

use std::path::PathBuf;

use anyhow::Context;

use super::{bundle, entry, federation, mint, server_agent, token};
use crate::config::server::ServerFlags;
use crate::logging;

/// `lanyard server`.
#[derive(clap::Args, Debug)]
pub(crate) struct ServerArgs {
    #[command(subcommand)]
    command: ServerCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ServerCommand {
    /// Run the server until SIGINT or SIGTERM.
    Run(RunArgs),
    /// Check a configuration (file and flags, as `run` takes them) without starting anything.
    Validate(RunArgs),
    /// Manage registration entries.
    #[command(subcommand)]
    Entry(entry::EntryCommand),
    /// Manage join tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Show attested agents; evict or ban them.
    #[command(subcommand)]
    Agent(server_agent::AgentCommand),
    /// The server's trust bundle and those of foreign trust domains.
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
    /// Federation relationships with foreign trust domains.
    #[command(subcommand)]
    Federation(federation::FederationCommand),
    /// Forced rotation and revocation of the server's authorities.
    #[command(subcommand, name = "localauthority")]
    LocalAuthority(super::localauthority::LocalAuthorityCommand),
    /// Mint X509-SVIDs for operators.
    #[command(subcommand)]
    X509(mint::X509Command),
    /// Mint JWT-SVIDs for operators.
    #[command(subcommand)]
    Jwt(mint::JwtCommand),
    /// Check that the server answers on its admin socket and is ready (exit 0) or not (1).
    Healthcheck(super::healthcheck::ServerHealthcheckArgs),
}

/// Flags of `lanyard server run` and `validate`.
#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    flags: ServerFlags,
}

impl ServerArgs {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self.command {
            ServerCommand::Run(args) => args.run().await,
            ServerCommand::Validate(args) => args.validate(),
            ServerCommand::Entry(cmd) => cmd.run().await,
            ServerCommand::Token(cmd) => cmd.run().await,
            ServerCommand::Agent(cmd) => cmd.run().await,
            ServerCommand::Bundle(cmd) => cmd.run().await,
            ServerCommand::Federation(cmd) => cmd.run().await,
            ServerCommand::LocalAuthority(cmd) => cmd.run().await,
            ServerCommand::X509(cmd) => cmd.run().await,
            ServerCommand::Jwt(cmd) => cmd.run().await,
            ServerCommand::Healthcheck(args) => args.run().await,
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
        lanyard_server::run(settings.config, super::shutdown_signal())
            .await
            .context("server stopped")
    }

    /// Builds the configuration exactly as `run` does, then checks it; prints each problem.
    fn validate(self) -> anyhow::Result<()> {
        let settings = self.flags.load()?;
        crate::config::validate::report(&crate::config::validate::server(&settings))
    }
}

/// The `--socket` flag shared by every admin command.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct SocketArg {
    /// The server's admin socket (SPIRE's default path when run as spire-server).
    #[arg(long, visible_alias = "socket-path", default_value = crate::spire_args::server_socket())]
    pub(crate) socket: PathBuf,
}
