//! Long-running client commands (`agent api watch`, `agent api helper`) retry Workload API
//! failures forever; this module makes the retries visible: each distinct failure is printed
//! to stderr once, with its reason and the wait before the next attempt, and the recovery is
//! printed too. The client commands install no log subscriber, so tracing alone would leave
//! an operator staring at a silent process.

use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::time::Duration;

use lanyard_spiffe::JwtBundleSet;
use lanyard_workload::client::WorkloadClient;
use lanyard_workload::{ClientError, EndpointAddr, X509Context};
// tonic re-exports the stream trait its generated clients use; the CLI needs only `next`.
use tonic::codegen::tokio_stream::{Stream, StreamExt};

/// The first wait after a failure.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Prints a retry loop's failures to stderr, each distinct one once, and its recovery.
#[derive(Debug)]
pub(crate) struct RetryReport {
    what: String,
    max_backoff: Duration,
    last: Option<String>,
    failures: u32,
}

impl RetryReport {
    /// A report for the loop doing `what` ("watching the X509-SVIDs at ..."), whose waits
    /// double up to `max_backoff`.
    pub(crate) fn new(what: impl Into<String>, max_backoff: Duration) -> Self {
        Self {
            what: what.into(),
            max_backoff,
            last: None,
            failures: 0,
        }
    }

    /// Records one failure; prints it unless it is the same as the previous one.
    pub(crate) fn failed(&mut self, error: &str, retry_in: Duration) {
        self.failures += 1;
        if self.last.as_deref() == Some(error) {
            tracing::debug!(what = %self.what, error, failures = self.failures, "Still failing");
            return;
        }
        tracing::warn!(what = %self.what, error, retry_in = ?retry_in, "Failing; retrying");
        eprintln!(
            "{}: {error}; retrying in {} (waits double up to {}s)",
            self.what,
            humantime::format_duration(round_ms(retry_in)),
            self.max_backoff.as_secs()
        );
        self.last = Some(error.to_string());
    }

    /// Records a success; prints the recovery after failures.
    pub(crate) fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(what = %self.what, failures = self.failures, "Recovered");
            eprintln!(
                "{}: working again after {} failed attempt{}",
                self.what,
                self.failures,
                if self.failures == 1 { "" } else { "s" }
            );
        }
        self.failures = 0;
        self.last = None;
    }
}

type Items<T> = Pin<Box<dyn Stream<Item = Result<T, ClientError>> + Send>>;
type Opening<T> = Pin<Box<dyn Future<Output = Result<Items<T>, ClientError>> + Send>>;

/// Follows a Workload API stream across agent restarts like [`lanyard_workload::Watcher`],
/// but reports every distinct failure through a [`RetryReport`].
pub(crate) struct ReportingWatcher<T> {
    addr: EndpointAddr,
    open: fn(WorkloadClient) -> Opening<T>,
    report: RetryReport,
    next_delay: Duration,
    stream: Option<Items<T>>,
    denied_note: String,
}

impl ReportingWatcher<X509Context> {
    /// Watches the X509-SVIDs served at `addr`; connects on the first [`Self::next`].
    pub(crate) fn x509(addr: EndpointAddr) -> Self {
        Self::new(addr, "X509-SVIDs", |mut client| {
            Box::pin(async move {
                let items: Items<X509Context> = Box::pin(client.watch_x509_context().await?);
                Ok(items)
            })
        })
    }
}

impl ReportingWatcher<JwtBundleSet> {
    /// Watches the JWT bundles served at `addr`; connects on the first [`Self::next`].
    pub(crate) fn jwt_bundles(addr: EndpointAddr) -> Self {
        Self::new(addr, "JWT bundles", |mut client| {
            Box::pin(async move {
                let items: Items<JwtBundleSet> = Box::pin(client.watch_jwt_bundles().await?);
                Ok(items)
            })
        })
    }
}

impl<T> ReportingWatcher<T> {
    fn new(addr: EndpointAddr, what: &str, open: fn(WorkloadClient) -> Opening<T>) -> Self {
        Self {
            report: RetryReport::new(format!("watching the {what} at {addr}"), MAX_BACKOFF),
            addr,
            open,
            next_delay: INITIAL_BACKOFF,
            stream: None,
            denied_note: "no registration entry matches this process (yet)".into(),
        }
    }

    /// Replaces what a `PermissionDenied` is said to mean, for the caller's situation (such as
    /// "the agent no longer issues an identity to this process").
    pub(crate) fn set_denied_note(&mut self, note: impl Into<String>) {
        self.denied_note = note.into();
    }

    /// The next state the agent sends, retrying with a jittered backoff (100 ms doubling to 30 s)
    /// while the failure may be temporary (Workload Endpoint §6).
    ///
    /// # Errors
    ///
    /// Only failures that retrying cannot fix (`InvalidArgument`, `Unimplemented`, a bad
    /// address).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped call loses no item; the next call resumes the same stream.
    pub(crate) async fn next(&mut self) -> Result<T, ClientError> {
        loop {
            match self.attempt().await {
                Ok(context) => {
                    self.report.succeeded();
                    self.next_delay = INITIAL_BACKOFF;
                    return Ok(context);
                }
                Err(e) if !e.is_retryable() => {
                    self.stream = None;
                    return Err(e);
                }
                Err(e) => {
                    self.stream = None;
                    let delay = jittered(self.next_delay);
                    self.report.failed(&self.describe(&e), delay);
                    self.next_delay = (self.next_delay * 2).min(MAX_BACKOFF);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    fn describe(&self, e: &ClientError) -> String {
        match e {
            ClientError::Status(status) if status.code() == tonic::Code::PermissionDenied => {
                format!("{e}: {}", self.denied_note)
            }
            _ => e.to_string(),
        }
    }

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
pub(crate) fn jittered(base: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let half = base / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(random.checked_rem(nanos.saturating_add(1)).unwrap_or(0))
}

/// Milliseconds are enough for a human reading a wait.
fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_the_whole_delay() {
        for _ in 0..100 {
            let d = jittered(Duration::from_millis(100));
            assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(100));
        }
    }

    #[test]
    fn a_repeated_failure_counts_but_keeps_the_first_report() {
        let mut report = RetryReport::new("x", MAX_BACKOFF);
        report.failed("refused", Duration::from_secs(1));
        report.failed("refused", Duration::from_secs(2));
        assert_eq!(report.failures, 2);
        assert_eq!(report.last.as_deref(), Some("refused"));
        report.failed("gone", Duration::from_secs(4));
        assert_eq!(report.last.as_deref(), Some("gone"));
        report.succeeded();
        assert_eq!((report.failures, report.last.as_deref()), (0, None));
    }
}
