//! The agent's own X509-SVID in the sync loop: renewal at half life (at once when a tainted
//! authority issued it), and the repeated error once it has expired.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lanyard_telemetry::SvidKind;

use super::{SyncError, Syncer, blocking};
use crate::cache::issued_by_tainted;
use crate::check::accept_svid;
use crate::schedule::{is_due, random_jitter, renew_at};
use crate::store::AgentSvid;
use crate::timeutil::rfc3339;

/// How often an expired agent SVID is reported again (at most once per sync round).
const EXPIRED_REMINDER: Duration = Duration::from_secs(300);

impl Syncer {
    /// Renews the agent SVID past its half life; true when it did.
    pub(super) async fn renew_agent_if_due(&mut self) -> Result<bool, SyncError> {
        let now = self.p.clock.now();
        let not_after = self.p.agent.svid.not_after();
        if !is_due(self.agent_renew_at, not_after, now) {
            return Ok(false);
        }
        let slot = self.p.agent.other_slot();
        let store = Arc::clone(&self.p.store);
        let key = blocking(move || store.generate_key(slot)).await??;
        let csr = lanyard_ca::make_csr(&key, None)?;
        let wire = self.p.client.renew_agent(csr).await?;
        let id = self.p.agent.svid.spiffe_id().clone();
        let svid = accept_svid(&wire, &key, &id, self.p.cache.bundle(), self.p.clock.now())?;

        let store = Arc::clone(&self.p.store);
        let chain = svid.chain().to_vec();
        blocking(move || store.save_svid(&chain)).await??;
        self.p.cert.set(&svid)?;
        // New connections present the new SVID; the server then retires the old one.
        self.p.client.reconnect();
        let received = self.p.clock.now();
        self.agent_renew_at = renew_at(
            svid.not_before(),
            svid.not_after(),
            received,
            random_jitter(),
        );
        tracing::info!(
            spiffe_id = %id,
            expires_at = %rfc3339(svid.not_after()),
            renew_at = %rfc3339(self.agent_renew_at),
            "Agent SVID renewed"
        );
        self.p.agent = AgentSvid { svid, slot };
        self.p.metrics.svid_renewed(SvidKind::X509Agent);
        Ok(true)
    }

    /// Moves the agent SVID's renewal to now when a tainted authority issued it, so the next
    /// step renews it as it would at half life: once that authority is revoked the server
    /// refuses the SVID.
    pub(super) fn renew_agent_now_if_tainted(&mut self) {
        let now = self.p.clock.now();
        if self.agent_renew_at <= now
            || !issued_by_tainted(self.p.agent.svid.chain(), self.p.cache.tainted(), now)
        {
            return;
        }
        tracing::info!(
            spiffe_id = %self.p.agent.svid.spiffe_id(),
            "The agent SVID was issued by a tainted authority: renewing it now"
        );
        self.agent_renew_at = now;
    }

    /// Once the agent SVID has expired the server refuses it, renewal included, and only a new
    /// attestation helps. Workloads then see their SVIDs run out, so this is repeated (every
    /// [`EXPIRED_REMINDER`]) rather than said once.
    pub(super) fn report_expiry(&mut self) {
        let not_after = self.p.agent.svid.not_after();
        if self.expired.due(not_after, self.p.clock.now()) {
            let expired_at = rfc3339(not_after);
            tracing::error!(
                spiffe_id = %self.p.agent.svid.spiffe_id(),
                %expired_at,
                "The agent SVID expired at {expired_at} and the server refuses it from now on: \
                 restart the agent with a new join token (`lanyard server token generate`)"
            );
        }
    }
}

/// Decides when to report that the agent SVID has expired: at the first round past expiry,
/// then again every [`EXPIRED_REMINDER`]; quiet again once a renewed SVID is valid.
#[derive(Debug, Default)]
pub(super) struct ExpiryAlarm {
    /// When the next report is due; `None` while the SVID is valid.
    next: Option<SystemTime>,
}

impl ExpiryAlarm {
    /// Whether to report now, for an SVID valid until `not_after`.
    pub(super) fn due(&mut self, not_after: SystemTime, now: SystemTime) -> bool {
        if now < not_after {
            self.next = None;
            return false;
        }
        if self.next.is_some_and(|next| now < next) {
            return false;
        }
        self.next = Some(now + EXPIRED_REMINDER);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    #[test]
    fn expired_agent_svid_is_reported_at_once_then_every_reminder_interval() {
        let mut alarm = ExpiryAlarm::default();
        let not_after = t(100);
        assert!(!alarm.due(not_after, t(99)), "still valid");
        assert!(alarm.due(not_after, t(100)), "first round past expiry");
        assert!(!alarm.due(not_after, t(101)));
        assert!(!alarm.due(not_after, t(100 + 299)));
        assert!(alarm.due(not_after, t(100 + 300)), "reminder");
        assert!(!alarm.due(not_after, t(100 + 301)));
    }

    #[test]
    fn renewed_agent_svid_silences_the_expiry_report() {
        let mut alarm = ExpiryAlarm::default();
        assert!(alarm.due(t(100), t(150)));
        assert!(!alarm.due(t(10_000), t(160)), "renewed");
        assert!(
            alarm.due(t(200), t(200)),
            "a later expiry is reported at once"
        );
    }
}
