//! `lanyard server entry create|update|show|count|delete`: registration entries, with SPIRE's
//! flags (kebab-case, SPIRE's camelCase spellings as aliases) and its `--data` JSON.

use lanyard_proto::spire::api::server::entry::v1::{
    BatchDeleteEntryRequest, entry_client::EntryClient,
};
use lanyard_proto::spire::api::types;
use tonic::transport::Channel;

use super::OutputFormat;
use super::admin_out::{check, only_result, plural};
use super::server::SocketArg;
use super::wire_json::status_json;
use crate::admin;
use crate::output::{self, out};

mod create;
mod data;
mod fields;
mod show;
mod update;

/// Registration entry commands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum EntryCommand {
    /// Register a workload (or node alias) identity.
    Create(create::CreateArgs),
    /// Change fields of an entry (those given) or replace entries from `--data`.
    Update(update::UpdateArgs),
    /// List entries, optionally filtered.
    Show(show::ShowArgs),
    /// Count entries, optionally filtered.
    Count(show::CountArgs),
    /// Delete an entry by ID.
    Delete(DeleteArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct DeleteArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// The entry to delete.
    #[arg(long, alias = "entryID")]
    entry_id: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

impl EntryCommand {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self {
            EntryCommand::Create(args) => args.run().await,
            EntryCommand::Update(args) => args.run().await,
            EntryCommand::Show(args) => args.run().await,
            EntryCommand::Count(args) => args.run().await,
            EntryCommand::Delete(args) => args.run().await,
        }
    }
}

async fn client(socket: &SocketArg) -> anyhow::Result<EntryClient<Channel>> {
    Ok(EntryClient::new(admin::connect(&socket.socket).await?))
}

/// Prints the entries a batch call returned and reports each failed item on stderr, naming the
/// entry; fails when any item failed.
fn report_batch(
    verb: &str,
    output_format: OutputFormat,
    requested: &[types::Entry],
    results: impl IntoIterator<Item = (Option<types::Status>, Option<types::Entry>)>,
) -> anyhow::Result<()> {
    let mut failed = 0;
    let mut done = Vec::new();
    for ((status, entry), asked) in results.into_iter().zip(requested) {
        let which = if asked.id.is_empty() {
            format!(
                "the entry for {} under {}",
                output::id_string(asked.spiffe_id.as_ref()),
                output::id_string(asked.parent_id.as_ref())
            )
        } else {
            format!("entry {:?}", asked.id)
        };
        match check(status.as_ref(), &format!("FAILED to {verb} {which}")) {
            Ok(()) => done.extend(entry),
            Err(e) => {
                failed += 1;
                eprintln!("{e}");
            }
        }
    }
    print_entries(output_format, &done, false)?;
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} entries could not be {verb}d",
            requested.len()
        );
    }
    Ok(())
}

/// `{"entries": [...]}` or SPIRE's text blocks, with a count line first when `counted`.
fn print_entries(
    output_format: OutputFormat,
    entries: &[types::Entry],
    counted: bool,
) -> anyhow::Result<()> {
    match output_format {
        OutputFormat::Json => output::print_json(&serde_json::json!({
            "entries": entries.iter().map(output::entry_json).collect::<Vec<_>>()
        })),
        OutputFormat::Pretty => {
            if counted {
                out!("Found {}\n", plural(entries.len(), "entry", "entries"));
            }
            entries.iter().for_each(output::print_entry);
            Ok(())
        }
    }
}

impl DeleteArgs {
    async fn run(self) -> anyhow::Result<()> {
        let response = client(&self.socket)
            .await?
            .batch_delete_entry(BatchDeleteEntryRequest {
                ids: vec![self.entry_id.clone()],
            })
            .await
            .map_err(|s| admin::rpc_error("cannot delete the entry", s))?
            .into_inner();
        let result = only_result(
            response.results,
            |r| r.status.as_ref(),
            &format!("cannot delete entry {:?}", self.entry_id),
        )?;
        match self.output {
            OutputFormat::Json => output::print_json(&serde_json::json!({
                "results": [{"status": status_json(result.status.as_ref()), "id": result.id}]
            }))?,
            OutputFormat::Pretty => out!("Deleted entry with ID: {}", self.entry_id),
        }
        Ok(())
    }
}
