//! The Workload API server: wire rules of the SPIFFE Workload API on top of an
//! [`IdentitySource`].

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use lanyard_proto::workload::spiffe_workload_api_server::{
    SpiffeWorkloadApi, SpiffeWorkloadApiServer,
};
use lanyard_proto::workload::{
    JwtBundlesRequest, JwtBundlesResponse, JwtsvidRequest, JwtsvidResponse, ValidateJwtsvidRequest,
    ValidateJwtsvidResponse, X509BundlesRequest, X509BundlesResponse, X509svid, X509svidRequest,
    X509svidResponse,
};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::conn::PeerConn;
use crate::{BundlesSnapshot, Caller, IdentitySource, SourceError, X509Snapshot};

/// The metadata key every Workload API request must carry (Workload Endpoint §5, an SSRF
/// guard).
pub const SECURITY_HEADER: &str = "workload.spiffe.io";

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Serves the Workload API from `S`.
pub struct WorkloadApiServer<S> {
    source: Arc<S>,
    /// Fires when the server shuts down, so open streams end instead of holding it up.
    stopping: watch::Receiver<bool>,
}

impl<S: IdentitySource> WorkloadApiServer<S> {
    /// A server answering from `source`; streams end when `stopping` turns true.
    pub fn new(source: Arc<S>, stopping: watch::Receiver<bool>) -> Self {
        Self { source, stopping }
    }
}

/// Checks the security header: present exactly once, with the exact value `true`.
fn check_header<T>(request: &Request<T>) -> Result<(), Status> {
    let mut values = request.metadata().get_all(SECURITY_HEADER).iter();
    match (values.next(), values.next()) {
        (Some(v), None) if v.as_bytes() == b"true" => Ok(()),
        _ => Err(Status::invalid_argument(
            "security header missing from request",
        )),
    }
}

/// The caller's credentials; a connection without them cannot be attested.
fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Option<Caller>>()
        .copied()
        .flatten()
        .ok_or_else(|| Status::unavailable("the caller's process credentials are unavailable"))
}

fn status(e: SourceError) -> Status {
    match e {
        SourceError::NoIdentity => Status::permission_denied("no identity issued"),
        SourceError::Unavailable(msg) => Status::unavailable(msg),
    }
}

fn x509_response(s: X509Snapshot) -> X509svidResponse {
    X509svidResponse {
        svids: s
            .svids
            .into_iter()
            .map(|i| X509svid {
                spiffe_id: i.spiffe_id.to_string(),
                x509_svid: i.chain_der,
                x509_svid_key: i.key_pkcs8,
                bundle: i.bundle_der,
                hint: i.hint,
            })
            .collect(),
        crl: Vec::new(),
        federated_bundles: s.federated_bundles.into_iter().collect(),
    }
}

fn bundles_response(s: BundlesSnapshot) -> X509BundlesResponse {
    X509BundlesResponse {
        crl: Vec::new(),
        bundles: s.bundles.into_iter().collect(),
    }
}

/// Runs one server-streaming RPC: the first message now, then a new full message whenever
/// the source reports a change that alters the answer. An error ends the stream with that
/// status.
fn stream_updates<S, T, F, Fut>(
    source: Arc<S>,
    mut stopping: watch::Receiver<bool>,
    first: T,
    method: &'static str,
    caller: Caller,
    mut compute: F,
) -> ResponseStream<T>
where
    S: IdentitySource,
    T: Clone + PartialEq + Send + 'static,
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, Status>> + Send,
{
    let (tx, rx) = mpsc::channel::<Result<T, Status>>(2);
    let mut changes = source.changes();
    changes.mark_unchanged();
    tokio::spawn(async move {
        let mut last = first;
        if tx.send(Ok(last.clone())).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tx.closed() => return,
                _ = stopping.wait_for(|s| *s) => return,
            }
            match compute().await {
                Ok(next) if next == last => {}
                Ok(next) => {
                    tracing::debug!(rpc.method = method, peer.uid = caller.uid, peer.pid = ?caller.pid, "Sending update");
                    if tx.send(Ok(next.clone())).await.is_err() {
                        return;
                    }
                    last = next;
                }
                Err(e) => {
                    tracing::info!(rpc.method = method, peer.uid = caller.uid, code = ?e.code(), "Ending stream");
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl<S: IdentitySource> SpiffeWorkloadApi for WorkloadApiServer<S> {
    type FetchX509SVIDStream = ResponseStream<X509svidResponse>;
    type FetchX509BundlesStream = ResponseStream<X509BundlesResponse>;
    type FetchJWTBundlesStream = ResponseStream<JwtBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        request: Request<X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        check_header(&request)?;
        let caller = caller(&request)?;
        let first = x509_response(self.source.x509_svids(&caller).await.map_err(status)?);
        let source = self.source.clone();
        let stream = stream_updates(
            self.source.clone(),
            self.stopping.clone(),
            first,
            "FetchX509SVID",
            caller,
            move || {
                let source = source.clone();
                async move {
                    source
                        .x509_svids(&caller)
                        .await
                        .map(x509_response)
                        .map_err(status)
                }
            },
        );
        Ok(Response::new(stream))
    }

    async fn fetch_x509_bundles(
        &self,
        request: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        check_header(&request)?;
        let caller = caller(&request)?;
        let first = bundles_response(self.source.x509_bundles(&caller).await.map_err(status)?);
        let source = self.source.clone();
        let stream = stream_updates(
            self.source.clone(),
            self.stopping.clone(),
            first,
            "FetchX509Bundles",
            caller,
            move || {
                let source = source.clone();
                async move {
                    source
                        .x509_bundles(&caller)
                        .await
                        .map(bundles_response)
                        .map_err(status)
                }
            },
        );
        Ok(Response::new(stream))
    }

    async fn fetch_jwtsvid(
        &self,
        request: Request<JwtsvidRequest>,
    ) -> Result<Response<JwtsvidResponse>, Status> {
        check_header(&request)?;
        Err(jwt_unimplemented())
    }

    async fn fetch_jwt_bundles(
        &self,
        request: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        check_header(&request)?;
        Err(jwt_unimplemented())
    }

    async fn validate_jwtsvid(
        &self,
        request: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        check_header(&request)?;
        Err(jwt_unimplemented())
    }
}

// TODO: issue #8 (full Workload API) replaces this with JWT-SVID minting and validation.
fn jwt_unimplemented() -> Status {
    Status::unimplemented("the JWT-SVID profile is not available in this version of Lanyard")
}

/// Errors of [`serve_unix`].
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The socket path could not be prepared or bound.
    #[error("cannot listen on {path}: {reason}")]
    Bind {
        /// The socket path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The gRPC server failed.
    #[error("workload API server on {path}: {source}")]
    Serve {
        /// The socket path.
        path: String,
        /// The transport error.
        source: tonic::transport::Error,
    },
}

/// Serves the Workload API from `source` on a unix socket at `path` until `shutdown`.
///
/// The socket is world-connectable (mode 0777): who a caller is comes from attestation of
/// its kernel credentials, not from file permissions. A stale socket file is replaced; any
/// other file in the way is an error.
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
    let listener = bind(path)?;
    let shown = path.display().to_string();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (tx, rx) = mpsc::channel::<std::io::Result<PeerConn>>(32);
    let accept = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    if tx.send(Ok(PeerConn::new(stream))).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    // Usually descriptor exhaustion: back off instead of spinning.
                    tracing::warn!(error = %e, "Workload API accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });

    let server = WorkloadApiServer::new(source, stop_rx);
    tracing::info!(socket = %shown, "Workload API listening");
    let result = tonic::transport::Server::builder()
        .add_service(SpiffeWorkloadApiServer::new(server))
        .serve_with_incoming_shutdown(ReceiverStream::new(rx), async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
    accept.abort();
    let _ = std::fs::remove_file(path);
    result.map_err(|source| ServeError::Serve {
        path: shown,
        source,
    })
}

fn bind(path: &Path) -> Result<UnixListener, ServeError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    let fail = |reason: String| ServeError::Bind {
        path: path.display().to_string(),
        reason,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| fail(format!("cannot create its directory: {e}")))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(fail(
                    "another process is already serving on this socket".into(),
                ));
            }
            std::fs::remove_file(path)
                .map_err(|e| fail(format!("cannot remove the stale socket: {e}")))?;
        }
        Ok(_) => return Err(fail("a file that is not a socket is in the way".into())),
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(|e| fail(e.to_string()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
        .map_err(|e| fail(format!("cannot set permissions: {e}")))?;
    Ok(listener)
}
