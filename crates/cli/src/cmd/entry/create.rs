//! `lanyard server entry create`.

use std::path::PathBuf;

use anyhow::Context;
use lanyard_proto::spire::api::server::entry::v1::BatchCreateEntryRequest;
use lanyard_proto::spire::api::types;

use super::fields::EntryFields;
use super::{client, data, report_batch};
use crate::admin;
use crate::cmd::OutputFormat;
use crate::cmd::server::SocketArg;

#[derive(clap::Args, Debug)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    socket: SocketArg,
    #[command(flatten)]
    fields: EntryFields,
    /// Read entries from a JSON file in SPIRE's `entry create -data` format (`-` for stdin).
    #[arg(long, conflicts_with_all = super::fields::FIELD_IDS)]
    data: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

impl CreateArgs {
    fn entries(&self) -> anyhow::Result<Vec<types::Entry>> {
        if let Some(path) = &self.data {
            return data::read_entries(path);
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
        Ok(vec![entry])
    }

    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let entries = self.entries()?;
        let response = client(&self.socket)
            .await?
            .batch_create_entry(BatchCreateEntryRequest {
                entries: entries.clone(),
                output_mask: None,
            })
            .await
            .map_err(|s| admin::rpc_error("cannot create entries", s))?
            .into_inner();
        report_batch(
            "create",
            self.output,
            &entries,
            response.results.into_iter().map(|r| (r.status, r.entry)),
        )
    }
}
