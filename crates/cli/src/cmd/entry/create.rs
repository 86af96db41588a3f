//! `lanyard server entry create`.

use std::path::PathBuf;

use anyhow::Context;
use lanyard_proto::spire::api::server::entry::v1::BatchCreateEntryRequest;

use super::fields::EntryFields;
use super::{batch, client, data, no_status, report_batch};
use crate::cmd::OutputFormat;
use crate::cmd::server::SocketArg;

#[derive(clap::Args, Debug)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    socket: SocketArg,
    #[command(flatten)]
    fields: EntryFields,
    /// Read entries from a JSON file in SPIRE's `entry create -data` format (`-` for stdin),
    /// at most 64 MiB; proto (`spiffe_id`) and protobuf-JSON (`spiffeId`) field names are both
    /// accepted. An entry with a bad value (an invalid ID, an out-of-range TTL) is reported as
    /// failed and the others are still created; malformed JSON, a wrong shape or an unknown key
    /// refuses the whole file.
    #[arg(long, conflicts_with_all = super::fields::FIELD_IDS)]
    data: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub(super) output: OutputFormat,
}

impl CreateArgs {
    fn entries(&self) -> anyhow::Result<Vec<data::Item>> {
        if let Some(path) = &self.data {
            return Ok(data::read_entries(path)?);
        }
        let f = &self.fields;
        f.spiffe_id
            .as_ref()
            .context("--spiffe-id is required (or --data)")?;
        if f.parent_id.is_none() && !f.node {
            anyhow::bail!("--parent-id (or --node) is required");
        }
        if f.selectors.is_empty() {
            anyhow::bail!("--selector is required: an entry without selectors matches nothing");
        }
        let (entry, _) = f.to_wire()?;
        Ok(vec![Ok(entry)])
    }

    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let items = self.entries()?;
        let mut client = client(&self.socket).await?;
        let outcomes = batch::send(items.clone(), async |entries| {
            let response = client
                .batch_create_entry(BatchCreateEntryRequest {
                    entries,
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
        report_batch("create", self.output, &items, outcomes)
    }
}
