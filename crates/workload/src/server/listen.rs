//! The Workload API on a unix domain socket: preparing the socket file, accepting connections
//! with their peer credentials, and shutting down without waiting on stuck clients.

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use lanyard_telemetry::{GrpcCallLayer, HealthService, RpcMetrics};
use tokio::net::UnixListener;
use tokio::sync::watch;

use super::WorkloadApiServer;
use super::conn::PeerConn;
use crate::IdentitySource;

/// How long a shutdown waits for open connections to finish before cutting them off.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (usually descriptor exhaustion), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Errors of [`serve_unix`] and [`WorkloadListener`].
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The socket path could not be prepared or bound (local misconfiguration).
    #[error("cannot listen on {path}: {reason}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A live process accepts on the socket already (local misconfiguration: two agents).
    #[error("socket {path} is in use by another process", path = path.display())]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// The gRPC server failed.
    #[error("workload API server on {path}: {source}")]
    Serve {
        /// The socket path.
        path: PathBuf,
        /// The transport error.
        source: tonic::transport::Error,
    },
}

/// A bound Workload API socket, ready to serve.
///
/// Binding and serving are separate so that a caller learns about a bad socket path before it
/// starts anything else, and knows the socket accepts connections once `bind` returned.
pub struct WorkloadListener {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file we created, so we only ever remove our own.
    file_id: (u64, u64),
    grace: Duration,
    rpc: Option<RpcMetrics>,
    health: Option<HealthService>,
}

impl WorkloadListener {
    /// Creates the socket at `path`: creates missing parent directories, replaces a stale
    /// socket file, and makes the socket connectable by everyone (mode 0777). Who a caller is
    /// comes from attestation of its kernel credentials, not from file permissions.
    ///
    /// Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ServeError::Bind`] when a file that is not a socket is in the way, when another
    /// server is accepting on the socket, or when the file system refuses.
    pub fn bind(path: &Path) -> Result<Self, ServeError> {
        let fail = |reason: String| ServeError::Bind {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| fail(format!("cannot create its directory: {e}")))?;
        }
        match remove_stale_socket(path) {
            Ok(()) => {}
            Err(Stale::InUse) => {
                return Err(ServeError::InUse {
                    path: path.to_path_buf(),
                });
            }
            Err(Stale::Other(reason)) => return Err(fail(reason)),
        }

        let listener = UnixListener::bind(path).map_err(|e| fail(e.to_string()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| fail(format!("cannot make the socket connectable: {e}")))?;
        let meta = std::fs::symlink_metadata(path).map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            listener,
            path: path.to_path_buf(),
            file_id: (meta.dev(), meta.ino()),
            grace: DEFAULT_SHUTDOWN_GRACE,
            rpc: None,
            health: None,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long a shutdown waits for open connections before cutting them off (default
    /// [`DEFAULT_SHUTDOWN_GRACE`]). Streams end by themselves at shutdown; only a client that
    /// stopped reading keeps its connection open that long.
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Records every call in `rpc` (`lanyard_rpc_requests_total` and
    /// `lanyard_rpc_duration_seconds`; streams are recorded when they end).
    #[must_use]
    pub fn metrics(mut self, rpc: RpcMetrics) -> Self {
        self.rpc = Some(rpc);
        self
    }

    /// Also serves `grpc.health.v1.Health` on the socket. Unlike the Workload API it needs
    /// neither the security header nor an attested caller, and says only `SERVING` or
    /// `NOT_SERVING`.
    #[must_use]
    pub fn health(mut self, health: HealthService) -> Self {
        self.health = Some(health);
        self
    }

    /// Serves the Workload API from `source` until `shutdown` completes, then ends open
    /// streams with `Unavailable`, waits up to the grace period for connections to close,
    /// cuts off the rest, and removes the socket file.
    ///
    /// # Errors
    ///
    /// [`ServeError::Serve`] when the gRPC server fails.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops accepting; connections already open are left to end by
    /// themselves (their kill switch fires, as its sender is dropped).
    pub async fn serve<S: IdentitySource>(
        self,
        source: Arc<S>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let Self {
            listener,
            path,
            file_id,
            grace,
            rpc,
            health,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let (kill_tx, kill_rx) = watch::channel(false);
        let mut server_stop = stop_rx.clone();
        let health = health.map(|h| h.stop_watches_on(stop_rx.clone()).into_server());
        let service = WorkloadApiServer::new(source)
            .stop_streams_on(stop_rx)
            .into_service();

        tracing::info!(socket = %path.display(), "Workload API listening");
        let serving = tonic::transport::Server::builder()
            .layer(GrpcCallLayer::new(rpc))
            .add_service(service)
            .add_optional_service(health)
            .serve_with_incoming_shutdown(accept(listener, kill_rx), async move {
                let _stop = server_stop.wait_for(|s| *s).await.is_ok();
            });
        let watchdog = async {
            shutdown.await;
            tracing::debug!(socket = %path.display(), "Workload API shutting down");
            stop_tx.send_replace(true);
            tokio::time::sleep(grace).await;
            tracing::warn!(
                socket = %path.display(),
                grace_ms = grace.as_millis(),
                "Workload API clients still connected after the shutdown grace period; closing their connections"
            );
            kill_tx.send_replace(true);
            std::future::pending::<()>().await;
        };
        let result = tokio::select! {
            result = serving => result,
            () = watchdog => Ok(()),
        };

        remove_own_socket(&path, file_id);
        result.map_err(|source| ServeError::Serve { path, source })
    }
}

/// Serves the Workload API from `source` on a unix socket at `path` until `shutdown`
/// completes: [`WorkloadListener::bind`] then [`WorkloadListener::serve`].
///
/// # Errors
///
/// [`ServeError::Bind`] when the socket cannot be created, [`ServeError::Serve`] when the
/// server fails.
pub async fn serve_unix<S: IdentitySource>(
    path: &Path,
    source: Arc<S>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    WorkloadListener::bind(path)?.serve(source, shutdown).await
}

/// Why the socket path cannot be taken over.
enum Stale {
    /// A live process accepts on it.
    InUse,
    /// Anything else, as a reason.
    Other(String),
}

/// Removes a socket file left behind by an earlier server (nobody accepts on it); refuses to
/// touch anything else.
fn remove_stale_socket(path: &Path) -> Result<(), Stale> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Stale::Other(format!("cannot inspect the path: {e}"))),
    };
    if !meta.file_type().is_socket() {
        return Err(Stale::Other(
            "a file that is not a socket is in the way; remove it or pick another path".into(),
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(Stale::InUse);
    }
    std::fs::remove_file(path)
        .map_err(|e| Stale::Other(format!("cannot remove the stale socket: {e}")))
}

/// Removes the socket file if it is still the one this server created.
fn remove_own_socket(path: &Path, file_id: (u64, u64)) {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if (meta.dev(), meta.ino()) == file_id => {
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(socket = %path.display(), error = %e, "Cannot remove the workload API socket");
            }
        }
        _ => tracing::debug!(socket = %path.display(), "Socket file replaced or gone; left alone"),
    }
}

/// Accepted connections with their peer credentials. A connection whose credentials cannot be
/// read is closed at once: it could not be attested.
fn accept(
    listener: UnixListener,
    kill: watch::Receiver<bool>,
) -> impl Stream<Item = io::Result<PeerConn>> {
    let dirs = std::sync::Arc::new(crate::source::ProcessDirs::default());
    futures::stream::unfold(
        (listener, kill, 0u64),
        move |(listener, kill, mut failures)| {
            let dirs = std::sync::Arc::clone(&dirs);
            async move {
                loop {
                    let stream = match listener.accept().await {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            failures += 1;
                            if failures == 1 {
                                tracing::warn!(error = %e, "Workload API accept failed");
                            } else {
                                tracing::debug!(error = %e, failures, "Workload API accept failed again");
                            }
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                            continue;
                        }
                    };
                    failures = 0;
                    match PeerConn::new(stream, kill.clone(), &dirs) {
                        Ok(conn) => {
                            let caller = conn.caller();
                            tracing::debug!(
                                peer.uid = caller.uid,
                                peer.pid = caller.pid,
                                "Workload API connection accepted"
                            );
                            return Some((Ok(conn), (listener, kill, failures)));
                        }
                        Err(e) => {
                            tracing::info!(error = %e, "Refused a workload API connection: its peer credentials are unavailable");
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {

    use super::*;

    #[tokio::test]
    async fn creates_missing_parent_directories_and_a_world_connectable_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/api.sock");
        let listener = WorkloadListener::bind(&path).unwrap();
        let meta = std::fs::symlink_metadata(listener.path()).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o777);
    }

    #[tokio::test]
    async fn replaces_a_stale_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists(), "a closed listener leaves its file behind");
        WorkloadListener::bind(&path).unwrap();
    }

    #[tokio::test]
    async fn refuses_a_socket_another_server_accepts_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let _live = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let err = WorkloadListener::bind(&path).err().unwrap().to_string();
        assert_eq!(
            err,
            format!("socket {} is in use by another process", path.display())
        );
    }

    #[tokio::test]
    async fn refuses_to_replace_a_regular_file_or_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-socket");
        std::fs::write(&file, b"keep me").unwrap();
        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        for path in [&file, &link] {
            let err = WorkloadListener::bind(path).err().unwrap().to_string();
            assert!(err.contains("not a socket"), "{err}");
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    }

    #[test]
    fn leaves_a_socket_file_it_did_not_create() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let _other = std::os::unix::net::UnixListener::bind(&path).unwrap();
        remove_own_socket(&path, (0, 0));
        assert!(path.exists());
    }
}
