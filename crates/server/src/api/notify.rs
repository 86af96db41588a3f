//! `lanyard.agent.v1.Notify`: tells an agent to sync now instead of at its next interval.
//!
//! Each stream holds one receiver of the server's change counter (`changes.rs`) and nothing
//! else. After a change it checks its caller again (an evicted or banned agent loses the
//! stream), then compares what the agent syncs with what it last told the agent about:
//!
//! - entries: a digest of the entries the agent is authorized for (its own, those of node
//!   aliases it matches, and their descendants), so a change to another agent's entries sends
//!   nothing;
//! - the agent's selectors, which decide the node aliases it matches;
//! - the sequence number of the trust domain's bundle.
//!
//! Only a difference sends a message. Changes made before the stream gets to look are seen
//! together, so a burst yields one message with the latest revision.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use lanyard_datastore::AttestedAgent;
use lanyard_proto::lanyard::agent::v1::{ChangeReason, WatchRequest, WatchResponse, notify_server};
use lanyard_spiffe::Selector;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::caller::{AgentCredentials, Peer};
use crate::state::ServerState;

/// The response stream of Watch.
pub(crate) type WatchStream =
    Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send + 'static>>;

/// The Notify service; unlike the SPIRE services it needs the server's stop signal, because
/// its streams never end by themselves and would otherwise hold shutdown for the whole grace
/// period.
#[derive(Clone)]
pub(crate) struct NotifyService {
    state: Arc<ServerState>,
    stop: watch::Receiver<bool>,
}

impl NotifyService {
    pub(crate) fn new(state: Arc<ServerState>, stop: watch::Receiver<bool>) -> Self {
        Self { state, stop }
    }
}

#[tonic::async_trait]
impl notify_server::Notify for NotifyService {
    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let credentials = Peer::of(&request)?.agent_credentials()?;
        let agent = credentials.authorize(&self.state).await?;
        let mut changes = self.state.changes.subscribe();
        // Marked seen before reading the state: a change from here on wakes the stream.
        let revision = *changes.borrow_and_update();
        let told = Told::now(&self.state, &agent);
        tracing::debug!(agent.id = %agent.id, revision, "Watch stream opened");

        let first = WatchResponse {
            revision,
            reasons: vec![ChangeReason::Opened.into()],
        };
        let watcher = Watcher {
            state: Arc::clone(&self.state),
            credentials,
            changes,
            told,
            stop: self.stop.clone(),
        };
        let rest = futures::stream::unfold(Some(watcher), |watcher| async move {
            let mut watcher = watcher?;
            match watcher.next().await? {
                Ok(message) => Some((Ok(message), Some(watcher))),
                // The error is the stream's last item.
                Err(status) => Some((Err(status), None)),
            }
        });
        let stream = futures::stream::once(std::future::ready(Ok(first))).chain(rest);
        Ok(Response::new(Box::pin(stream)))
    }
}

/// One open stream.
struct Watcher {
    state: Arc<ServerState>,
    credentials: AgentCredentials,
    changes: watch::Receiver<u64>,
    told: Told,
    stop: watch::Receiver<bool>,
}

impl Watcher {
    /// The next message; `None` ends the stream quietly (server stopping), an error ends it
    /// with that status.
    async fn next(&mut self) -> Option<Result<WatchResponse, Status>> {
        loop {
            tokio::select! {
                _ = self.stop.wait_for(|stop| *stop) => return None,
                changed = self.changes.changed() => changed.ok()?,
            }
            let revision = *self.changes.borrow_and_update();
            let agent = match self.caller_now().await {
                Ok(agent) => agent,
                Err(status) => {
                    tracing::debug!(
                        agent.id = %self.credentials.id,
                        reason = status.message(),
                        "Watch stream ended"
                    );
                    return Some(Err(status));
                }
            };
            let reasons = self.told.update(&self.state, &agent);
            if !reasons.is_empty() {
                return Some(Ok(WatchResponse { revision, reasons }));
            }
        }
    }

    /// The caller's record, checked as at the stream's start. A certificate that a renewal
    /// replaced ends the stream without the denial log line: the agent reopens it with its
    /// new SVID, which is routine, not a refused caller.
    async fn caller_now(&self) -> Result<AttestedAgent, Status> {
        let serial = &self.credentials.serial;
        if let Some(agent) = self.state.agent(&self.credentials.id)
            && !agent.banned
            && &agent.serial != serial
            && agent.new_serial.as_ref() != Some(serial)
        {
            return Err(Status::unauthenticated(format!(
                "certificate serial {serial} was replaced by a renewal: watch again with the \
                 current SVID"
            )));
        }
        self.credentials.authorize(&self.state).await
    }
}

/// What the stream last told its agent about.
struct Told {
    /// The entry index revision `digest` was computed at (or after).
    entries_revision: u64,
    digest: u64,
    selectors: Vec<Selector>,
    bundle_sequence: u64,
}

impl Told {
    fn now(state: &ServerState, agent: &AttestedAgent) -> Self {
        // The revision is read first: a change that lands before the digest is computed is in
        // the digest, and makes the next comparison recompute it (finding nothing new).
        let entries_revision = state.changes.entries_revision();
        Self {
            entries_revision,
            digest: state.authorized_digest(agent),
            selectors: sorted(&agent.selectors),
            bundle_sequence: state.changes.bundle_sequence(),
        }
    }

    /// Takes the current state; returns what differs from what was told.
    fn update(&mut self, state: &ServerState, agent: &AttestedAgent) -> Vec<i32> {
        let mut reasons = Vec::new();
        let selectors = sorted(&agent.selectors);
        let agent_changed = selectors != self.selectors;
        let entries_revision = state.changes.entries_revision();
        // The selectors decide which node aliases apply, so they count as an entry change too.
        if entries_revision != self.entries_revision || agent_changed {
            self.entries_revision = entries_revision;
            let digest = state.authorized_digest(agent);
            if digest != self.digest {
                self.digest = digest;
                reasons.push(ChangeReason::Entries.into());
            }
        }
        if agent_changed {
            self.selectors = selectors;
            reasons.push(ChangeReason::Agent.into());
        }
        let bundle_sequence = state.changes.bundle_sequence();
        if bundle_sequence != self.bundle_sequence {
            self.bundle_sequence = bundle_sequence;
            reasons.push(ChangeReason::Bundle.into());
        }
        reasons
    }
}

fn sorted(selectors: &[Selector]) -> Vec<Selector> {
    let mut sorted = selectors.to_vec();
    sorted.sort();
    sorted
}
