//! `lanyard server entry create|update|show|count|delete`: registration entries, with SPIRE's
//! flags (kebab-case, SPIRE's camelCase spellings as aliases) and its `--data` JSON.

use lanyard_proto::spire::api::server::entry::v1::entry_client::EntryClient;
use lanyard_proto::spire::api::types;
use tonic::transport::Channel;

use super::OutputFormat;
use super::admin_out::{BatchFailed, plural};
use super::server::SocketArg;
use super::wire_json::{entry_json, list_json, status_json};
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

/// Prints a batch's outcomes, one per requested item in order, as SPIRE's CLI does: the
/// `{"results": [...]}` response in JSON (see `admin_out`), else the entries done on stdout
/// and each failure on stderr with the entry as it was asked for. A failed result carries the
/// requested entry, not what the server echoed, because SPIRE's CLI fills it in that way.
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
    let outcomes: Vec<batch::Outcome> = outcomes
        .into_iter()
        .zip(requested)
        .map(|((status, entry), asked)| match asked {
            Ok(asked) if status.code != tonic::Code::Ok as i32 => (status, Some(asked.clone())),
            _ => (status, entry),
        })
        .collect();
    let failed = outcomes
        .iter()
        .filter(|(status, _)| status.code != tonic::Code::Ok as i32)
        .count();
    match output_format {
        OutputFormat::Json => output::print_json(&serde_json::json!({
            "results": outcomes.iter().map(|(status, entry)| serde_json::json!({
                "status": status_json(Some(status)),
                "entry": entry.as_ref().map_or(serde_json::Value::Null, entry_json),
            })).collect::<Vec<_>>()
        }))?,
        OutputFormat::Pretty => print_batch_text(verb, &outcomes, requested),
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

/// SPIRE's text for a batch: every entry written on stdout, then every failure on stderr as
/// `Failed to <verb> the following entry (code: <name>, msg: "<message>"):` and the entry. An
/// item refused before sending (a bad `--data` entry) has no entry to show; its line names
/// its index instead.
fn print_batch_text(verb: &str, outcomes: &[batch::Outcome], requested: &[data::Item]) {
    let ok = |status: &types::Status| status.code == tonic::Code::Ok as i32;
    for (_, entry) in outcomes.iter().filter(|(status, _)| ok(status)) {
        entry.iter().for_each(output::print_entry);
    }
    for ((status, entry), asked) in outcomes.iter().zip(requested) {
        if ok(status) {
            continue;
        }
        let code = tonic::Code::from_i32(status.code);
        match (entry, asked) {
            (Some(entry), _) => eprint!(
                "Failed to {verb} the following entry (code: {code:?}, msg: {:?}):\n{}",
                status.message,
                output::entry_text(entry)
            ),
            (None, Err(e)) => eprintln!(
                "Failed to {verb} entries[{}] (code: {code:?}, msg: {:?})",
                e.index, status.message
            ),
            (None, Ok(_)) => eprintln!(
                "Failed to {verb} an entry (code: {code:?}, msg: {:?})",
                status.message
            ),
        }
    }
}

/// The status of a result the server sent without one (SPIRE servers always set it).
fn no_status() -> types::Status {
    types::Status {
        code: tonic::Code::Internal as i32,
        message: "the server answered without a status".into(),
    }
}

/// SPIRE's `ListEntriesResponse` in JSON, or a count line and SPIRE's text blocks.
fn print_entries(output_format: OutputFormat, entries: &[types::Entry]) -> anyhow::Result<()> {
    match output_format {
        OutputFormat::Json => output::print_json(&list_json(
            "entries",
            entries.iter().map(entry_json).collect(),
        )),
        OutputFormat::Pretty => {
            // No blank line before the first entry, as in SPIRE.
            out!("Found {}", plural(entries.len(), "entry", "entries"));
            entries.iter().for_each(output::print_entry);
            Ok(())
        }
    }
}
