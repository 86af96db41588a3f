//! GetAuthorizedEntries and SyncAuthorizedEntries: the entries an agent may hold SVIDs for,
//! answered from the in-memory index without touching the datastore.
//!
//! SyncAuthorizedEntries follows SPIRE's revision-diff protocol (entry.proto): the agent opens
//! the stream with an output mask (which must keep `revision_number`) and no IDs. When the
//! agent is authorized for at most [`SYNC_PAGE_SIZE`] entries, one response carries them all
//! and the stream ends. Otherwise the server pages down `(id, revision)` pairs, `more` set on
//! every page but the last; the agent then asks for the entries it lacks by ID, and the server
//! pages those down the same way, until the agent closes its side. Every answer comes from
//! the snapshot taken when the stream opened; IDs outside it are skipped.

use std::collections::BTreeMap;
use std::pin::Pin;

use futures::Stream;
use lanyard_proto::spire::api::server::entry::v1::{
    EntryRevision, GetAuthorizedEntriesRequest, GetAuthorizedEntriesResponse,
    SyncAuthorizedEntriesRequest, SyncAuthorizedEntriesResponse,
};
use lanyard_proto::spire::api::types;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::Api;
use crate::caller::Peer;
use crate::convert::wire_entry;
use crate::mask;

/// Entries (or revisions) per response page; SPIRE's default entry page size.
pub(crate) const SYNC_PAGE_SIZE: usize = 500;

/// The response stream of SyncAuthorizedEntries.
pub(crate) type SyncStream =
    Pin<Box<dyn Stream<Item = Result<SyncAuthorizedEntriesResponse, Status>> + Send + 'static>>;

impl Api {
    pub(super) async fn authorized_entries(
        &self,
        request: Request<GetAuthorizedEntriesRequest>,
    ) -> Result<Response<GetAuthorizedEntriesResponse>, Status> {
        let agent = Peer::of(&request)?.require_agent(&self.state).await?;
        let output = request.into_inner().output_mask;
        let entries = self.state.authorized_entries(&agent);
        Ok(Response::new(GetAuthorizedEntriesResponse {
            entries: entries
                .iter()
                .map(|e| mask::entry(wire_entry(e), output.as_ref()))
                .collect(),
        }))
    }

    pub(super) async fn sync_entries(
        &self,
        request: Request<Streaming<SyncAuthorizedEntriesRequest>>,
    ) -> Result<Response<SyncStream>, Status> {
        let agent = Peer::of(&request)?.require_agent(&self.state).await?;
        let mut incoming = request.into_inner();
        let first = incoming.message().await?.ok_or_else(|| {
            Status::invalid_argument("the stream closed before the initial request")
        })?;
        if !first.ids.is_empty() {
            return Err(Status::invalid_argument(
                "ids: the initial request must not name entries; ask for them after the \
                 revisions arrive",
            ));
        }
        if first
            .output_mask
            .as_ref()
            .is_some_and(|m| !m.revision_number)
        {
            return Err(Status::invalid_argument(
                "output_mask.revision_number: it cannot be masked, the sync compares revisions",
            ));
        }
        let snapshot: BTreeMap<String, types::Entry> = self
            .state
            .authorized_entries(&agent)
            .iter()
            .map(|e| {
                let wire = mask::entry(wire_entry(e), first.output_mask.as_ref());
                (wire.id.clone(), wire)
            })
            .collect();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(serve(snapshot, incoming, tx));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

type Sender = mpsc::Sender<Result<SyncAuthorizedEntriesResponse, Status>>;

/// Runs one sync stream after its initial request. Returns when the agent closes its side,
/// the stream fails, or (small sets) after the single full response.
async fn serve(
    snapshot: BTreeMap<String, types::Entry>,
    mut incoming: Streaming<SyncAuthorizedEntriesRequest>,
    tx: Sender,
) {
    if snapshot.len() <= SYNC_PAGE_SIZE {
        let _ = tx
            .send(Ok(SyncAuthorizedEntriesResponse {
                entry_revisions: Vec::new(),
                entries: snapshot.into_values().collect(),
                more: false,
            }))
            .await;
        return;
    }

    let revisions: Vec<EntryRevision> = snapshot
        .values()
        .map(|e| EntryRevision {
            id: e.id.clone(),
            revision_number: e.revision_number,
        })
        .collect();
    let pages = revisions.chunks(SYNC_PAGE_SIZE).count();
    for (n, page) in revisions.chunks(SYNC_PAGE_SIZE).enumerate() {
        let response = SyncAuthorizedEntriesResponse {
            entry_revisions: page.to_vec(),
            entries: Vec::new(),
            more: n + 1 < pages,
        };
        if tx.send(Ok(response)).await.is_err() {
            return;
        }
    }

    loop {
        let request = match incoming.message().await {
            Ok(Some(request)) => request,
            // The agent has everything it wanted, or went away.
            Ok(None) | Err(_) => return,
        };
        let mut ids = request.ids;
        ids.sort();
        ids.dedup();
        let wanted: Vec<types::Entry> = ids
            .iter()
            .filter_map(|id| snapshot.get(id).cloned())
            .collect();
        // Always at least one response, so an agent that asked only for unknown IDs is not
        // left waiting.
        let pages = wanted.chunks(SYNC_PAGE_SIZE).count().max(1);
        let mut chunks = wanted.chunks(SYNC_PAGE_SIZE);
        for n in 0..pages {
            let response = SyncAuthorizedEntriesResponse {
                entry_revisions: Vec::new(),
                entries: chunks.next().map(<[_]>::to_vec).unwrap_or_default(),
                more: n + 1 < pages,
            };
            if tx.send(Ok(response)).await.is_err() {
                return;
            }
        }
    }
}
