//! `lanyard server entry update`: by ID with the fields given as flags (the others stay), or
//! whole entries from `--data` (every field replaced, as SPIRE's `entry update -data` does).

use std::path::PathBuf;

use lanyard_proto::spire::api::server::entry::v1::BatchUpdateEntryRequest;
use lanyard_proto::spire::api::types;

use super::fields::{self, EntryFields};
use super::{client, data, report_batch};
use crate::admin;
use crate::cmd::OutputFormat;
use crate::cmd::server::SocketArg;

#[derive(clap::Args, Debug)]
pub(crate) struct UpdateArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// The entry to change.
    #[arg(long, alias = "entryID", required_unless_present = "data")]
    entry_id: Option<String>,
    #[command(flatten)]
    fields: EntryFields,
    /// Replace entries from a JSON file in SPIRE's `-data` format (`-` for stdin); each entry
    /// needs its `id`.
    #[arg(long, conflicts_with_all = [fields::FIELD_IDS, &["entry_id"]].concat())]
    data: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

impl UpdateArgs {
    /// The entries to send and the fields to overwrite.
    fn request(&self) -> anyhow::Result<(Vec<types::Entry>, types::EntryMask)> {
        if let Some(path) = &self.data {
            let entries = data::read_entries(path)?;
            if let Some(i) = entries.iter().position(|e| e.id.is_empty()) {
                anyhow::bail!(
                    "entries[{i}] in {} has no \"id\": updates name the entry they change",
                    path.display()
                );
            }
            return Ok((entries, fields::full_mask()));
        }
        let (mut entry, mask) = self.fields.to_wire()?;
        if fields::is_empty(&mask) {
            anyhow::bail!("nothing to update: give at least one field flag (see --help) or --data");
        }
        if mask.selectors && entry.selectors.is_empty() {
            anyhow::bail!("--selector: an entry needs at least one selector");
        }
        entry.id = self.entry_id.clone().unwrap_or_default();
        Ok((vec![entry], mask))
    }

    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let (entries, mask) = self.request()?;
        let response = client(&self.socket)
            .await?
            .batch_update_entry(BatchUpdateEntryRequest {
                entries: entries.clone(),
                input_mask: Some(mask),
                output_mask: None,
            })
            .await
            .map_err(|s| admin::rpc_error("cannot update entries", s))?
            .into_inner();
        report_batch(
            "update",
            self.output,
            &entries,
            response.results.into_iter().map(|r| (r.status, r.entry)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: UpdateArgs,
    }

    fn parse(args: &[&str]) -> Result<UpdateArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn sends_only_the_given_fields() {
        let a = parse(&["--entry-id", "abc", "--x509-svid-ttl", "2m"]).unwrap();
        let (entries, mask) = a.request().unwrap();
        assert_eq!(entries[0].id, "abc");
        assert_eq!(entries[0].x509_svid_ttl, 120);
        assert_eq!(
            mask,
            types::EntryMask {
                x509_svid_ttl: true,
                ..Default::default()
            }
        );
    }

    #[test]
    fn refuses_an_update_without_fields() {
        let err = parse(&["--entryID", "abc"]).unwrap().request().unwrap_err();
        assert!(err.to_string().contains("nothing to update"), "{err}");
    }

    #[test]
    fn needs_an_entry_id_or_data_and_not_both() {
        assert!(parse(&["--admin"]).is_err());
        assert!(parse(&["--entry-id", "a", "--data", "x.json"]).is_err());
        assert!(parse(&["--data", "x.json", "--hint", "h"]).is_err());
    }
}
