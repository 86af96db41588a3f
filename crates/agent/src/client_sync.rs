//! `Entry/SyncAuthorizedEntries`, the agent's side of SPIRE's revision-diff entry sync.
//!
//! The agent opens the stream with an empty request. A server with at most one page of entries
//! for the agent answers with all of them at once and ends the stream. Otherwise it pages down
//! `(id, revision)` pairs; the agent asks back, by ID, for the entries it does not hold at that
//! revision, and gets only those in full. A sync of 100,000 unchanged entries thus moves
//! revisions, not entries.

use std::collections::HashSet;

use lanyard_proto::spire::api::server::entry::v1::{
    SyncAuthorizedEntriesRequest, SyncAuthorizedEntriesResponse, entry_client::EntryClient,
};
use lanyard_proto::spire::api::types;
use tokio::sync::mpsc;

use super::{AUTHORIZED_ENTRIES_MAX_BYTES, RpcError, ServerClient};

/// The RPC name, for errors.
pub(crate) const SYNC_RPC: &str = "Entry/SyncAuthorizedEntries";

/// Most entry IDs the agent names in one request: SPIRE's page size, so that no request grows
/// past gRPC's default message limit however many entries changed.
const IDS_PER_REQUEST: usize = 500;

/// What a sync brought back.
#[derive(Debug, PartialEq)]
pub(crate) enum AuthorizedEntries {
    /// Every authorized entry in full: the server had at most a page of them.
    Full(Vec<types::Entry>),
    /// The IDs of every authorized entry, and in full only those the agent did not hold at the
    /// server's revision. An ID in `ids` without an entry in `changed` is unchanged.
    Diff {
        /// Every entry the agent is authorized for.
        ids: HashSet<String>,
        /// The entries that are new or changed.
        changed: Vec<types::Entry>,
    },
}

impl ServerClient {
    /// `Entry/SyncAuthorizedEntries`: the authorized entries, fetching in full only those
    /// whose revision `held` (entry ID to the revision the agent has) does not know.
    ///
    /// # Errors
    ///
    /// The server's status (`Unimplemented` from servers that predate the RPC: use
    /// [`ServerClient::authorized_entries`] then), or a protocol error when the server leaves
    /// out an entry it announced.
    pub(crate) async fn sync_authorized_entries(
        &self,
        held: impl Fn(&str) -> Option<i64>,
    ) -> Result<AuthorizedEntries, RpcError> {
        let (requests, outgoing) = mpsc::channel(2);
        // The server reads the first request before it answers the call, so it goes first.
        send(&requests, Vec::new()).await?;
        let mut responses = EntryClient::new(self.channel())
            .max_decoding_message_size(AUTHORIZED_ENTRIES_MAX_BYTES)
            .sync_authorized_entries(tokio_stream::wrappers::ReceiverStream::new(outgoing))
            .await
            .map_err(|s| self.error(SYNC_RPC, &s))?
            .into_inner();

        // Every revision page comes before the server reads the agent's requests.
        let mut ids = HashSet::new();
        let mut wanted = Vec::new();
        let mut changed = Vec::new();
        loop {
            let page = self.next_page(&mut responses).await?;
            for revision in page.entry_revisions {
                if held(&revision.id) != Some(revision.revision_number) {
                    wanted.push(revision.id.clone());
                }
                ids.insert(revision.id);
            }
            changed.extend(page.entries);
            if !page.more {
                break;
            }
        }
        if ids.is_empty() {
            return Ok(AuthorizedEntries::Full(changed));
        }

        for chunk in wanted.chunks(IDS_PER_REQUEST) {
            send(&requests, chunk.to_vec()).await?;
            let mut expected: HashSet<&str> = chunk.iter().map(String::as_str).collect();
            loop {
                let answer = self.next_page(&mut responses).await?;
                check_answer(&answer)?;
                for entry in &answer.entries {
                    expected.remove(entry.id.as_str());
                }
                changed.extend(answer.entries);
                if !answer.more {
                    break;
                }
            }
            if let Some(missing) = expected.iter().next() {
                return Err(RpcError::protocol(
                    SYNC_RPC,
                    format!(
                        "entry {missing:?} was announced but not sent when asked for ({} \
                         missing)",
                        expected.len()
                    ),
                ));
            }
        }
        // Closing our side ends the server's loop.
        drop(requests);
        changed.retain(|e| ids.contains(&e.id));
        Ok(AuthorizedEntries::Diff { ids, changed })
    }

    /// The next response; the end of the stream is an error, as the agent reads only what
    /// the server announced.
    async fn next_page(
        &self,
        responses: &mut tonic::Streaming<SyncAuthorizedEntriesResponse>,
    ) -> Result<SyncAuthorizedEntriesResponse, RpcError> {
        match responses.message().await {
            Ok(Some(page)) => Ok(page),
            Ok(None) => Err(RpcError::protocol(
                SYNC_RPC,
                "the server ended the stream before the last announced page",
            )),
            Err(s) => Err(self.error(SYNC_RPC, &s)),
        }
    }
}

/// Queues a request for the stream.
async fn send(
    requests: &mpsc::Sender<SyncAuthorizedEntriesRequest>,
    ids: Vec<String>,
) -> Result<(), RpcError> {
    requests
        .send(SyncAuthorizedEntriesRequest {
            output_mask: None,
            ids,
        })
        .await
        .map_err(|_| RpcError::protocol(SYNC_RPC, "the stream closed before the request was sent"))
}

/// An answer to a request by ID carries entries only.
fn check_answer(answer: &SyncAuthorizedEntriesResponse) -> Result<(), RpcError> {
    if answer.entry_revisions.is_empty() {
        return Ok(());
    }
    Err(RpcError::protocol(
        SYNC_RPC,
        format!(
            "{} revisions in the answer to a request for entries: only entries belong there",
            answer.entry_revisions.len()
        ),
    ))
}
