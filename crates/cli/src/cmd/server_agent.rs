//! `lanyard server agent list|show|count|evict|ban`: attested agents, with SPIRE's filters.

use lanyard_proto::spire::api::server::agent::v1::{
    BanAgentRequest, CountAgentsRequest, DeleteAgentRequest, GetAgentRequest, ListAgentsRequest,
    agent_client::AgentClient, count_agents_request, list_agents_request,
};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::{Selector, SpiffeId};
use tonic::transport::Channel;

use super::OutputFormat;
use super::admin_out::{self, all_pages, plural};
use super::matching::{MatchMode, selector_match};
use super::server::SocketArg;
use super::wire_json::{agent_json, list_json};
use crate::admin;
use crate::output::{self, out, parse_selector, parse_spiffe_id, wire_id};

pub(crate) mod expiry;

/// Agents are fetched in pages of this many.
const PAGE_SIZE: i32 = 500;

/// Attested agent commands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum AgentCommand {
    /// List attested agents, optionally filtered.
    List(ListArgs),
    /// Show one attested agent.
    Show(OneAgentArgs),
    /// Count attested agents, optionally filtered.
    Count(CountArgs),
    /// Forget an agent: its SVID stops working until it attests again. Also lifts a ban.
    Evict(OneAgentArgs),
    /// Evict an agent and refuse its attestation until it is evicted again.
    Ban(OneAgentArgs),
}

/// Filters of `agent list` and `agent count`; every one given narrows the result.
#[derive(clap::Args, Debug)]
pub(crate) struct AgentFilter {
    /// Only agents admitted by this node attestor, such as `join_token`.
    #[arg(long, alias = "attestationType")]
    attestation_type: Option<String>,
    /// Only agents whose node selectors relate to these as --match-selectors-on says; repeat.
    #[arg(long = "selector", value_parser = parse_selector)]
    selectors: Vec<Selector>,
    /// How agent selectors must relate to the --selector set.
    #[arg(long, alias = "matchSelectorsOn", value_enum, default_value_t)]
    match_selectors_on: MatchMode,
    /// Only banned (true) or only unbanned (false) agents.
    #[arg(long)]
    banned: Option<bool>,
    /// Only agents that may (true) or may not (false) attest again.
    #[arg(long, alias = "canReattest")]
    can_reattest: Option<bool>,
    /// Only agents whose SVID expires before this time (Unix seconds, RFC 3339 or SPIRE's
    /// `2006-01-02 15:04:05 -0700 -07` form).
    #[arg(long, alias = "expiresBefore", value_parser = expiry::parse)]
    expires_before: Option<i64>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    socket: SocketArg,
    #[command(flatten)]
    filter: AgentFilter,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub(crate) struct CountArgs {
    #[command(flatten)]
    socket: SocketArg,
    #[command(flatten)]
    filter: AgentFilter,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

/// `show`, `evict` and `ban` name one agent.
#[derive(clap::Args, Debug)]
pub(crate) struct OneAgentArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// The agent's SPIFFE ID.
    #[arg(long, alias = "spiffeID", value_parser = parse_spiffe_id)]
    spiffe_id: SpiffeId,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

impl AgentCommand {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self {
            AgentCommand::List(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.run().await)
            }
            AgentCommand::Count(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.run().await)
            }
            AgentCommand::Show(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.show().await)
            }
            AgentCommand::Evict(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.evict().await)
            }
            AgentCommand::Ban(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.ban().await)
            }
        }
    }
}

async fn client(socket: &SocketArg) -> anyhow::Result<AgentClient<Channel>> {
    Ok(AgentClient::new(admin::connect(&socket.socket).await?))
}

impl AgentFilter {
    fn to_list(&self) -> list_agents_request::Filter {
        list_agents_request::Filter {
            by_attestation_type: self.attestation_type.clone().unwrap_or_default(),
            by_selector_match: selector_match(&self.selectors, self.match_selectors_on),
            by_banned: self.banned,
            by_can_reattest: self.can_reattest,
            by_expires_before: self
                .expires_before
                .map(expiry::spire_layout)
                .unwrap_or_default(),
        }
    }

    /// The same filter in CountAgents' message, which has the same fields.
    fn to_count(&self) -> count_agents_request::Filter {
        let f = self.to_list();
        count_agents_request::Filter {
            by_attestation_type: f.by_attestation_type,
            by_selector_match: f.by_selector_match,
            by_banned: f.by_banned,
            by_can_reattest: f.by_can_reattest,
            by_expires_before: f.by_expires_before,
        }
    }
}

impl ListArgs {
    async fn run(self) -> anyhow::Result<()> {
        let mut client = client(&self.socket).await?;
        let agents = all_pages(async |page_token| {
            let page = client
                .list_agents(ListAgentsRequest {
                    filter: Some(self.filter.to_list()),
                    output_mask: None,
                    page_size: PAGE_SIZE,
                    page_token,
                })
                .await
                .map_err(|s| crate::cmd::admin_out::rpc_error("cannot list agents", s))?
                .into_inner();
            Ok((page.agents, page.next_page_token))
        })
        .await?;
        match self.output {
            OutputFormat::Json => output::print_json(&list_json(
                "agents",
                agents.iter().map(agent_json).collect(),
            )),
            // SPIRE's wording, so that scripts reading `spire-server agent list` read this.
            OutputFormat::Pretty if agents.is_empty() => {
                out!("No attested agents found");
                Ok(())
            }
            OutputFormat::Pretty => {
                out!(
                    "Found {}:\n",
                    plural(agents.len(), "attested agent", "attested agents")
                );
                agents.iter().for_each(print_agent);
                Ok(())
            }
        }
    }
}

impl CountArgs {
    async fn run(self) -> anyhow::Result<()> {
        let count = client(&self.socket)
            .await?
            .count_agents(CountAgentsRequest {
                filter: Some(self.filter.to_count()),
            })
            .await
            .map_err(|s| crate::cmd::admin_out::rpc_error("cannot count agents", s))?
            .into_inner()
            .count;
        match self.output {
            OutputFormat::Json => output::print_json(&serde_json::json!({ "count": count }))?,
            OutputFormat::Pretty => out!(
                "{}",
                plural(admin_out::count(count), "attested agent", "attested agents")
            ),
        }
        Ok(())
    }
}

impl OneAgentArgs {
    async fn show(self) -> anyhow::Result<()> {
        let agent = client(&self.socket)
            .await?
            .get_agent(GetAgentRequest {
                id: Some(wire_id(&self.spiffe_id)),
                output_mask: None,
            })
            .await
            .map_err(|s| {
                crate::cmd::admin_out::rpc_error(
                    &format!("cannot show agent {}", self.spiffe_id),
                    s,
                )
            })?
            .into_inner();
        match self.output {
            OutputFormat::Json => output::print_json(&agent_json(&agent)),
            OutputFormat::Pretty => {
                out!("Found an attested agent given its SPIFFE ID\n");
                print_agent(&agent);
                // As in SPIRE, only `show` prints the node selectors, after the agent block.
                for s in &agent.selectors {
                    out!("Selectors         : {}:{}", s.r#type, s.value);
                }
                Ok(())
            }
        }
    }

    async fn evict(self) -> anyhow::Result<()> {
        client(&self.socket)
            .await?
            .delete_agent(DeleteAgentRequest {
                id: Some(wire_id(&self.spiffe_id)),
            })
            .await
            .map_err(|s| {
                crate::cmd::admin_out::rpc_error(
                    &format!("cannot evict agent {}", self.spiffe_id),
                    s,
                )
            })?;
        self.done("evicted")
    }

    async fn ban(self) -> anyhow::Result<()> {
        client(&self.socket)
            .await?
            .ban_agent(BanAgentRequest {
                id: Some(wire_id(&self.spiffe_id)),
            })
            .await
            .map_err(|s| {
                crate::cmd::admin_out::rpc_error(&format!("cannot ban agent {}", self.spiffe_id), s)
            })?;
        self.done("banned")
    }

    /// The RPCs answer `google.protobuf.Empty`, which is `{}` in JSON.
    fn done(&self, what: &str) -> anyhow::Result<()> {
        match self.output {
            OutputFormat::Json => output::print_json(&serde_json::json!({})),
            OutputFormat::Pretty => {
                // SPIRE's words, which scripts may look for.
                out!("Agent {what} successfully");
                Ok(())
            }
        }
    }
}

/// An agent as SPIRE's CLI prints it: a banned agent has no serial number, so that line says
/// it is banned instead. The time is UTC, written as Go writes a UTC time.
fn print_agent(a: &types::Agent) {
    out!("SPIFFE ID         : {}", output::id_string(a.id.as_ref()));
    out!("Attestation type  : {}", a.attestation_type);
    out!(
        "Expiration time   : {} +0000 UTC",
        expiry::utc_date_time(a.x509svid_expires_at)
    );
    if a.banned {
        out!("Banned            : true");
    } else {
        out!("Serial number     : {}", a.x509svid_serial_number);
    }
    out!("Can re-attest     : {}", a.can_reattest);
    out!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: ListArgs,
    }

    fn parse(args: &[&str]) -> Result<ListArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn every_filter_reaches_the_request() {
        let a = parse(&[
            "--attestationType",
            "join_token",
            "--selector",
            "join_token:abc",
            "--match-selectors-on",
            "exact",
            "--banned",
            "false",
            "--canReattest",
            "true",
            "--expires-before",
            "2026-12-04T18:00:00Z",
        ])
        .unwrap();
        let f = a.filter.to_count();
        assert_eq!(f.by_attestation_type, "join_token");
        assert_eq!(f.by_selector_match.unwrap().r#match, 0);
        assert_eq!((f.by_banned, f.by_can_reattest), (Some(false), Some(true)));
        assert_eq!(f.by_expires_before, "2026-12-04 18:00:00 +0000 +00");
    }

    #[test]
    fn no_flags_means_no_filter() {
        let f = parse(&[]).unwrap().filter.to_list();
        assert_eq!(f, list_agents_request::Filter::default());
    }

    #[test]
    fn bad_values_are_named() {
        let err = parse(&["--banned", "maybe"]).unwrap_err().to_string();
        assert!(err.contains("maybe"), "{err}");
        let err = parse(&["--expires-before", "soon"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("soon"), "{err}");
    }
}
