//! `lanyard server entry delete`: entries by ID, from repeated `--entry-id` or SPIRE's
//! `entry delete -data` JSON (`{"ids": ["..."]}`), each answered with its own status.

use std::path::{Path, PathBuf};

use lanyard_proto::spire::api::server::entry::v1::BatchDeleteEntryRequest;
use lanyard_proto::spire::api::types;
use serde::Deserialize;
use tonic::Code;

use super::batch::{MAX_CALL_BYTES, chunks};
use super::data::{DataError, read_bytes};
use super::{client, no_status};
use crate::cmd::OutputFormat;
use crate::cmd::admin_out::BatchFailed;
use crate::cmd::server::SocketArg;
use crate::cmd::wire_json::status_json;
use crate::output::{self, out, out_raw};

#[derive(clap::Args, Debug)]
pub(crate) struct DeleteArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// An entry to delete; repeat the flag to delete several in one batch.
    #[arg(long, alias = "entryID", required_unless_present = "data")]
    entry_id: Vec<String>,
    /// Read the IDs from a JSON file in SPIRE's `entry delete -data` format, `{"ids":
    /// ["..."]}` (`-` for stdin), at most 64 MiB. Malformed JSON, a wrong shape or an unknown
    /// key refuses the whole file.
    #[arg(long, alias = "file", conflicts_with = "entry_id")]
    data: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(super) output: OutputFormat,
}

/// The status the server (or the client, for an ID never sent) gave one ID, and that ID.
pub(crate) type Outcome = (types::Status, String);

impl DeleteArgs {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let ids = match &self.data {
            Some(path) => read_ids(path)?,
            None => self.entry_id.clone(),
        };
        let mut client = client(&self.socket).await?;
        let outcomes = send(ids, async |ids| {
            let response = client
                .batch_delete_entry(BatchDeleteEntryRequest { ids })
                .await?
                .into_inner();
            Ok(response
                .results
                .into_iter()
                .map(|r| (r.status.unwrap_or_else(no_status), r.id))
                .collect())
        })
        .await;
        report(self.output, &outcomes)
    }
}

/// The IDs of a `--data` file (`-` is stdin), in order.
///
/// # Errors
///
/// [`DataError`] when the file cannot be read, is not JSON, is not `{"ids": [...]}` with
/// strings only, or lists no ID.
pub(crate) fn read_ids(path: &Path) -> Result<Vec<String>, DataError> {
    let bytes = read_bytes(path)?;
    parse_ids(&bytes).map_err(|e| match e {
        IdsError::Syntax(source) => DataError::Syntax {
            path: path.to_path_buf(),
            source,
        },
        IdsError::Shape(message) => DataError::Shape {
            path: path.to_path_buf(),
            message,
        },
    })
}

/// Sends `ids` through `call`, at most [`super::batch::MAX_ITEMS_PER_CALL`] and
/// [`MAX_CALL_BYTES`] at a time, and returns one outcome per ID in order. An ID too large for
/// any call gets `InvalidArgument` without being sent; when a whole call fails, each of its
/// IDs gets that call's status, and later calls still go out.
pub(crate) async fn send(
    ids: Vec<String>,
    mut call: impl AsyncFnMut(Vec<String>) -> Result<Vec<Outcome>, tonic::Status>,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; ids.len()];
    let mut to_send = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        // Tag and length varint of a repeated string: 12 bytes bound them.
        let size = id.len() + 12;
        if size > MAX_CALL_BYTES {
            let message = format!(
                "ids[{i}]: {} bytes: over the {MAX_CALL_BYTES}-byte limit of one call",
                id.len()
            );
            outcomes[i] = Some((status(Code::InvalidArgument, message), String::new()));
        } else {
            to_send.push((i, size));
        }
    }

    let sizes: Vec<usize> = to_send.iter().map(|(_, size)| *size).collect();
    for range in chunks(&sizes) {
        let slice = &to_send[range];
        let batch = slice.iter().map(|(i, _)| ids[*i].clone()).collect();
        let results = match call(batch).await {
            Ok(results) if results.len() == slice.len() => results,
            Ok(results) => {
                let message = format!(
                    "the server answered {} results for {} IDs",
                    results.len(),
                    slice.len()
                );
                vec![(status(Code::Internal, message), String::new()); slice.len()]
            }
            Err(s) => {
                let lost = status(s.code(), s.message().to_string());
                vec![(lost, String::new()); slice.len()]
            }
        };
        for ((i, _), outcome) in slice.iter().zip(results) {
            outcomes[*i] = Some(outcome);
        }
    }

    // An outcome without an ID (made here, or a server that left it out) names the one asked.
    outcomes
        .into_iter()
        .zip(ids)
        .map(|(outcome, asked)| match outcome {
            Some((status, id)) if id.is_empty() => (status, asked),
            Some(outcome) => outcome,
            None => (status(Code::Internal, "not sent".into()), asked),
        })
        .collect()
}

/// Prints SPIRE's `{"results": [{"status": ..., "id": ...}]}` in JSON, else SPIRE's text:
/// a line per deleted ID on stdout, a line per failure on stderr, then a summary on stdout
/// (which, as in SPIRE, ends without a newline).
///
/// # Errors
///
/// [`BatchFailed`] when any ID could not be deleted.
fn report(output_format: OutputFormat, outcomes: &[Outcome]) -> anyhow::Result<()> {
    let is_ok = |status: &types::Status| status.code == Code::Ok as i32;
    let failed = outcomes.iter().filter(|(status, _)| !is_ok(status)).count();
    let deleted = outcomes.len() - failed;
    match output_format {
        OutputFormat::Json => output::print_json(&serde_json::json!({
            "results": outcomes.iter().map(|(status, id)| serde_json::json!({
                "status": status_json(Some(status)),
                "id": id,
            })).collect::<Vec<_>>()
        }))?,
        OutputFormat::Pretty => {
            for (_, id) in outcomes.iter().filter(|(status, _)| is_ok(status)) {
                out!("Deleted entry with ID: {id}");
            }
            if deleted > 0 {
                out!("\n");
            }
            for (status, id) in outcomes.iter().filter(|(status, _)| !is_ok(status)) {
                eprintln!(
                    "Failed to delete entry with ID {id} (code: {:?}, msg: {:?})",
                    Code::from_i32(status.code),
                    status.message
                );
            }
            if failed == 0 {
                out_raw!("Deleted {deleted} entries successfully");
            } else if deleted == 0 {
                out_raw!("\n\nFailed to delete {failed} entries");
            } else {
                out_raw!(
                    "\n\nDeleted {deleted} entries successfully, but failed to delete {failed} \
                     entries"
                );
            }
        }
    }
    if failed > 0 {
        return Err(BatchFailed {
            failed,
            total: outcomes.len(),
            noun: "entries",
            verb: "deleted",
        }
        .into());
    }
    Ok(())
}

/// SPIRE's delete request as JSON; `ids` is the same in proto and protobuf-JSON names.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdsData {
    ids: Vec<String>,
}

enum IdsError {
    Syntax(serde_json::Error),
    Shape(String),
}

fn parse_ids(bytes: &[u8]) -> Result<Vec<String>, IdsError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(IdsError::Syntax)?;
    let data: IdsData = serde_json::from_value(value)
        .map_err(|e| IdsError::Shape(format!("expected {{\"ids\": [\"...\"]}}: {e}")))?;
    if data.ids.is_empty() {
        return Err(IdsError::Shape("\"ids\" is empty: nothing to do".into()));
    }
    Ok(data.ids)
}

fn status(code: Code, message: String) -> types::Status {
    types::Status {
        code: code as i32,
        message,
    }
}

#[cfg(test)]
#[path = "delete_tests.rs"]
mod tests;
