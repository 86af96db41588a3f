//! `lanyard server token generate`.

use crate::output::out;
use std::time::Duration;

use lanyard_proto::spire::api::server::agent::v1::{
    CreateJoinTokenRequest, agent_client::AgentClient,
};
use lanyard_spiffe::SpiffeId;

use super::OutputFormat;
use super::server::SocketArg;
use crate::{admin, output};

/// Join token commands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum TokenCommand {
    /// Create a single-use join token for attesting one agent.
    Generate(GenerateArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct GenerateArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// How long the token stays valid (the server's default is 600s).
    #[arg(long, value_parser = crate::duration::parse)]
    ttl: Option<Duration>,
    /// Also register this ID for the agent that uses the token, so workload entries can be
    /// parented to it.
    #[arg(long, alias = "spiffeID", value_parser = crate::output::parse_spiffe_id)]
    spiffe_id: Option<SpiffeId>,
    /// Output format: the token line, or the JoinToken message as SPIRE's API JSON.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

impl TokenCommand {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let TokenCommand::Generate(args) = self;
        let ttl = match args.ttl {
            Some(ttl) if ttl.as_secs() == 0 => {
                anyhow::bail!(
                    "--ttl {}s: a join token must live at least 1s",
                    ttl.as_secs()
                )
            }
            Some(ttl) => {
                crate::duration::to_i32_seconds("--ttl", ttl).map_err(anyhow::Error::msg)?
            }
            None => 0,
        };
        let mut client = AgentClient::new(admin::connect(&args.socket.socket).await?);
        let token = client
            .create_join_token(CreateJoinTokenRequest {
                ttl,
                token: String::new(),
                agent_id: args.spiffe_id.as_ref().map(crate::output::wire_id),
            })
            .await
            .map_err(|s| crate::cmd::admin_out::rpc_error("cannot create a join token", s))?
            .into_inner();
        match args.output {
            OutputFormat::Json => output::print_json(&serde_json::json!({
                "value": token.value,
                "expires_at": crate::cmd::wire_json::int64(token.expires_at),
            }))?,
            OutputFormat::Pretty => {
                out!("Token: {}", token.value);
                // SPIRE's CLI adds this line on stdout when the token names no agent ID.
                if args.spiffe_id.is_none() {
                    out!("Warning: Missing SPIFFE ID.");
                }
            }
        }
        Ok(())
    }
}
