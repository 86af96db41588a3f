//! What the agent does when the server refuses the agent itself, as SPIRE's agent does: an
//! evicted agent whose attestor can attest again (x509pop, or a join token not spent yet)
//! does so in place, keeping its Workload API open; otherwise the agent stops serving
//! workloads, removes its stored SVID so that the next start attests afresh, and stops with
//! an [`AgentRefused`] error that tells the operator what to do.

use std::path::{Path, PathBuf};

use lanyard_spiffe::SpiffeId;

use crate::bootstrap::BootstrapError;
use crate::config::AgentConfig;
use crate::store::SVID_FILE;

/// The server refused the agent and the agent could not cure that by itself; it stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentRefused {
    /// The server says the agent is banned.
    #[error(
        "the server refuses agent {agent_id}: it is banned ({detail}); the agent stopped serving \
         workloads and removed its SVID from {dir}; to let this node back in, run `lanyard \
         server agent evict --spiffe-id {agent_id}`, then start the agent with a new join token (`lanyard \
         server token generate`) or its x509pop certificate",
        dir = dir.display()
    )]
    Banned {
        /// The agent's SPIFFE ID.
        agent_id: SpiffeId,
        /// The server's message.
        detail: String,
        /// The data directory the SVID was removed from.
        dir: PathBuf,
    },
    /// The server no longer knows the agent (evicted) and it has no way to attest again: its
    /// join token is spent (tokens are single-use).
    #[error(
        "the server no longer accepts agent {agent_id} ({detail}): it was evicted and a join \
         token cannot be used twice; the agent stopped serving workloads and removed its SVID \
         from {dir}; start it again with a new join token (`lanyard server token generate`)",
        dir = dir.display()
    )]
    Evicted {
        /// The agent's SPIFFE ID.
        agent_id: SpiffeId,
        /// The server's message.
        detail: String,
        /// The data directory the SVID was removed from.
        dir: PathBuf,
    },
    /// The agent was evicted and attesting again failed.
    #[error(
        "the server no longer accepts agent {agent_id} and attesting again failed; the agent \
         stopped serving workloads and removed its SVID from {dir}",
        dir = dir.display()
    )]
    ReattestFailed {
        /// The agent's SPIFFE ID.
        agent_id: SpiffeId,
        /// The data directory the SVID was removed from.
        dir: PathBuf,
        /// Why attesting again failed.
        source: BootstrapError,
    },
}

/// How the sync loop may attest again when the server stops accepting the agent SVID.
pub(crate) struct Reattest {
    /// The agent's configuration: server address, attestor, trust domain.
    pub(crate) config: AgentConfig,
    /// Whether the configured join token is still unspent (the identity came from the data
    /// directory), so one attestation with it may still succeed.
    pub(crate) token_unspent: bool,
}

impl Reattest {
    /// The attestor that can be used now, if any: an unspent join token first (it wins over
    /// the configured attestor at bootstrap too), then x509pop, which may be used any number
    /// of times.
    pub(crate) fn attestor(&self) -> Option<&'static str> {
        if self.token_unspent && self.config.join_token.is_some() {
            Some(crate::client::JOIN_TOKEN)
        } else if self.config.x509pop.is_some() {
            Some(crate::bootstrap::X509POP)
        } else {
            None
        }
    }
}

/// Removes the stored agent SVID, so that the next start attests instead of presenting an SVID
/// the server refuses. The keys stay: the next attestation replaces them.
pub(crate) fn remove_stored_svid(dir: &Path) {
    let path = dir.join(SVID_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::info!(path = %path.display(), "Removed the refused agent SVID"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::error!(
            path = %path.display(),
            error = %e,
            "Cannot remove the refused agent SVID; remove it by hand before the next start"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{TrustBootstrap, X509popAgentConfig};

    fn reattest(token: bool, x509pop: bool, token_unspent: bool) -> Reattest {
        let mut config = AgentConfig::new(
            lanyard_spiffe::TrustDomain::new("example.org").unwrap(),
            PathBuf::from("/tmp/agent"),
            "127.0.0.1:8081".into(),
            TrustBootstrap::Insecure,
        );
        config.join_token = token.then(|| "token".to_string());
        config.x509pop = x509pop.then(|| X509popAgentConfig {
            private_key_path: "key.pem".into(),
            certificate_path: "cert.pem".into(),
            intermediates_path: None,
        });
        Reattest {
            config,
            token_unspent,
        }
    }

    #[test]
    fn a_spent_join_token_cannot_attest_again_but_x509pop_can() {
        assert_eq!(reattest(true, false, false).attestor(), None);
        assert_eq!(reattest(true, false, true).attestor(), Some("join_token"));
        assert_eq!(reattest(false, true, false).attestor(), Some("x509pop"));
        assert_eq!(reattest(true, true, false).attestor(), Some("x509pop"));
        assert_eq!(reattest(true, true, true).attestor(), Some("join_token"));
    }

    #[test]
    fn the_ban_message_gives_a_command_the_cli_accepts() {
        let agent_id = SpiffeId::parse("spiffe://example.org/spire/agent/x509pop/abc").unwrap();
        let message = AgentRefused::Banned {
            agent_id,
            detail: "agent is banned".into(),
            dir: PathBuf::from("/tmp/agent"),
        }
        .to_string();
        assert!(
            message.contains(
                "`lanyard server agent evict --spiffe-id \
                 spiffe://example.org/spire/agent/x509pop/abc`"
            ),
            "{message}"
        );
    }

    #[test]
    fn the_stored_svid_is_removed_and_a_missing_one_is_fine() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(SVID_FILE), b"der").unwrap();
        remove_stored_svid(tmp.path());
        assert!(!tmp.path().join(SVID_FILE).exists());
        remove_stored_svid(tmp.path());
    }
}
