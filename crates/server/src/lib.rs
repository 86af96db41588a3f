//! The Lanyard server: owns a trust domain, signs SVIDs, and serves two gRPC endpoints.
//!
//! - The **admin API** on a unix socket (SPIRE's `entry.v1`, `agent.v1`, `bundle.v1`,
//!   `trustdomain.v1`, `localauthority.v1` and `svid.v1` MintX509SVID / MintJWTSVID). Whoever
//!   can open the socket is an administrator, as with SPIRE's private socket; file permissions
//!   are the access control.
//! - The **agent API** on TCP with TLS (ALPN `h2`). The server presents its own X509-SVID
//!   `spiffe://<td>/spire/server`. Only `AttestAgent` is open to callers without a certificate;
//!   agent RPCs require the current SVID of a known, non-banned agent; the entry, agent,
//!   bundle and trust domain admin RPCs require an X509-SVID whose ID is in `admin_ids` or
//!   belongs to an entry with `admin = true`.
//!
//! Entries and agents are cached in memory (agent RPCs read no database); a background task
//! follows the datastore's change feed so that several servers can share one database. The
//! agent API also serves Lanyard's own `lanyard.agent.v1.Notify/Watch`, which tells an agent
//! to sync as soon as its entries, its record or the bundle change (`api/notify.rs`).
//!
//! Operations: the admin socket also serves `grpc.health.v1.Health` (see `health.rs` for what
//! live and ready mean); `health_checks {}` and `telemetry {}` add HTTP probes and
//! `/metrics`; `audit_log_enabled` logs every admin call under target `lanyard::audit`.
//! At shutdown calls in flight get 5 s to finish, then the sockets are removed and the
//! datastore closed.
//!
//! The server does not attest workloads and holds no workload keys: agents send CSRs.
//! Node attestation: join tokens, and `x509pop` (certificates from an operator's CA, proven
//! by a signature over a server nonce) when configured; other attestors plug in beside them.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
mod attest;
mod audit;
mod authorized;
mod authorized_cache;
#[doc(hidden)]
pub mod bench_support;
mod bundles;
mod caller;
mod changes;
mod config;
mod convert;
mod error;
mod health;
mod keyed_entry;
mod listen;
mod mask;
mod own_bundle;
mod rotation;
mod state;
mod sync;
mod tls;
mod validate;

pub use attest::{
    AgentPathTemplate, DEFAULT_MAX_INTERMEDIATES, TemplateError, X509popConfig, X509popConfigError,
};
pub use config::{
    DEFAULT_BIND, DEFAULT_CACHE_RELOAD_INTERVAL, DEFAULT_SOCKET, KeyManagerKind, ServerConfig,
    UpstreamDisk, largest_untruncated_ttl,
};
pub use error::ServerError;
/// The database settings of [`ServerConfig::datastore`].
pub use lanyard_datastore::{DatabaseConfig, Engine};

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lanyard_telemetry::{Endpoints, Metrics};

use tokio_util_shutdown::Shutdown;

/// Runs the server until `shutdown` completes, then stops accepting and returns.
///
/// # Errors
///
/// Fails when the data directory, datastore, keys or listeners cannot be set up, or when a
/// listener fails later; errors in single requests never stop the server.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let running = start(config).await?;
    let result = tokio::select! {
        () = shutdown => running.stop().await,
        r = running.done.clone().wait() => r,
    };
    if result.is_ok() {
        tracing::info!("Server stopped");
    }
    result
}

/// Starts the server: opens state, binds both listeners (and the health and metrics
/// listeners when configured), and returns once they accept.
///
/// # Errors
///
/// As [`run`], for everything that can fail before the listeners are up.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    config.validate()?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    // One registry per server instance, never a global one.
    let registry = Metrics::new();

    // Checks that create nothing come first: a port in use or a socket served by another
    // process then fails the start before any datastore, key or socket file exists.
    let endpoints = Endpoints::bind(&config.health_checks, &config.telemetry).await?;
    let health_addr = endpoints.health_addr();
    let metrics_addr = endpoints.metrics_addr();
    let listen_err = |e: std::io::Error| ServerError::Listen {
        addr: config.bind.to_string(),
        message: e.to_string(),
    };
    let agents = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(listen_err)?;
    let agent_addr = agents.local_addr().map_err(listen_err)?;
    listen::check_socket_free(&config.socket_path)?;

    let state = Arc::new(state::ServerState::open(&config, &registry).await?);
    let stop = Shutdown::new(std::future::pending());
    let admin = listen::bind_unix(&config.socket_path)?;

    let tasks_running = Arc::new(AtomicBool::new(true));
    let probe = Arc::new(health::ServerProbe::new(
        state.clone(),
        tasks_running.clone(),
    )?);
    let rotation = tokio::spawn(clear_on_exit(
        tasks_running.clone(),
        rotation::run(state.clone(), stop.wait()),
    ));
    let feed = tokio::spawn(clear_on_exit(
        tasks_running.clone(),
        sync::run(state.clone(), stop.wait()),
    ));
    let admin = tokio::spawn(clear_on_exit(
        tasks_running.clone(),
        listen::serve_admin(
            state.clone(),
            admin,
            config.socket_path.clone(),
            probe.clone(),
            stop.subscribe(),
        ),
    ));
    let agents = tokio::spawn(clear_on_exit(
        tasks_running.clone(),
        listen::serve_agents(state.clone(), agents, stop.subscribe()),
    ));
    let telemetry = tokio::spawn(endpoints.serve(registry.clone(), probe, stop.wait()));
    tracing::info!(
        trust_domain = %state.trust_domain,
        agent_api = %agent_addr,
        admin_socket = %config.socket_path.display(),
        health = health_addr.map(|a| a.to_string()),
        metrics = metrics_addr.map(|a| a.to_string()),
        "Server started"
    );

    let (finished, done) = tokio::sync::watch::channel(None);
    let done = Done(done);
    let stopper = stop.handle();
    let closing = state.clone();
    tokio::spawn(async move {
        let (mut admin, mut agents) = (admin, agents);
        // Either listener ending (a stop, or a failure) stops the other; both are awaited so
        // that "stopped" means both sockets are closed and removed, and a new server may bind
        // the same paths at once.
        let (first, second) = tokio::select! {
            r = &mut admin => {
                stopper.trigger();
                (r, agents.await)
            }
            r = &mut agents => {
                stopper.trigger();
                (r, admin.await)
            }
        };
        let result = match first {
            Ok(Ok(())) => second,
            failed => failed,
        };
        let _ = rotation.await;
        let _ = feed.await;
        let _ = telemetry.await;
        // Every writer has stopped: close the datastore cleanly (WAL checkpoint).
        closing.datastore.close().await;
        let result = match result {
            Ok(inner) => inner,
            Err(join) => Err(ServerError::Internal(format!(
                "listener task failed: {join}"
            ))),
        };
        let _ = finished.send(Some(result.map_err(|e| e.to_string())));
    });
    Ok(RunningServer {
        datastore: state.datastore.clone(),
        agent_addr,
        health_addr,
        metrics_addr,
        metrics: registry,
        stop,
        done,
    })
}

/// Runs `task`, then records that a task the server needs has ended.
async fn clear_on_exit<T>(running: Arc<AtomicBool>, task: impl Future<Output = T>) -> T {
    let out = task.await;
    running.store(false, Ordering::SeqCst);
    out
}

/// A started server; dropping it does not stop it, [`RunningServer::stop`] does.
pub struct RunningServer {
    datastore: Arc<dyn lanyard_datastore::Datastore>,
    agent_addr: std::net::SocketAddr,
    health_addr: Option<std::net::SocketAddr>,
    metrics_addr: Option<std::net::SocketAddr>,
    metrics: Metrics,
    stop: Shutdown,
    done: Done,
}

impl RunningServer {
    /// The address the agent API listens on (useful with port 0).
    pub fn agent_addr(&self) -> std::net::SocketAddr {
        self.agent_addr
    }

    /// The address of the health listener, when `health_checks` enabled it.
    pub fn health_addr(&self) -> Option<std::net::SocketAddr> {
        self.health_addr
    }

    /// The address serving `/metrics`, when the Prometheus exporter is configured.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_addr
    }

    /// How many statements the server's datastore has executed since it opened: a way to
    /// check that a code path (such as serving agents) runs no queries.
    pub fn datastore_queries(&self) -> u64 {
        self.datastore.query_count()
    }

    /// The server's metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Stops accepting, ends open streams, and waits for the listeners to close.
    ///
    /// # Errors
    ///
    /// What a listener failed with, if one failed before the stop.
    pub async fn stop(self) -> Result<(), ServerError> {
        self.stop.trigger();
        self.done.wait().await
    }
}

/// The final result of the listener tasks, readable by several waiters.
#[derive(Clone)]
struct Done(tokio::sync::watch::Receiver<Option<Result<(), String>>>);

impl Done {
    async fn wait(mut self) -> Result<(), ServerError> {
        match self.0.wait_for(Option::is_some).await {
            Ok(result) => result
                .clone()
                .unwrap_or(Ok(()))
                .map_err(ServerError::Internal),
            Err(_) => Err(ServerError::Internal(
                "server task ended without a result".into(),
            )),
        }
    }
}

/// A one-shot shutdown signal that many tasks can wait on.
mod tokio_util_shutdown {
    use std::future::Future;

    use tokio::sync::watch;

    /// Fires once, when the wrapped future completes or [`Shutdown::trigger`] is called.
    pub(crate) struct Shutdown {
        tx: watch::Sender<bool>,
    }

    impl Shutdown {
        pub(crate) fn new(signal: impl Future<Output = ()> + Send + 'static) -> Self {
            let (tx, _) = watch::channel(false);
            let fire = tx.clone();
            tokio::spawn(async move {
                signal.await;
                let _ = fire.send(true);
            });
            Self { tx }
        }

        pub(crate) fn trigger(&self) {
            let _ = self.tx.send(true);
        }

        /// A cheap handle that can trigger the signal from another task.
        pub(crate) fn handle(&self) -> Shutdown {
            Shutdown {
                tx: self.tx.clone(),
            }
        }

        /// A receiver that holds `true` once the signal has fired.
        pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
            self.tx.subscribe()
        }

        /// A future that completes when the signal has fired.
        pub(crate) fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
            let mut rx = self.tx.subscribe();
            async move {
                let _ = rx.wait_for(|fired| *fired).await;
            }
        }
    }
}
