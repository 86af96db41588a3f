//! `lanyard server entry create|update|show|count|delete`: registration entries, with SPIRE's
//! flags (kebab-case, SPIRE's camelCase spellings as aliases) and its `--data` JSON.

use lanyard_proto::spire::api::server::entry::v1::entry_client::EntryClient;
use lanyard_proto::spire::api::types;
use tonic::transport::Channel;

use super::OutputFormat;
use super::admin_out::{BatchFailed, check, plural};
use super::server::SocketArg;
use super::wire_json::status_json;
use crate::admin;
use crate::output::{self, out};

mod batch;
mod create;
mod data;
mod delete;
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
    /// Delete entries by ID, each answered with its own status.
    Delete(delete::DeleteArgs),
}

impl EntryCommand {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self {
            EntryCommand::Create(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.run().await)
            }
            EntryCommand::Update(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.run().await)
            }
            EntryCommand::Show(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.run().await)
            }
            EntryCommand::Count(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.run().await)
            }
            EntryCommand::Delete(args) => {
                let format = args.output;
                crate::cmd::admin_out::finish(format, args.run().await)
            }
        }
    }
}

async fn client(socket: &SocketArg) -> anyhow::Result<EntryClient<Channel>> {
    Ok(EntryClient::new(admin::connect(&socket.socket).await?))
}

/// Prints a batch's outcomes, one per requested item in order: SPIRE's `{"results": [...]}`
/// in JSON (see `admin_out`), else the entries done on stdout and each failure on stderr,
/// naming the entry.
///
/// # Errors
///
/// [`BatchFailed`] when any item failed.
fn report_batch(
    verb: &'static str,
    output_format: OutputFormat,
    requested: &[data::Item],
    outcomes: Vec<batch::Outcome>,
) -> anyhow::Result<()> {
    let failed = outcomes
        .iter()
        .filter(|(status, _)| status.code != tonic::Code::Ok as i32)
        .count();
    match output_format {
        OutputFormat::Json => output::print_json(&serde_json::json!({
            "results": outcomes.iter().map(|(status, entry)| serde_json::json!({
                "status": status_json(Some(status)),
                "entry": entry.as_ref().map_or(serde_json::Value::Null, output::entry_json),
            })).collect::<Vec<_>>()
        }))?,
        OutputFormat::Pretty => {
            let mut done = Vec::new();
            for ((status, entry), asked) in outcomes.into_iter().zip(requested) {
                let which = match asked {
                    Ok(asked) if asked.id.is_empty() => format!(
                        "the entry for {} under {}",
                        output::id_string(asked.spiffe_id.as_ref()),
                        output::id_string(asked.parent_id.as_ref())
                    ),
                    Ok(asked) => format!("entry {:?}", asked.id),
                    Err(e) => format!("entries[{}]", e.index),
                };
                match check(Some(&status), &format!("FAILED to {verb} {which}")) {
                    Ok(()) => done.extend(entry),
                    Err(e) => eprintln!("{e}"),
                }
            }
            print_entries(output_format, &done, false)?;
        }
    }
    if failed > 0 {
        return Err(BatchFailed {
            failed,
            total: requested.len(),
            noun: "entries",
            verb: if verb == "create" {
                "created"
            } else {
                "updated"
            },
        }
        .into());
    }
    Ok(())
}

/// The status of a result the server sent without one (SPIRE servers always set it).
fn no_status() -> types::Status {
    types::Status {
        code: tonic::Code::Internal as i32,
        message: "the server answered without a status".into(),
    }
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
                // No blank line before the first entry, as in SPIRE.
                out!("Found {}", plural(entries.len(), "entry", "entries"));
            }
            entries.iter().for_each(output::print_entry);
            Ok(())
        }
    }
}
