//! Retrying in loops: backoff, and logging that does not flood (first failure at warn,
//! repeats at debug with a count, recovery at info).

use std::error::Error;
use std::time::Duration;

use crate::report::ErrorChain;

/// Backoff after repeated failures is at most this many intervals.
const MAX_BACKOFF_FACTOR: u32 = 8;

/// The wait after `failures` consecutive failed rounds: doubling from `interval`, at most
/// [`MAX_BACKOFF_FACTOR`] intervals.
pub(crate) fn backoff(interval: Duration, failures: u64) -> Duration {
    let doublings = failures
        .saturating_sub(1)
        .min(u64::from(MAX_BACKOFF_FACTOR.ilog2()));
    let factor = 1u32 << doublings;
    interval.saturating_mul(factor)
}

/// First failure at warn, repeats at debug with a count, recovery at info.
pub(crate) struct FailureLog {
    what: &'static str,
    /// Consecutive failures so far.
    pub(crate) count: u64,
}

impl FailureLog {
    pub(crate) fn new(what: &'static str) -> Self {
        Self { what, count: 0 }
    }

    pub(crate) fn failed(&mut self, error: &(dyn Error + 'static)) {
        self.count += 1;
        let error = ErrorChain(error);
        if self.count == 1 {
            tracing::warn!(%error, "{} failed; will retry", self.what);
        } else {
            tracing::debug!(%error, failures = self.count, "{} failed again", self.what);
        }
    }

    pub(crate) fn succeeded(&mut self) {
        if self.count > 0 {
            tracing::info!(failures = self.count, "{} works again", self.what);
            self.count = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_eight_intervals() {
        let i = Duration::from_secs(5);
        let waits: Vec<u64> = (1..=6).map(|n| backoff(i, n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 40, 40]);
    }

    #[test]
    fn failure_log_counts_until_success() {
        let mut log = FailureLog::new("Test");
        let boom = std::io::Error::other("boom");
        log.failed(&boom);
        log.failed(&boom);
        assert_eq!(log.count, 2);
        log.succeeded();
        assert_eq!(log.count, 0);
    }
}
