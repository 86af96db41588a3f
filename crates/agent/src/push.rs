//! The push channel: keeps a `lanyard.agent.v1.Notify/Watch` stream open to the server and
//! wakes the sync loop on every message, so entry and bundle changes arrive within a round trip
//! instead of at the next `sync_interval`. The stream carries no data: the sync that follows
//! fetches it through the SPIRE RPCs as usual, and the periodic sync stays as the fallback.
//!
//! The first message of every stream wakes the sync too: changes made while no stream was open
//! (at start, during a reconnect) are then picked up at once rather than at the next interval.
//!
//! A server that answers `Unimplemented` (SPIRE, an older Lanyard) does not offer the service;
//! the task then stops for good and the agent relies on the periodic sync alone.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::client::{RpcError, ServerClient, WatchStream};
use crate::retry::{FailureLog, backoff};

/// The first wait before reopening a stream; repeated failures double it up to eight times.
const RETRY_BASE: Duration = Duration::from_secs(1);

/// Follows the server's notifications until `cancel` fires or the server turns out not to
/// offer them.
///
/// # Cancel safety
///
/// Meant to run as its own task and stop through `cancel`; dropping it closes the stream.
pub(crate) async fn run(client: Arc<ServerClient>, wake: Arc<Notify>, cancel: CancellationToken) {
    let mut failures = FailureLog::new("Watching the server for changes");
    loop {
        let opened = tokio::select! {
            () = cancel.cancelled() => return,
            r = client.watch() => r,
        };
        match opened {
            Ok(stream) => {
                let ended = tokio::select! {
                    () = cancel.cancelled() => return,
                    r = follow(stream, &wake, &mut failures) => r,
                };
                match ended {
                    Ok(()) => tracing::debug!("The server ended the watch stream; reopening"),
                    Err(e) if e.denial.is_some() => refused(&e, &wake),
                    // A renewed agent SVID ends the old stream, which is routine.
                    Err(e) => tracing::debug!(error = %e, "Watch stream ended; reopening"),
                }
            }
            Err(e) if e.code == tonic::Code::Unimplemented => {
                tracing::info!(
                    "The server does not push changes (Notify/Watch unimplemented); relying on \
                     the periodic sync"
                );
                return;
            }
            Err(e) if e.denial.is_some() => refused(&e, &wake),
            Err(e) => failures.failed(&e),
        }
        // Even after a stream that worked: a server that ends streams at once is not hammered.
        let wait = backoff(RETRY_BASE, failures.count.max(1));
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// The server refused the agent itself: the sync loop decides what to do, so it runs now
/// (its next RPC meets the same refusal). The stream is reopened after the usual wait, with the
/// new SVID if the loop attested again.
fn refused(error: &RpcError, wake: &Notify) {
    tracing::debug!(%error, "The server refused the agent on the watch stream; syncing now");
    wake.notify_one();
}

/// Wakes the sync loop on every message of `stream` until it ends.
async fn follow(
    mut stream: WatchStream,
    wake: &Notify,
    failures: &mut FailureLog,
) -> Result<(), RpcError> {
    while let Some(message) = stream.next().await? {
        failures.succeeded();
        tracing::debug!(
            revision = message.revision,
            reasons = ?message.reasons().collect::<Vec<_>>(),
            "Server announced a change; syncing now"
        );
        // Stores a permit when the loop is mid-round, so the round after it starts at once.
        wake.notify_one();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;

    use futures::{Stream, StreamExt};
    use lanyard_proto::lanyard::agent::v1::notify_server::{self, NotifyServer};
    use lanyard_proto::lanyard::agent::v1::{ChangeReason, WatchRequest, WatchResponse};
    use tokio::sync::broadcast;
    use tonic::{Request, Response, Status};

    use super::*;
    use crate::config::ServerAddress;
    use crate::test_support::TestCa;
    use crate::tls::{AgentCert, ServerTrust, TrustOrigin, client_config};

    const PROMPT: Duration = Duration::from_secs(1);

    /// A Notify server: each stream opens with revision 1, then relays what the test sends;
    /// or, standing in for a server without the service, answers Unimplemented.
    struct FakeNotify {
        changes: broadcast::Sender<u64>,
        implemented: bool,
    }

    type Messages = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

    #[tonic::async_trait]
    impl notify_server::Notify for FakeNotify {
        type WatchStream = Messages;

        async fn watch(&self, _: Request<WatchRequest>) -> Result<Response<Messages>, Status> {
            if !self.implemented {
                return Err(Status::unimplemented("unknown service"));
            }
            let later = tokio_stream::wrappers::BroadcastStream::new(self.changes.subscribe())
                .filter_map(|r| async move { r.ok() })
                .map(|revision| {
                    Ok(WatchResponse {
                        revision,
                        reasons: vec![ChangeReason::Entries.into()],
                    })
                });
            let first = WatchResponse {
                revision: 1,
                reasons: vec![ChangeReason::Opened.into()],
            };
            let stream = futures::stream::once(std::future::ready(Ok(first))).chain(later);
            Ok(Response::new(Box::pin(stream)))
        }
    }

    async fn client_of(implemented: bool) -> (Arc<ServerClient>, broadcast::Sender<u64>) {
        let ca = TestCa::new();
        let (changes, _) = broadcast::channel(8);
        let fake = FakeNotify {
            changes: changes.clone(),
            implemented,
        };
        let routes = tonic::service::Routes::new(NotifyServer::new(fake));
        let addr = ca.grpc_server("/spire/server", routes).await;
        let bundle = Arc::new(arc_swap::ArcSwap::from_pointee(ca.bundle()));
        let tls = client_config(
            &ca.td,
            ServerTrust::Bundle(bundle),
            Arc::new(AgentCert::default()),
        )
        .unwrap();
        let address = ServerAddress::parse(&addr.to_string()).unwrap();
        let origin = TrustOrigin::Stored("/var/lib/agent".into());
        (Arc::new(ServerClient::new(address, tls, origin)), changes)
    }

    #[tokio::test]
    async fn every_message_wakes_the_sync_loop() {
        let (client, changes) = client_of(true).await;
        let wake = Arc::new(Notify::new());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(client, Arc::clone(&wake), cancel.clone()));

        tokio::time::timeout(PROMPT, wake.notified())
            .await
            .expect("the opening message wakes the loop");
        changes.send(2).unwrap();
        tokio::time::timeout(PROMPT, wake.notified())
            .await
            .expect("a change wakes the loop");

        cancel.cancel();
        tokio::time::timeout(PROMPT, task)
            .await
            .expect("stops when cancelled")
            .unwrap();
    }

    #[tokio::test]
    async fn a_server_without_notifications_ends_the_task_without_waking() {
        let (client, _changes) = client_of(false).await;
        let wake = Arc::new(Notify::new());
        tokio::time::timeout(
            PROMPT,
            run(client, Arc::clone(&wake), CancellationToken::new()),
        )
        .await
        .expect("gives up at the first Unimplemented");
        let woken = tokio::time::timeout(Duration::from_millis(10), wake.notified()).await;
        assert!(woken.is_err(), "nothing was announced");
    }
}
