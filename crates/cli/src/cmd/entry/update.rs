//! `lanyard server entry update`: by ID with the fields given as flags (the others stay), or
//! whole entries from `--data` (every field replaced, as SPIRE's `entry update -data` does).

use std::path::PathBuf;

use lanyard_proto::spire::api::server::entry::v1::BatchUpdateEntryRequest;
use lanyard_proto::spire::api::types;

use super::fields::{self, EntryFields};
use super::{batch, client, data, no_status, report_batch};
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
    /// Replace entries from a JSON file in SPIRE's `-data` format (`-` for stdin), at most
    /// 64 MiB; each entry needs its `id`. An entry with a bad value (no `id`, an invalid ID, an
    /// out-of-range TTL) is reported as failed and the others are still updated; malformed
    /// JSON, a wrong shape or an unknown key refuses the whole file.
    #[arg(long, conflicts_with_all = [fields::FIELD_IDS, &["entry_id"]].concat())]
    data: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(super) output: OutputFormat,
}

impl UpdateArgs {
    /// The entries to send and the fields to overwrite.
    fn request(&self) -> anyhow::Result<(Vec<data::Item>, types::EntryMask)> {
        if let Some(path) = &self.data {
            let items = data::read_entries(path)?
                .into_iter()
                .enumerate()
                .map(|(index, item)| match item {
                    Ok(e) if e.id.is_empty() => Err(data::ItemError {
                        index,
                        message: "id: missing: updates name the entry they change".into(),
                    }),
                    other => other,
                })
                .collect();
            return Ok((items, fields::full_mask()));
        }
        let (mut entry, mask) = self.fields.to_wire()?;
        if fields::is_empty(&mask) {
            anyhow::bail!("nothing to update: give at least one field flag (see --help) or --data");
        }
        if mask.selectors && entry.selectors.is_empty() {
            anyhow::bail!("--selector: an entry needs at least one selector");
        }
        entry.id = self.entry_id.clone().unwrap_or_default();
        Ok((vec![Ok(entry)], mask))
    }

    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let (items, mask) = self.request()?;
        let mut client = client(&self.socket).await?;
        let outcomes = batch::send(items.clone(), async |entries| {
            let response = client
                .batch_update_entry(BatchUpdateEntryRequest {
                    entries,
                    input_mask: Some(mask),
                    output_mask: None,
                })
                .await?
                .into_inner();
            Ok(response
                .results
                .into_iter()
                .map(|r| (r.status.unwrap_or_else(no_status), r.entry))
                .collect())
        })
        .await;
        report_batch("update", self.output, &items, outcomes)
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
        let entry = entries[0].as_ref().unwrap();
        assert_eq!(entry.id, "abc");
        assert_eq!(entry.x509_svid_ttl, 120);
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
