//! Workload attestors: what the agent can learn about a caller from the kernel, as selectors.
//!
//! Every attestor implements [`WorkloadAttestor`]; the agent asks each of them about every
//! caller and matches the union of their selectors against the registration entries. Only
//! `unix` exists so far; docker, k8s and systemd attestors plug in the same way.

use std::collections::BTreeSet;
use std::sync::Arc;

use lanyard_spiffe::Selector;
use lanyard_workload::Caller;

pub(crate) mod names;
pub(crate) mod proc;
pub(crate) mod unix;

pub use unix::UnixAttestorError;

/// One source of selectors about a Workload API caller.
#[async_trait::async_trait]
pub(crate) trait WorkloadAttestor: Send + Sync {
    /// The selector type it produces (`unix`).
    fn kind(&self) -> &'static str;

    /// The caller's selectors. Reads about the process go through `caller.process`, the
    /// handle taken when the connection was accepted.
    ///
    /// # Errors
    ///
    /// [`AttestorError`] when the caller cannot be attested; it then gets nothing.
    async fn attest(&self, caller: &Caller) -> Result<BTreeSet<Selector>, AttestorError>;
}

/// Why a caller could not be attested.
#[derive(Debug, thiserror::Error)]
pub enum AttestorError {
    /// The `unix` attestor failed.
    #[error("unix attestor")]
    Unix(#[from] UnixAttestorError),
}

/// The union of the selectors of every attestor; the first failure fails it all.
pub(crate) async fn attest_all(
    attestors: &[Arc<dyn WorkloadAttestor>],
    caller: &Caller,
) -> Result<BTreeSet<Selector>, AttestorError> {
    let mut all = BTreeSet::new();
    for attestor in attestors {
        let selectors = attestor.attest(caller).await?;
        tracing::trace!(
            attestor = attestor.kind(),
            selectors = selectors.len(),
            "Workload attested"
        );
        all.extend(selectors);
    }
    Ok(all)
}
