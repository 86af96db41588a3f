//! Long-running client commands (`agent api watch`, `agent api helper`) retry Workload API
//! failures forever; this module makes the retries visible: each distinct failure is printed
//! to stderr once, with its reason and the wait before the next attempt, and the recovery is
//! printed too. The client commands install no log subscriber, so tracing alone would leave
//! an operator staring at a silent process.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lanyard_spiffe::JwtBundleSet;
use lanyard_workload::client::{DEFAULT_MAX_BACKOFF, RetryEvent, Watcher};
use lanyard_workload::{ClientError, EndpointAddr, X509Context};

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

/// Follows a Workload API stream across agent restarts with [`lanyard_workload::client::Watcher`]
/// (its backoff and its rules for what is retried), reporting every distinct failure through
/// a [`RetryReport`].
pub(crate) struct ReportingWatcher<T> {
    inner: Watcher<T>,
    /// What a `PermissionDenied` is said to mean; shared with the watcher's observer.
    denied_note: Arc<Mutex<String>>,
}

impl ReportingWatcher<X509Context> {
    /// Watches the X509-SVIDs served at `addr`; connects on the first [`Self::next`].
    pub(crate) fn x509(addr: EndpointAddr) -> Self {
        Self::new(Watcher::x509(addr.clone()), "X509-SVIDs", &addr)
    }
}

impl ReportingWatcher<JwtBundleSet> {
    /// Watches the JWT bundles served at `addr`; connects on the first [`Self::next`].
    pub(crate) fn jwt_bundles(addr: EndpointAddr) -> Self {
        Self::new(Watcher::jwt_bundles(addr.clone()), "JWT bundles", &addr)
    }
}

impl<T> ReportingWatcher<T> {
    fn new(inner: Watcher<T>, what: &str, addr: &EndpointAddr) -> Self {
        let denied_note = Arc::new(Mutex::new(
            "no registration entry matches this process (yet)".to_string(),
        ));
        let mut report = RetryReport::new(
            format!("watching the {what} at {addr}"),
            DEFAULT_MAX_BACKOFF,
        );
        let note = Arc::clone(&denied_note);
        let inner = inner.on_retry(move |event| match event {
            RetryEvent::Failed { error, retry_in } => {
                let note = note.lock().unwrap_or_else(PoisonError::into_inner);
                report.failed(&describe(error, &note), retry_in);
            }
            RetryEvent::Restored { .. } => report.succeeded(),
        });
        Self { inner, denied_note }
    }

    /// Replaces what a `PermissionDenied` is said to mean, for the caller's situation (such as
    /// "the agent no longer issues an identity to this process").
    pub(crate) fn set_denied_note(&mut self, note: impl Into<String>) {
        *self
            .denied_note
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = note.into();
    }

    /// The next state the agent sends, as [`Watcher::next`].
    ///
    /// # Errors
    ///
    /// Only failures that retrying cannot fix (`InvalidArgument`, `Unimplemented`, a bad
    /// address).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`Watcher::next`].
    pub(crate) async fn next(&mut self) -> Result<T, ClientError> {
        self.inner.next().await
    }
}

/// A failure as the report prints it; a `PermissionDenied` gets `denied_note` after it.
fn describe(e: &ClientError, denied_note: &str) -> String {
    match e {
        ClientError::Status(status) if status.code() == tonic::Code::PermissionDenied => {
            format!("{e}: {denied_note}")
        }
        _ => e.to_string(),
    }
}

/// Milliseconds are enough for a human reading a wait.
fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permission_denied_says_what_it_means_here() {
        let denied = ClientError::Status(tonic::Status::permission_denied("no identity issued"));
        let shown = describe(&denied, "no entry matches");
        assert!(shown.ends_with(": no entry matches"), "{shown}");
        let other = ClientError::Status(tonic::Status::unavailable("down"));
        assert!(!describe(&other, "no entry matches").contains("no entry"));
    }

    #[test]
    fn a_repeated_failure_counts_but_keeps_the_first_report() {
        let mut report = RetryReport::new("x", DEFAULT_MAX_BACKOFF);
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
