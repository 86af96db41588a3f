//! The sync loop's answer to the server refusing the agent itself (see `refusal.rs`): attest
//! again in place when the agent was evicted and has a way to, otherwise stop serving.

use tokio_util::sync::CancellationToken;

use super::Syncer;
use crate::bootstrap::{self, Identity};
use crate::cache::Snapshot;
use crate::client::RpcError;
use crate::denial::Denial;
use crate::refusal::{AgentRefused, remove_stored_svid};
use crate::schedule::{random_jitter, renew_at};
use crate::timeutil::rfc3339;
use crate::tls::TrustOrigin;

/// How a refusal was handled.
pub(super) enum Handled {
    /// The agent attested again; sync at once.
    Reattested,
    /// Cancelled while attesting again.
    Cancelled,
}

impl Syncer {
    /// The server refused the agent with `denial`: attests again if that can help, otherwise
    /// clears what workloads are served, removes the stored SVID and says why.
    pub(super) async fn refused(
        &mut self,
        denial: Denial,
        error: RpcError,
        cancel: &CancellationToken,
    ) -> Result<Handled, AgentRefused> {
        let agent_id = self.p.agent.svid.spiffe_id().clone();
        let dir = self.p.store.dir().to_path_buf();
        let attestor = self.reattest.as_ref().and_then(|r| r.attestor());
        let attestor = match (denial, attestor) {
            (Denial::MustReattest, Some(attestor)) => attestor,
            (Denial::MustReattest, None) => {
                self.stop_serving();
                return Err(AgentRefused::Evicted {
                    agent_id,
                    detail: error.detail,
                    dir,
                });
            }
            (Denial::Banned, _) => {
                self.stop_serving();
                return Err(AgentRefused::Banned {
                    agent_id,
                    detail: error.detail,
                    dir,
                });
            }
        };

        tracing::warn!(
            spiffe_id = %agent_id,
            attestor,
            error = %error,
            "The server no longer accepts the agent SVID: attesting again"
        );
        let attempt = tokio::select! {
            () = cancel.cancelled() => return Ok(Handled::Cancelled),
            r = self.attest_again(attestor) => r,
        };
        match attempt.and_then(|identity| self.adopt(identity).map_err(Into::into)) {
            Ok(()) => Ok(Handled::Reattested),
            Err(source) => {
                self.stop_serving();
                Err(AgentRefused::ReattestFailed {
                    agent_id,
                    dir,
                    source,
                })
            }
        }
    }

    /// One attestation with `attestor`, authenticating the server with the current bundle.
    async fn attest_again(
        &mut self,
        attestor: &str,
    ) -> Result<Identity, bootstrap::BootstrapError> {
        let Some(reattest) = self.reattest.as_mut() else {
            return Err(bootstrap::BootstrapError::NoJoinToken {
                reason: "the agent cannot attest again".into(),
            });
        };
        let use_token = attestor == crate::client::JOIN_TOKEN;
        if use_token {
            // Whatever the outcome, the token is spent or refused: it is not tried twice.
            reattest.token_unspent = false;
        }
        let bundle = self.p.bundle.load().as_ref().clone();
        let origin = TrustOrigin::Stored(self.p.store.dir().to_path_buf());
        bootstrap::reattest(
            &reattest.config,
            &self.p.store,
            (bundle, origin),
            use_token,
            &*self.p.clock,
        )
        .await
    }

    /// Switches the loop to a new agent identity: TLS presents it from the next connection
    /// on, and its renewal is scheduled.
    pub(super) fn adopt(&mut self, identity: Identity) -> Result<(), rustls::Error> {
        self.p.cert.set(&identity.svid.svid)?;
        self.p.client.reconnect();
        let svid = &identity.svid.svid;
        self.agent_renew_at = renew_at(
            svid.not_before(),
            svid.not_after(),
            self.p.clock.now(),
            random_jitter(),
        );
        tracing::info!(
            spiffe_id = %svid.spiffe_id(),
            expires_at = %rfc3339(svid.not_after()),
            "Agent attested again; the Workload API kept serving"
        );
        self.p.agent = identity.svid;
        Ok(())
    }

    /// Ends what workloads are served: open streams end with `PermissionDenied` and fetches
    /// are told there is no identity. Then removes the stored SVID.
    fn stop_serving(&mut self) {
        // Marked synced: the agent knows it has nothing to give, it is not merely early.
        self.p.published.publish(Snapshot {
            synced: true,
            ..Snapshot::empty(self.p.trust_domain.clone())
        });
        remove_stored_svid(self.p.store.dir());
    }
}
