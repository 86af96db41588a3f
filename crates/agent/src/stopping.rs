//! How the agent's parts end: which one ended first, and what the agent reports when its sync
//! loop stopped by itself (the server refused the agent).

use lanyard_workload::server::ServeError;

use crate::AgentError;
use crate::refusal::AgentRefused;
use crate::report::ErrorChain;

/// How long a refused agent keeps its socket open after clearing what it serves, so that open
/// Workload API streams receive `PermissionDenied` rather than a closed connection.
pub(crate) const STREAM_DRAIN: std::time::Duration = std::time::Duration::from_millis(500);

/// Which of the agent's parts ended first.
pub(crate) enum Ended {
    /// The Workload API stopped.
    Serve(Result<(), ServeError>),
    /// Shutdown was asked for.
    Shutdown,
    /// The sync loop stopped: the server refused the agent, or the task panicked.
    Sync(Result<Result<(), AgentRefused>, tokio::task::JoinError>),
}

/// Waits for the cancelled sync loop; a refusal that raced the shutdown is logged.
pub(crate) async fn join_sync(task: tokio::task::JoinHandle<Result<(), AgentRefused>>) {
    match task.await {
        Ok(Ok(())) => {}
        Ok(Err(refused)) => tracing::error!(error = %ErrorChain(&refused), "Agent refused"),
        Err(e) => tracing::warn!(error = %e, "Sync task ended abnormally"),
    }
}

/// The agent's result when its sync loop stopped by itself.
pub(crate) fn sync_ended(
    ended: Result<Result<(), AgentRefused>, tokio::task::JoinError>,
) -> Result<(), AgentError> {
    match ended {
        Ok(Err(refused)) => {
            tracing::error!(error = %ErrorChain(&refused), "Agent refused by the server");
            Err(refused.into())
        }
        // The loop only returns on its own when refused; anything else is a bug.
        Ok(Ok(())) => Err(AgentError::SyncStopped(
            "it returned without being cancelled".into(),
        )),
        Err(e) => Err(AgentError::SyncStopped(e.to_string())),
    }
}
