//! Entry writes through the server's admin API that report the entries' IDs, for benchmarks
//! that change or delete what they created.

use lanyard_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, BatchDeleteEntryRequest, BatchUpdateEntryRequest,
    entry_client::EntryClient,
};
use lanyard_proto::spire::api::types;
use tonic::transport::Channel;

/// An `Entry` service client on the admin socket.
pub(crate) struct Admin(EntryClient<Channel>);

impl Admin {
    pub(crate) fn new(admin: Channel) -> Self {
        Self(EntryClient::new(admin))
    }

    /// Creates `entries` in one call; returns their IDs in order, fails on any refusal.
    pub(crate) async fn create(
        &mut self,
        entries: Vec<types::Entry>,
    ) -> anyhow::Result<Vec<String>> {
        let asked = entries.len();
        let results = self
            .0
            .batch_create_entry(BatchCreateEntryRequest {
                entries,
                output_mask: None,
            })
            .await?
            .into_inner()
            .results;
        anyhow::ensure!(
            results.len() == asked,
            "BatchCreateEntry answered {} results for {asked} entries",
            results.len()
        );
        results
            .into_iter()
            .map(|r| {
                let status = r.status.unwrap_or_default();
                anyhow::ensure!(status.code == 0, "entry refused: {}", status.message);
                Ok(r.entry.unwrap_or_default().id)
            })
            .collect()
    }

    /// Creates one entry; returns its ID.
    pub(crate) async fn create_one(&mut self, entry: types::Entry) -> anyhow::Result<String> {
        self.create(vec![entry])
            .await?
            .pop()
            .ok_or_else(|| anyhow::anyhow!("BatchCreateEntry answered no result"))
    }

    /// Sets the DNS names of entry `id` to `dns` alone, leaving its other fields.
    pub(crate) async fn update_dns(&mut self, id: &str, dns: &str) -> anyhow::Result<()> {
        let result = self
            .0
            .batch_update_entry(BatchUpdateEntryRequest {
                entries: vec![types::Entry {
                    id: id.into(),
                    dns_names: vec![dns.into()],
                    ..Default::default()
                }],
                input_mask: Some(types::EntryMask {
                    dns_names: true,
                    ..Default::default()
                }),
                output_mask: None,
            })
            .await?
            .into_inner()
            .results
            .pop()
            .ok_or_else(|| anyhow::anyhow!("BatchUpdateEntry answered no result"))?;
        let status = result.status.unwrap_or_default();
        anyhow::ensure!(
            status.code == 0,
            "update of {id} refused: {}",
            status.message
        );
        Ok(())
    }

    /// Deletes entry `id`.
    pub(crate) async fn delete(&mut self, id: &str) -> anyhow::Result<()> {
        let result = self
            .0
            .batch_delete_entry(BatchDeleteEntryRequest {
                ids: vec![id.into()],
            })
            .await?
            .into_inner()
            .results
            .pop()
            .ok_or_else(|| anyhow::anyhow!("BatchDeleteEntry answered no result"))?;
        let status = result.status.unwrap_or_default();
        anyhow::ensure!(
            status.code == 0,
            "delete of {id} refused: {}",
            status.message
        );
        Ok(())
    }
}
