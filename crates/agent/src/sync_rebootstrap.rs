//! Rebootstrap (SPIRE's `rebootstrap_mode`, `rebootstrap_delay`): when the agent's own bundle
//! has not authenticated the server for `rebootstrap_delay`, with no trusted connection in
//! between, the agent goes back to its bootstrap source (`trust_bundle`), attests again with
//! x509pop against that bundle and carries on with the new SVID, its Workload API open.
//!
//! SPIRE's agent shuts down and rebootstraps at the next start; Lanyard's does it in place,
//! the way it re-attests after an eviction. Until the delay is over the agent keeps serving
//! what it has and retries as for any other failure: a server it cannot authenticate may as
//! well be a man in the middle, which the delay outlasts.

use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::Syncer;
use super::reattest::Handled;
use crate::bootstrap::{self, BootstrapError};

/// When the server was first seen untrusted since the last trusted round.
#[derive(Debug, Default)]
pub(super) struct Distrust {
    since: Option<SystemTime>,
}

impl Distrust {
    /// A round reached the server through a trusted connection: the delay starts over.
    pub(super) fn trusted(&mut self) {
        self.since = None;
    }

    /// The server was untrusted at `now`: how much of `delay` is left (zero once it is over).
    pub(super) fn untrusted(&mut self, now: SystemTime, delay: Duration) -> Duration {
        let since = *self.since.get_or_insert(now);
        let waited = now.duration_since(since).unwrap_or_default();
        delay.saturating_sub(waited)
    }
}

impl Syncer {
    /// After a round whose server did not chain to the agent's bundle: rebootstraps once
    /// `rebootstrap_delay` is over, if configured. `None` when nothing was done.
    pub(super) async fn server_untrusted(&mut self, cancel: &CancellationToken) -> Option<Handled> {
        let config = self.reattest.as_ref().map(|r| &r.config)?;
        if !config.rebootstraps() {
            return None;
        }
        let delay = config.rebootstrap_delay;
        let left = self.distrust.untrusted(self.p.clock.now(), delay);
        if !left.is_zero() {
            tracing::info!(
                time_left = ?left,
                "The agent's bundle does not authenticate the server; rebootstrapping if that \
                 lasts"
            );
            return None;
        }

        tracing::warn!(
            delay = ?delay,
            "The agent's bundle has not authenticated the server for rebootstrap_delay: \
             rebootstrapping from the bootstrap bundle"
        );
        let attempt = tokio::select! {
            () = cancel.cancelled() => return Some(Handled::Cancelled),
            r = self.rebootstrap() => r,
        };
        match attempt {
            Ok(()) => {
                self.distrust.trusted();
                Some(Handled::Reattested)
            }
            Err(e) => {
                tracing::warn!(
                    error = %crate::report::ErrorChain(&e),
                    "Rebootstrap failed; will retry"
                );
                None
            }
        }
    }

    /// Attests with x509pop against the bootstrap source's bundle alone, then trusts that
    /// bundle until the next sync brings the server's.
    async fn rebootstrap(&mut self) -> Result<(), BootstrapError> {
        let Some(reattest) = self.reattest.as_ref() else {
            return Ok(());
        };
        let config = reattest.config.clone();
        let Some((bundle, origin)) = bootstrap::configured_bundle(&config).await? else {
            // `validate` refuses rebootstrapping with insecure bootstrap.
            return Ok(());
        };
        let identity = bootstrap::reattest(
            &config,
            &self.p.store,
            (bundle, origin),
            false,
            &*self.p.clock,
        )
        .await?;
        self.p
            .bundle
            .store(std::sync::Arc::new(identity.bundle.clone()));
        self.adopt(identity)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    #[test]
    fn the_delay_runs_from_the_first_untrusted_round_and_restarts_after_a_trusted_one() {
        let delay = Duration::from_secs(600);
        let mut distrust = Distrust::default();
        assert_eq!(distrust.untrusted(t(0), delay), delay);
        assert_eq!(distrust.untrusted(t(599), delay), Duration::from_secs(1));
        assert!(distrust.untrusted(t(600), delay).is_zero(), "due");

        distrust.trusted();
        assert_eq!(distrust.untrusted(t(700), delay), delay, "starts over");
        assert!(distrust.untrusted(t(1300), delay).is_zero());
    }
}
