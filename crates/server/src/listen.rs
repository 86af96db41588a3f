//! The two listeners: the admin API on a unix socket and the agent API on TCP with TLS.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lanyard_proto::lanyard::agent::v1::notify_server::NotifyServer;
use lanyard_proto::spire::api::server::{
    agent::v1::agent_server::AgentServer, bundle::v1::bundle_server::BundleServer,
    entry::v1::entry_server::EntryServer,
    localauthority::v1::local_authority_server::LocalAuthorityServer,
    svid::v1::svid_server::SvidServer, trustdomain::v1::trust_domain_server::TrustDomainServer,
};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;

use lanyard_telemetry::{GrpcCallLayer, HealthService, SERVER_SERVICE};

use crate::ServerError;
use crate::api::{Api, NotifyService};
use crate::audit::AuditLog;
use crate::caller::{LocalConn, Peer, TlsConn};
use crate::health::ServerProbe;
use crate::state::{ServerState, create_private_dir};

/// A client that has not finished the TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a stopping server waits for calls in flight before it closes their connections.
pub(crate) const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Serves the admin API (and the gRPC health service) on `path` until `stop` turns true.
pub(crate) async fn serve_admin(
    state: Arc<ServerState>,
    listener: UnixListener,
    path: PathBuf,
    probe: Arc<ServerProbe>,
    stop: watch::Receiver<bool>,
) -> Result<(), ServerError> {
    let (tx, rx) = mpsc::channel::<std::io::Result<LocalConn>>(16);
    let accept = tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "Admin socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let conn = LocalConn {
                peer: Peer::local(&stream),
                inner: stream,
            };
            if tx.send(Ok(conn)).await.is_err() {
                return;
            }
        }
    });

    let audit = state.config.audit_log_enabled.then_some(AuditLog);
    let calls = GrpcCallLayer::new((state.registry.rpc(), audit));
    let health = HealthService::new(probe, SERVER_SERVICE)
        .stop_watches_on(stop.clone())
        .into_server();
    let api = Api::new(state);
    let served = Server::builder()
        .layer(calls)
        .add_service(EntryServer::new(api.clone()))
        .add_service(AgentServer::new(api.clone()))
        .add_service(BundleServer::new(api.clone()))
        .add_service(LocalAuthorityServer::new(api.clone()))
        .add_service(TrustDomainServer::new(api.clone()))
        .add_service(SvidServer::new(api))
        .add_service(health)
        .serve_with_incoming_shutdown(ReceiverStream::new(rx), stopped(stop.clone()));
    let served = drain_within_grace(served, stop, "admin API").await;
    // The accept loop owns the listener: stop it so the socket is really closed.
    accept.abort();
    let _ = std::fs::remove_file(&path);
    served.map_err(|e| ServerError::Listen {
        addr: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Serves the agent API on `addr` until `stop` turns true.
pub(crate) async fn serve_agents(
    state: Arc<ServerState>,
    listener: TcpListener,
    stop: watch::Receiver<bool>,
) -> Result<(), ServerError> {
    let addr: SocketAddr = listener.local_addr().map_err(|e| ServerError::Listen {
        addr: "agent API".into(),
        message: e.to_string(),
    })?;
    let tls = crate::tls::server_config(
        state.server_svid.clone(),
        state.bundle.clone(),
        &state.trust_domain,
    )?;
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let (tx, rx) = mpsc::channel::<std::io::Result<TlsConn>>(64);
    let accept = tokio::spawn(async move {
        loop {
            let (tcp, peer_addr) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Typically descriptor exhaustion; back off instead of spinning.
                    tracing::warn!(error = %e, "Agent API accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                let stream = match handshake.await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::info!(client.addr = %peer_addr, error = %e, "TLS handshake refused");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(client.addr = %peer_addr, "TLS handshake timed out");
                        return;
                    }
                };
                let certs = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                    .unwrap_or_default();
                let conn = TlsConn {
                    inner: stream,
                    peer: Peer::Tls {
                        addr: Some(peer_addr),
                        certs,
                    },
                };
                let _ = tx.send(Ok(conn)).await;
            });
        }
    });

    let calls = GrpcCallLayer::new(state.registry.rpc());
    // Agents only: the caller check is the one of GetAuthorizedEntries.
    let notify = NotifyServer::new(NotifyService::new(state.clone(), stop.clone()));
    let api = Api::new(state);
    let served = Server::builder()
        .layer(calls)
        .add_service(notify)
        .add_service(AgentServer::new(api.clone()))
        .add_service(EntryServer::new(api.clone()))
        .add_service(SvidServer::new(api.clone()))
        .add_service(TrustDomainServer::new(api.clone()))
        .add_service(BundleServer::new(api))
        .serve_with_incoming_shutdown(ReceiverStream::new(rx), stopped(stop.clone()));
    let served = drain_within_grace(served, stop, "agent API").await;
    // The accept loop owns the listener: stop it so the port is really released.
    accept.abort();
    served.map_err(|e| ServerError::Listen {
        addr: addr.to_string(),
        message: e.to_string(),
    })
}

/// Completes once `stop` holds true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs a tonic server future; once `stop` fires, gives calls in flight [`DRAIN_GRACE`] to
/// finish, then gives up on them so shutdown is bounded.
async fn drain_within_grace<E>(
    served: impl Future<Output = Result<(), E>>,
    stop: watch::Receiver<bool>,
    what: &'static str,
) -> Result<(), E> {
    let deadline = async {
        stopped(stop).await;
        tokio::time::sleep(DRAIN_GRACE).await;
    };
    tokio::select! {
        r = served => r,
        () = deadline => {
            tracing::warn!(
                server = what,
                grace_ms = DRAIN_GRACE.as_millis(),
                "Calls still in flight after the shutdown grace period; closing their connections"
            );
            Ok(())
        }
    }
}

/// Fails when the admin socket path cannot be taken: another process serves it, or a file
/// that is not a socket is in the way. Creates and removes nothing.
pub(crate) fn check_socket_free(path: &std::path::Path) -> Result<(), ServerError> {
    use std::os::unix::fs::FileTypeExt;

    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ServerError::SocketInUse {
                    path: path.to_path_buf(),
                });
            }
            Ok(())
        }
        Ok(_) => Err(ServerError::Listen {
            addr: path.display().to_string(),
            message: "a file that is not a socket is in the way; remove it or choose \
                      another --socket"
                .into(),
        }),
        Err(_) => Ok(()),
    }
}

/// Binds the admin socket, replacing a stale socket file but never another kind of file.
pub(crate) fn bind_unix(path: &std::path::Path) -> Result<UnixListener, ServerError> {
    use std::os::unix::fs::PermissionsExt;

    let io_err = |source| ServerError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    check_socket_free(path)?;
    if std::fs::symlink_metadata(path).is_ok() {
        // A socket nobody serves: left behind by a server that did not stop cleanly.
        std::fs::remove_file(path).map_err(io_err)?;
    }
    let listener = UnixListener::bind(path).map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    Ok(listener)
}
