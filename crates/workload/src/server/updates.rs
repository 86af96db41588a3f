//! The streaming half of `FetchX509SVID` and `FetchX509Bundles`: a full answer first, then a
//! new full answer whenever a change notification alters it.
//!
//! The stream owns no task. tonic polls it while the client listens and drops it when the
//! client resets the stream, the connection closes, or the server shuts down, and dropping it
//! releases everything it holds (including its subscription to the source's changes).

use std::future::{Future, pending};
use std::pin::Pin;

use futures::Stream;
use tokio::sync::watch;
use tonic::Status;
use tracing::Instrument;

/// What a server-streaming RPC hands to tonic.
pub(crate) type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The message a stream ends with when the server shuts down; clients reconnect on it.
pub(crate) const SHUTTING_DOWN: &str = "the workload API is shutting down";

struct State<T, F> {
    /// The first answer, until it has been sent.
    unsent: Option<T>,
    /// A digest of the last answer sent: what a change is compared with. Keeping the digest
    /// rather than the answer saves each open stream a copy of its SVIDs and keys.
    last: Option<u64>,
    /// `None` once the source dropped its sender: nothing will change any more.
    changes: Option<watch::Receiver<u64>>,
    stopping: Option<watch::Receiver<bool>>,
    compute: F,
    span: tracing::Span,
}

/// A stream that yields `first` at once and afterwards, on every change notification, the
/// result of `compute` if it differs from what was sent last (Workload API §4: every message
/// carries the complete state; the first is sent immediately).
///
/// An error from `compute` is sent as the stream's final status. The stream also ends, with
/// `Unavailable`, when `stopping` turns true.
///
/// `changes` must have been subscribed (and marked seen) before `first` was computed, so that
/// no change between the two is lost.
pub(crate) fn updates<T, F, Fut>(
    first: T,
    changes: watch::Receiver<u64>,
    stopping: Option<watch::Receiver<bool>>,
    compute: F,
    span: tracing::Span,
) -> ResponseStream<T>
where
    T: prost::Message + Send + 'static,
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, Status>> + Send,
{
    let state = State {
        unsent: Some(first),
        last: None,
        changes: Some(changes),
        stopping,
        compute,
        span,
    };
    Box::pin(futures::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        let span = state.span.clone();
        next(&mut state)
            .instrument(span)
            .await
            .map(|(item, more)| (item, more.then_some(state)))
    }))
}

/// The next item and whether the stream goes on after it.
async fn next<T, F, Fut>(state: &mut State<T, F>) -> Option<(Result<T, Status>, bool)>
where
    T: prost::Message,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    if let Some(first) = state.unsent.take() {
        state.last = Some(digest(&first));
        return Some((Ok(first), true));
    }
    loop {
        tokio::select! {
            () = stopped(&mut state.stopping) => {
                tracing::debug!("Ending stream: server shutting down");
                return Some((Err(Status::unavailable(SHUTTING_DOWN)), false));
            }
            () = changed(&mut state.changes) => {}
        }
        match (state.compute)().await {
            Ok(answer) => {
                let digest = digest(&answer);
                if state.last == Some(digest) {
                    tracing::trace!("Change left the answer as it was");
                    continue;
                }
                tracing::debug!("Sending update");
                state.last = Some(digest);
                return Some((Ok(answer), true));
            }
            Err(status) => {
                tracing::info!(code = ?status.code(), reason = status.message(), "Ending stream");
                return Some((Err(status), false));
            }
        }
    }
}

/// A digest of `answer`'s encoding. Equal answers encode equally (prost writes fields in
/// number order and maps in key order, as our answers are BTreeMaps), so equal digests mean an
/// unchanged answer except for a 64-bit hash collision, which would delay one update until the
/// next change.
fn digest<T: prost::Message>(answer: &T) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    answer.encode_to_vec().hash(&mut hasher);
    hasher.finish()
}

/// Completes on the next change notification; never, once the source dropped its sender.
async fn changed(changes: &mut Option<watch::Receiver<u64>>) {
    if let Some(rx) = changes {
        if rx.changed().await.is_ok() {
            return;
        }
        *changes = None;
    }
    pending().await
}

/// Completes when the server starts shutting down; never without a stop signal.
async fn stopped(stopping: &mut Option<watch::Receiver<bool>>) {
    if let Some(rx) = stopping {
        let stop = rx.wait_for(|s| *s).await.is_ok();
        if stop {
            return;
        }
        *stopping = None;
    }
    pending().await
}

#[cfg(test)]
mod tests {

    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use futures::StreamExt;
    use futures::future::FutureExt;

    use super::*;

    /// A stream over a counter: `compute` answers `value / 2`, so every other bump is a
    /// change that leaves the answer as it was.
    fn halving(
        value: &Arc<AtomicU32>,
        stopping: Option<watch::Receiver<bool>>,
    ) -> (watch::Sender<u64>, ResponseStream<u32>) {
        let (tx, mut rx) = watch::channel(0);
        rx.mark_unchanged();
        let v = value.clone();
        let stream = updates(
            value.load(Ordering::SeqCst) / 2,
            rx,
            stopping,
            move || {
                let v = v.load(Ordering::SeqCst);
                async move {
                    if v == u32::MAX {
                        Err(Status::permission_denied("no identity issued"))
                    } else {
                        Ok(v / 2)
                    }
                }
            },
            tracing::Span::none(),
        );
        (tx, stream)
    }

    fn bump(tx: &watch::Sender<u64>, value: &AtomicU32, to: u32) {
        value.store(to, Ordering::SeqCst);
        tx.send_modify(|n| *n += 1);
    }

    #[tokio::test]
    async fn sends_first_answer_without_any_change() {
        let value = Arc::new(AtomicU32::new(4));
        let (_tx, mut stream) = halving(&value, None);
        assert_eq!(stream.next().await.unwrap().unwrap(), 2);
        assert!(stream.next().now_or_never().is_none(), "nothing changed");
    }

    #[tokio::test]
    async fn skips_changes_that_leave_the_answer_as_it_was() {
        let value = Arc::new(AtomicU32::new(4));
        let (tx, mut stream) = halving(&value, None);
        assert_eq!(stream.next().await.unwrap().unwrap(), 2);
        bump(&tx, &value, 5);
        assert!(stream.next().now_or_never().is_none(), "5 / 2 is still 2");
        bump(&tx, &value, 6);
        assert_eq!(stream.next().await.unwrap().unwrap(), 3);
    }

    #[tokio::test]
    async fn ends_with_the_error_of_a_later_answer() {
        let value = Arc::new(AtomicU32::new(4));
        let (tx, mut stream) = halving(&value, None);
        stream.next().await.unwrap().unwrap();
        bump(&tx, &value, u32::MAX);
        let status = stream.next().await.unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn ends_with_unavailable_when_the_server_stops() {
        let value = Arc::new(AtomicU32::new(4));
        let (stop, stopping) = watch::channel(false);
        let (_tx, mut stream) = halving(&value, Some(stopping));
        stream.next().await.unwrap().unwrap();
        stop.send_replace(true);
        let status = stream.next().await.unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), SHUTTING_DOWN);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn stays_open_when_the_source_stops_announcing_changes() {
        let value = Arc::new(AtomicU32::new(4));
        let (_stop, stopping) = watch::channel(false);
        let (tx, mut stream) = halving(&value, Some(stopping));
        stream.next().await.unwrap().unwrap();
        drop(tx);
        assert!(stream.next().now_or_never().is_none());
    }

    #[tokio::test]
    async fn dropping_the_stream_releases_the_subscription() {
        let value = Arc::new(AtomicU32::new(4));
        let (tx, mut stream) = halving(&value, None);
        stream.next().await.unwrap().unwrap();
        assert_eq!(tx.receiver_count(), 1);
        drop(stream);
        assert_eq!(tx.receiver_count(), 0);
    }
}
