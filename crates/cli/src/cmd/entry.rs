//! `lanyard server entry create|show|delete`.

use crate::output::out;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lanyard_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, BatchDeleteEntryRequest, GetEntryRequest, ListEntriesRequest,
    entry_client::EntryClient, list_entries_request,
};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::{Selector, SpiffeId};
use tonic::Code;

use super::OutputFormat;
use super::server::SocketArg;
use crate::output::{self, parse_selector, parse_spiffe_id, wire_id};
use crate::{admin, duration};

mod data;

/// Registration entry commands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum EntryCommand {
    /// Register a workload (or node alias) identity.
    Create(CreateArgs),
    /// List entries, optionally filtered.
    Show(ShowArgs),
    /// Delete an entry by ID.
    Delete(DeleteArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// The identity workloads matching the selectors receive.
    #[arg(long, value_parser = parse_spiffe_id, required_unless_present = "data")]
    spiffe_id: Option<SpiffeId>,
    /// The agent (or alias) ID under which the selectors are checked.
    #[arg(long, value_parser = parse_spiffe_id, conflicts_with = "node", required_unless_present_any = ["node", "data"])]
    parent_id: Option<SpiffeId>,
    /// A `type:value` selector; repeat for several (all must match).
    #[arg(long = "selector", value_parser = parse_selector, required_unless_present = "data")]
    selectors: Vec<Selector>,
    /// X509-SVID lifetime (seconds or with a unit); the server default when absent.
    #[arg(long, value_parser = duration::parse)]
    x509_svid_ttl: Option<Duration>,
    /// JWT-SVID lifetime (seconds or with a unit); the server default when absent.
    #[arg(long, value_parser = duration::parse)]
    jwt_svid_ttl: Option<Duration>,
    /// DNS SAN for the X509-SVID; repeat for several.
    #[arg(long = "dns")]
    dns_names: Vec<String>,
    /// A foreign trust domain whose bundle the workload also gets; repeat for several.
    #[arg(long)]
    federates_with: Vec<String>,
    /// Holders of this identity may call admin RPCs.
    #[arg(long)]
    admin: bool,
    /// Holders of this identity may mint downstream CAs.
    #[arg(long)]
    downstream: bool,
    /// A label returned with the SVID so a workload with several identities can choose.
    #[arg(long, default_value = "")]
    hint: String,
    /// A node alias: the parent is the server, the selectors are node selectors.
    #[arg(long)]
    node: bool,
    /// Unix time after which the entry may be pruned.
    #[arg(long)]
    expires_at: Option<i64>,
    /// Read entries from a JSON file in SPIRE's `entry create -data` format (`-` for stdin).
    #[arg(long, conflicts_with_all = ["spiffe_id", "parent_id", "selectors", "node"])]
    data: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// Show only this entry.
    #[arg(long)]
    entry_id: Option<String>,
    /// Only entries with this SPIFFE ID.
    #[arg(long, value_parser = parse_spiffe_id)]
    spiffe_id: Option<SpiffeId>,
    /// Only entries with this parent ID.
    #[arg(long, value_parser = parse_spiffe_id)]
    parent_id: Option<SpiffeId>,
    /// Only entries with exactly these selectors; repeat for several.
    #[arg(long = "selector", value_parser = parse_selector)]
    selectors: Vec<Selector>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub(crate) struct DeleteArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// The entry to delete.
    #[arg(long)]
    entry_id: String,
}

impl EntryCommand {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self {
            EntryCommand::Create(args) => args.run().await,
            EntryCommand::Show(args) => args.run().await,
            EntryCommand::Delete(args) => args.run().await,
        }
    }
}

impl CreateArgs {
    fn entries(&self) -> anyhow::Result<Vec<types::Entry>> {
        if let Some(path) = &self.data {
            return data::read_entries(path);
        }
        let spiffe_id = self.spiffe_id.as_ref().context("--spiffe-id is required")?;
        let parent_id = if self.node {
            SpiffeId::from_segments(&spiffe_id.trust_domain(), &["spire", "server"])
                .map_err(|e| anyhow::anyhow!("server ID: {e}"))?
        } else {
            self.parent_id
                .clone()
                .context("--parent-id (or --node) is required")?
        };
        let ttl = |flag: &str, d: Option<Duration>| -> anyhow::Result<i32> {
            match d {
                None => Ok(0),
                Some(d) if d.as_secs() == 0 => {
                    anyhow::bail!(
                        "{flag} {}s: must be at least 1s; leave it out for the server default",
                        d.as_secs()
                    )
                }
                Some(d) => duration::to_i32_seconds(flag, d).map_err(anyhow::Error::msg),
            }
        };
        Ok(vec![types::Entry {
            spiffe_id: Some(wire_id(spiffe_id)),
            parent_id: Some(wire_id(&parent_id)),
            selectors: self.selectors.iter().map(wire_selector).collect(),
            x509_svid_ttl: ttl("--x509-svid-ttl", self.x509_svid_ttl)?,
            jwt_svid_ttl: ttl("--jwt-svid-ttl", self.jwt_svid_ttl)?,
            dns_names: self.dns_names.clone(),
            federates_with: self.federates_with.clone(),
            admin: self.admin,
            downstream: self.downstream,
            hint: self.hint.clone(),
            expires_at: self.expires_at.unwrap_or(0),
            ..Default::default()
        }])
    }

    async fn run(self) -> anyhow::Result<()> {
        let entries = self.entries()?;
        let mut client = EntryClient::new(admin::connect(&self.socket.socket).await?);
        let response = client
            .batch_create_entry(BatchCreateEntryRequest {
                entries: entries.clone(),
                output_mask: None,
            })
            .await
            .map_err(|s| admin::rpc_error("cannot create entries", s))?
            .into_inner();

        let mut failed = 0;
        let mut created = Vec::new();
        for (result, requested) in response.results.iter().zip(&entries) {
            let status = result.status.clone().unwrap_or_default();
            if status.code == Code::Ok as i32 {
                if let Some(e) = &result.entry {
                    created.push(e.clone());
                }
                continue;
            }
            failed += 1;
            eprintln!(
                "FAILED to create the entry for {} under {}: {} ({:?})",
                output::id_string(requested.spiffe_id.as_ref()),
                output::id_string(requested.parent_id.as_ref()),
                status.message,
                Code::from_i32(status.code)
            );
        }
        match self.output {
            OutputFormat::Json => output::print_json(&serde_json::json!({
                "entries": created.iter().map(output::entry_json).collect::<Vec<_>>()
            }))?,
            OutputFormat::Pretty => created.iter().for_each(output::print_entry),
        }
        if failed > 0 {
            anyhow::bail!("{failed} of {} entries could not be created", entries.len());
        }
        Ok(())
    }
}

fn wire_selector(s: &Selector) -> types::Selector {
    types::Selector {
        r#type: s.kind().to_string(),
        value: s.value().to_string(),
    }
}

impl ShowArgs {
    async fn run(self) -> anyhow::Result<()> {
        let mut client = EntryClient::new(admin::connect(&self.socket.socket).await?);
        let entries = if let Some(id) = &self.entry_id {
            let entry = client
                .get_entry(GetEntryRequest {
                    id: id.clone(),
                    output_mask: None,
                })
                .await
                .map_err(|s| admin::rpc_error(&format!("cannot show entry {id:?}"), s))?
                .into_inner();
            vec![entry]
        } else {
            let filter = list_entries_request::Filter {
                by_spiffe_id: self.spiffe_id.as_ref().map(wire_id),
                by_parent_id: self.parent_id.as_ref().map(wire_id),
                by_selectors: (!self.selectors.is_empty()).then(|| types::SelectorMatch {
                    selectors: self.selectors.iter().map(wire_selector).collect(),
                    r#match: types::selector_match::MatchBehavior::MatchExact as i32,
                }),
                ..Default::default()
            };
            list_all(&mut client, filter).await?
        };
        match self.output {
            OutputFormat::Json => output::print_json(&serde_json::json!({
                "entries": entries.iter().map(output::entry_json).collect::<Vec<_>>()
            }))?,
            OutputFormat::Pretty => {
                out!(
                    "Found {} entr{}\n",
                    entries.len(),
                    if entries.len() == 1 { "y" } else { "ies" }
                );
                entries.iter().for_each(output::print_entry);
            }
        }
        Ok(())
    }
}

async fn list_all(
    client: &mut EntryClient<tonic::transport::Channel>,
    filter: list_entries_request::Filter,
) -> anyhow::Result<Vec<types::Entry>> {
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_entries(ListEntriesRequest {
                filter: Some(filter.clone()),
                output_mask: None,
                page_size: 500,
                page_token,
            })
            .await
            .map_err(|s| admin::rpc_error("cannot list entries", s))?
            .into_inner();
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            return Ok(entries);
        }
        page_token = page.next_page_token;
    }
}

impl DeleteArgs {
    async fn run(self) -> anyhow::Result<()> {
        let mut client = EntryClient::new(admin::connect(&self.socket.socket).await?);
        let response = client
            .batch_delete_entry(BatchDeleteEntryRequest {
                ids: vec![self.entry_id.clone()],
            })
            .await
            .map_err(|s| admin::rpc_error("cannot delete the entry", s))?
            .into_inner();
        let status = response
            .results
            .first()
            .and_then(|r| r.status.clone())
            .context("the server answered without a result")?;
        if status.code != Code::Ok as i32 {
            anyhow::bail!(
                "cannot delete entry {:?}: {}",
                self.entry_id,
                status.message
            );
        }
        out!("Deleted entry with ID: {}", self.entry_id);
        Ok(())
    }
}
