//! `lanyard server ...`: run the server, and the admin commands that talk to its socket.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lanyard_ca::KeyType;
use lanyard_server::ServerConfig;
use lanyard_spiffe::TrustDomain;

use super::{bundle, entry, token};
use crate::logging::{self, LogFormat};

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
    /// Manage registration entries.
    #[command(subcommand)]
    Entry(entry::EntryCommand),
    /// Manage join tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Show the trust bundle.
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
}

/// Flags of `lanyard server run`; each mirrors a SPIRE `server {}` key.
#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    /// Trust domain this server signs for.
    #[arg(long, default_value = "example.org", value_parser = parse_trust_domain)]
    trust_domain: TrustDomain,
    /// Directory for the datastore and the CA keys.
    #[arg(long, default_value = ".lanyard/server")]
    data_dir: PathBuf,
    /// Address of the agent API (TLS). SPIRE binds 0.0.0.0; Lanyard stays on loopback
    /// unless told otherwise.
    #[arg(long, default_value = lanyard_server::DEFAULT_BIND, value_parser = parse_bind)]
    bind: SocketAddr,
    /// Unix socket of the admin API.
    #[arg(long, default_value = lanyard_server::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Key type of the X.509 CA: ec-p256, ec-p384, rsa-2048 or rsa-4096.
    #[arg(long, default_value = "ec-p256")]
    ca_key_type: KeyType,
    /// Lifetime of each X.509 CA.
    #[arg(long, default_value = "24h", value_parser = crate::duration::parse)]
    ca_ttl: Duration,
    /// X509-SVID lifetime for entries that do not set one.
    #[arg(long, default_value = "1h", value_parser = crate::duration::parse)]
    default_x509_svid_ttl: Duration,
    /// Lifetime of agent SVIDs (defaults to --default-x509-svid-ttl).
    #[arg(long, value_parser = crate::duration::parse)]
    agent_ttl: Option<Duration>,
    /// Lifetime of join tokens generated without --ttl.
    #[arg(long, default_value = "600s", value_parser = crate::duration::parse)]
    join_token_ttl: Duration,
    /// Log level.
    #[arg(long, default_value = "info", value_parser = ["error", "warn", "info", "debug", "trace"])]
    log_level: String,
    /// Log format.
    #[arg(long, value_enum, default_value_t)]
    log_format: LogFormat,
}

/// Parses a bare trust domain name for clap.
pub(crate) fn parse_trust_domain(s: &str) -> Result<TrustDomain, String> {
    if s.starts_with("spiffe://") {
        return Err(format!(
            "{s:?} is a SPIFFE ID: give the bare trust domain name, such as example.org"
        ));
    }
    TrustDomain::new(s).map_err(|e| e.to_string())
}

/// Parses `--bind`: an IP literal and a port.
fn parse_bind(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not an address to listen on: use IP:PORT, such as 127.0.0.1:8081")
    })
}

impl ServerArgs {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self.command {
            ServerCommand::Run(args) => args.run().await,
            ServerCommand::Entry(cmd) => cmd.run().await,
            ServerCommand::Token(cmd) => cmd.run().await,
            ServerCommand::Bundle(cmd) => cmd.run().await,
        }
    }
}

impl RunArgs {
    async fn run(self) -> anyhow::Result<()> {
        logging::init(&self.log_level, self.log_format);
        let mut config = ServerConfig::with_defaults(self.trust_domain, self.data_dir);
        config.bind = self.bind;
        config.socket_path = self.socket;
        config.ca_key_type = self.ca_key_type;
        config.ca_ttl = self.ca_ttl;
        config.default_x509_svid_ttl = self.default_x509_svid_ttl;
        config.agent_ttl = self.agent_ttl.unwrap_or(self.default_x509_svid_ttl);
        config.join_token_ttl = self.join_token_ttl;
        lanyard_server::run(config, super::shutdown_signal())
            .await
            .context("server stopped")
    }
}

/// The `--socket` flag shared by every admin command.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct SocketArg {
    /// The server's admin socket.
    #[arg(long, default_value = lanyard_server::DEFAULT_SOCKET)]
    pub(crate) socket: PathBuf,
}
