//! Watchers that keep a Workload API stream open across agent restarts: they reconnect with
//! exponential backoff while the failure may be temporary and stop when it cannot change.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use lanyard_spiffe::JwtBundleSet;

use super::{ClientError, WorkloadClient, X509Context};
use crate::EndpointAddr;

/// The first wait after a failure.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);

type Items<T> = Pin<Box<dyn Stream<Item = Result<T, ClientError>> + Send>>;
type Observer = Box<dyn FnMut(RetryEvent<'_>) + Send>;

/// What a [`Watcher`] tells the observer set with [`Watcher::on_retry`].
#[derive(Debug)]
pub enum RetryEvent<'a> {
    /// An attempt failed in a way that may pass; the next one follows after `retry_in`.
    Failed {
        /// Why it failed.
        error: &'a ClientError,
        /// The wait before the next attempt.
        retry_in: Duration,
    },
    /// An item arrived after `failures` failed attempts.
    Restored {
        /// How many attempts had failed in a row.
        failures: u32,
    },
}
type Opening<T> = Pin<Box<dyn Future<Output = Result<Items<T>, ClientError>> + Send>>;

/// A Workload API stream that survives the agent going away.
///
/// Each item of [`Watcher::next`] is the complete current state (Workload API §4): an SVID,
/// or a trust domain's bundle, missing from a later item has been withdrawn, so callers
/// replace what they hold instead of merging.
///
/// Failures that may be temporary (the agent unreachable or restarting, `Unavailable`,
/// `PermissionDenied` while the caller has no identity yet, a stream that ended) are retried
/// after a backoff that starts at 100 ms, doubles up to 30 s and is jittered; it resets after
/// each delivered item. `InvalidArgument` and `Unimplemented` end the watch (Workload
/// Endpoint §6: clients must not retry them blindly).
pub struct Watcher<T> {
    addr: EndpointAddr,
    open: fn(WorkloadClient) -> Opening<T>,
    initial: Duration,
    max: Duration,
    next_delay: Duration,
    failures: u32,
    stream: Option<Items<T>>,
    observer: Option<Observer>,
}

/// Watches `FetchX509SVID`.
pub type X509Watcher = Watcher<X509Context>;
/// Watches `FetchJWTBundles`.
pub type JwtBundlesWatcher = Watcher<JwtBundleSet>;

impl Watcher<X509Context> {
    /// A watcher of the X509-SVIDs and bundles served at `addr`; connects on the first
    /// [`Watcher::next`].
    pub fn x509(addr: EndpointAddr) -> Self {
        Self::new(addr, |mut client| {
            Box::pin(async move {
                let items: Items<X509Context> = Box::pin(client.watch_x509_context().await?);
                Ok(items)
            })
        })
    }
}

impl Watcher<JwtBundleSet> {
    /// A watcher of the JWT bundles served at `addr`; connects on the first
    /// [`Watcher::next`].
    pub fn jwt_bundles(addr: EndpointAddr) -> Self {
        Self::new(addr, |mut client| {
            Box::pin(async move {
                let items: Items<JwtBundleSet> = Box::pin(client.watch_jwt_bundles().await?);
                Ok(items)
            })
        })
    }
}

impl<T> Watcher<T> {
    fn new(addr: EndpointAddr, open: fn(WorkloadClient) -> Opening<T>) -> Self {
        Self {
            addr,
            open,
            initial: DEFAULT_INITIAL_BACKOFF,
            max: DEFAULT_MAX_BACKOFF,
            next_delay: DEFAULT_INITIAL_BACKOFF,
            failures: 0,
            stream: None,
            observer: None,
        }
    }

    /// Calls `observer` on every retried failure and on the recovery after failures, for
    /// programs that show them to a person (the watcher itself only logs through `tracing`).
    #[must_use]
    pub fn on_retry(mut self, observer: impl FnMut(RetryEvent<'_>) + Send + 'static) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    fn tell(&mut self, event: RetryEvent<'_>) {
        if let Some(observer) = &mut self.observer {
            observer(event);
        }
    }

    /// Replaces the default backoff (100 ms doubling to 30 s).
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial = initial;
        self.max = max.max(initial);
        self.next_delay = initial;
        self
    }

    /// The next state the server sends, reconnecting as often as needed.
    ///
    /// # Errors
    ///
    /// Only failures that retrying cannot fix (see [`ClientError::is_retryable`]); the
    /// watcher should be dropped then.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped call loses no item; the next call resumes the same stream.
    pub async fn next(&mut self) -> Result<T, ClientError> {
        loop {
            match self.attempt().await {
                Ok(item) => {
                    if self.failures > 0 {
                        tracing::info!(addr = %self.addr, failures = self.failures, "Workload API stream restored");
                        let failures = self.failures;
                        self.tell(RetryEvent::Restored { failures });
                    }
                    self.failures = 0;
                    self.next_delay = self.initial;
                    return Ok(item);
                }
                Err(e) if !e.is_retryable() => {
                    self.stream = None;
                    return Err(e);
                }
                Err(e) => {
                    self.stream = None;
                    self.failures += 1;
                    let delay = jittered(self.next_delay);
                    if self.failures == 1 {
                        tracing::warn!(addr = %self.addr, error = %e, retry_in = ?delay, "Workload API stream lost; retrying");
                    } else {
                        tracing::debug!(addr = %self.addr, error = %e, failures = self.failures, retry_in = ?delay, "Workload API stream still down");
                    }
                    self.tell(RetryEvent::Failed {
                        error: &e,
                        retry_in: delay,
                    });
                    self.next_delay = (self.next_delay * 2).min(self.max);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One item from the open stream, opening it first if needed.
    async fn attempt(&mut self) -> Result<T, ClientError> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let client = WorkloadClient::connect(&self.addr).await?;
                self.stream.insert((self.open)(client).await?)
            }
        };
        stream.next().await.unwrap_or(Err(ClientError::Ended))
    }
}

/// A delay between half of `base` and `base`, so clients restarted together spread out.
fn jittered(base: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let half = base / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(random.checked_rem(nanos.saturating_add(1)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_the_whole_delay() {
        for _ in 0..100 {
            let d = jittered(Duration::from_millis(100));
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_millis(100),
                "{d:?}"
            );
        }
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }
}
