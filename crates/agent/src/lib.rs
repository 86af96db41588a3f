#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! The Lanyard agent: the per-node daemon that gives local workloads their SPIFFE identities.
//!
//! [`run`] attests the node to a server once (join token or x509pop) and keeps the resulting
//! agent X509-SVID and the trust bundle in the data directory and its key on disk (the data
//! directory or a key directory of its own), so a restart needs no new token; with the key in
//! memory only (SPIRE's `KeyManager "memory"`) a restart attests again. It then syncs with the server over mutual TLS: authorized entries, the bundle, and a
//! pre-signed X509-SVID per entry, renewed at half life. Between syncs (every `sync_interval`)
//! the server pushes change notifications on a `lanyard.agent.v1.Notify/Watch` stream, each of
//! which starts a sync at once; against a server without that service the interval alone
//! applies. Workloads are attested from the
//! kernel's peer credentials (`unix` selectors) and served through the SPIFFE Workload API on
//! a unix socket, with updates pushed to open streams.
//!
//! `health_checks {}` and `telemetry {}` add HTTP probes (live: the agent's own Workload API
//! answers; ready: also attested and not locked out, see `health.rs`) and `/metrics`, bound
//! before attestation.
//!
//! JWT-SVIDs are signed by the server on demand and cached per SPIFFE ID and audience set.
//! Bundles of the trust domains named by the entries' `federates_with` are fetched from the
//! server on every sync and handed to the workloads whose identities name them.
//!
//! On first contact the server is authenticated with a PEM or SPIFFE bundle file, a bundle
//! fetched over HTTPS (`trust_bundle_url`), or not at all (insecure bootstrap). When the server
//! stops accepting the agent (evicted, banned; SPIRE's `PermissionDeniedDetails`), an evicted
//! agent that can attest again (x509pop, an unspent join token) does so without closing its
//! Workload API; otherwise it stops serving, removes its stored SVID and stops with
//! [`AgentRefused`] (see `refusal.rs`). With `rebootstrap_mode`, an x509pop agent whose bundle
//! has not authenticated the server for `rebootstrap_delay` attests again against the
//! bootstrap source (`sync_rebootstrap.rs`).
//!
//! Deliberately not here (yet): federation with other servers' bundle endpoints (the server
//! holds federated bundles; the agent only relays them), workload attestors other than
//! `unix`, re-attestation as the renewal method for x509pop (it renews like a join token
//! agent), the agent admin API, and persisting workload SVIDs (a restarted agent signs them
//! anew, as SPIRE's does).

mod attestor;
mod bootstrap;
mod cache;
mod check;
mod client;
mod config;
mod denial;
mod entry;
mod federated;
mod health;
mod https_get;
mod jwt_cache;
mod published;
mod push;
mod refusal;
mod report;
mod retry;
mod schedule;
mod source;
mod stopping;
mod store;
mod sync;
mod timeutil;
mod tls;

#[cfg(test)]
mod test_support;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use arc_swap::ArcSwap;
use lanyard_ca::{Clock, SystemClock};
use lanyard_telemetry::{AGENT_SERVICE, AgentMetrics, Endpoints, HealthService, Metrics};
use lanyard_workload::server::{ServeError, WorkloadListener};
use tokio_util::sync::CancellationToken;

pub use bootstrap::{BootstrapError, X509popError};
pub use check::SvidCheckError;
pub use client::RpcError;
pub use config::{
    AgentConfig, AgentKeyManager, BundleFormat, ConfigError, DEFAULT_REBOOTSTRAP_DELAY,
    DEFAULT_SYNC_INTERVAL, RebootstrapMode, TrustBootstrap, UnixAttestorConfig, WorkloadSizeLimit,
    X509popAgentConfig,
};
pub use health::workload_api_answers;
pub use https_get::TrustUrlError;
pub use refusal::AgentRefused;
pub use store::StoreError;

use crate::cache::{Cache, Snapshot};
use crate::client::ServerClient;
use crate::config::ServerAddress;
use crate::published::Published;
use crate::report::ErrorChain;
use crate::source::AgentSource;
use crate::stopping::{Ended, STREAM_DRAIN, join_sync, sync_ended};
use crate::store::{DirLock, StateStore};
use crate::sync::{SyncParts, Syncer};
use crate::tls::{AgentCert, ServerTrust, TrustOrigin, client_config};

/// Why the agent stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory cannot be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The agent has no identity (boxed: bootstrap errors are large and happen once).
    #[error(transparent)]
    Bootstrap(Box<BootstrapError>),
    /// The agent SVID cannot be loaded into TLS.
    #[error("cannot use the agent SVID as TLS client certificate")]
    Tls(#[from] rustls::Error),
    /// The Workload API cannot be served.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The health or metrics listener cannot start.
    #[error(transparent)]
    Telemetry(#[from] lanyard_telemetry::TelemetryError),
    /// The server refused the agent (banned, or evicted without a way to attest again).
    #[error(transparent)]
    Refused(Box<AgentRefused>),
    /// The sync loop stopped although nobody asked it to (a bug).
    #[error("the sync loop stopped unexpectedly: {0}")]
    SyncStopped(String),
    /// The Workload API stopped although nobody asked it to.
    #[error("the Workload API on {path} stopped unexpectedly", path = path.display())]
    ServeStopped {
        /// The socket path.
        path: std::path::PathBuf,
    },
}

impl From<BootstrapError> for AgentError {
    fn from(e: BootstrapError) -> Self {
        Self::Bootstrap(Box::new(e))
    }
}

impl From<AgentRefused> for AgentError {
    fn from(refused: AgentRefused) -> Self {
        Self::Refused(Box::new(refused))
    }
}

/// Runs the agent until `shutdown` completes: the Workload API on `config.socket_path` (bound
/// first, so a bad socket path fails before a join token is spent), bootstrap (restore or
/// attest), then the sync loop.
///
/// # Errors
///
/// [`AgentError`] when the agent cannot get an identity (no token and no usable stored SVID,
/// a refused token: the server's reason is in the message; a server whose certificate does
/// not chain to the bootstrap bundle), when the data directory or the socket cannot be used,
/// or when the configuration is invalid. Server outages after start are not errors: the agent
/// keeps serving its cache and retries.
///
/// # Cancel safety
///
/// Dropping the future stops the agent abruptly (files on disk stay consistent); prefer
/// completing `shutdown`, which stops the sync loop and the Workload API in order.
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AgentError> {
    run_with_clock(config, shutdown, Arc::new(SystemClock)).await
}

async fn run_with_clock(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send,
    clock: Arc<dyn Clock>,
) -> Result<(), AgentError> {
    config.validate()?;
    // Checks that create nothing come first, so that a start that cannot work leaves no files.
    check_trust_bundle(&config)?;
    // One registry per agent instance, never a global one.
    let registry = Metrics::new();
    let metrics = AgentMetrics::register(&registry);

    // The socket comes before attestation, so that a socket path that cannot work fails before
    // the join token is spent. Until the first sync, workloads are told they have no identity.
    // The health and metrics listeners too: they report an agent that cannot attest.
    let endpoints = Endpoints::bind(&config.health_checks, &config.telemetry).await?;
    let created_dir = !config.data_dir.exists();
    let _lock = DirLock::acquire(&config.data_dir)?;
    let probe = Arc::new(health::AgentProbe::new(config.socket_path.clone()));
    let opened =
        StateStore::open_with(&config.data_dir, &config.key_manager).map_err(AgentError::from);
    let bound = opened.and_then(|store| {
        let listener = WorkloadListener::bind(&config.socket_path)?
            .metrics(registry.rpc())
            .health(HealthService::new(probe.clone(), AGENT_SERVICE));
        Ok((Arc::new(store), listener))
    });
    let (store, listener) = match bound {
        Ok(bound) => bound,
        Err(e) => {
            if created_dir {
                remove_created_dir(&config.data_dir);
            }
            return Err(e);
        }
    };
    let published = Arc::new(Published::new(Snapshot::empty(config.trust_domain.clone())));
    let attestors: Vec<Arc<dyn attestor::WorkloadAttestor>> = vec![Arc::new(
        attestor::unix::UnixAttestor::new(config.unix_attestor),
    )];
    // What workloads use, shared by the Workload API (which registers its calls) and the
    // sync loop (which keeps those SVIDs cached and signs missing ones at once).
    let demand = Arc::new(cache::demand::SvidDemand::default());
    let source = Arc::new(AgentSource::new(
        Arc::clone(&published),
        Arc::clone(&clock),
        attestors,
        Arc::clone(&demand),
    ));
    let cancel = CancellationToken::new();
    let telemetry =
        tokio::spawn(endpoints.serve(registry, probe.clone(), cancel.clone().cancelled_owned()));
    let mut serving = pin!(listener.serve(source, cancel.clone().cancelled_owned()));
    let mut shutdown = pin!(shutdown);

    let started = tokio::select! {
        r = start(&config, store, published, clock, metrics) => r,
        r = &mut serving => return serve_ended(&config, r),
        () = &mut shutdown => {
            tracing::info!("Agent stopped before it had an identity");
            cancel.cancel();
            let served = serving.await;
            let _ = telemetry.await;
            return Ok(served?);
        }
    };
    let syncer = match started {
        Ok(syncer) => syncer.with_demand(demand, config.x509_svid_cache_max_size),
        Err(e) => {
            cancel.cancel();
            if let Err(stop) = serving.await {
                tracing::warn!(error = %ErrorChain(&stop), "The Workload API did not stop cleanly");
            }
            let _ = telemetry.await;
            return Err(e);
        }
    };
    probe.set_attested(syncer.health());

    let push_task = tokio::spawn(syncer.push_channel(cancel.child_token()));
    let mut sync_task = tokio::spawn(syncer.run(cancel.child_token()));
    let ended = tokio::select! {
        r = &mut serving => Ended::Serve(r),
        () = &mut shutdown => Ended::Shutdown,
        r = &mut sync_task => Ended::Sync(r),
    };
    let served = match ended {
        Ended::Serve(r) => {
            cancel.cancel();
            join_sync(sync_task).await;
            serve_ended(&config, r)
        }
        Ended::Shutdown => {
            tracing::debug!("Shutting down");
            cancel.cancel();
            join_sync(sync_task).await;
            serving.await.map_err(AgentError::from)
        }
        Ended::Sync(r) => {
            let refused = sync_ended(r);
            // The sync loop published an empty cache: give the open streams a moment to
            // deliver their PermissionDenied before the socket closes.
            tokio::time::sleep(STREAM_DRAIN).await;
            cancel.cancel();
            if let Err(stop) = serving.await {
                tracing::warn!(error = %ErrorChain(&stop), "The Workload API did not stop cleanly");
            }
            refused
        }
    };
    if let Err(e) = push_task.await {
        tracing::warn!(error = %e, "Change notification task ended abnormally");
    }
    if let Err(e) = telemetry.await {
        tracing::warn!(error = %e, "Telemetry task ended abnormally");
    }
    tracing::info!("Agent stopped");
    served
}

/// Fails when the agent will have to attest (no stored SVID) and the bootstrap bundle file
/// cannot be read, before anything is created on disk.
fn check_trust_bundle(config: &AgentConfig) -> Result<(), AgentError> {
    if config.data_dir.join(store::SVID_FILE).exists() {
        return Ok(());
    }
    match &config.trust_bundle {
        TrustBootstrap::Pem(path) => {
            config::read_pem_bundle(&config.trust_domain, path)?;
        }
        TrustBootstrap::Spiffe(path) => {
            config::read_spiffe_bundle(&config.trust_domain, path)?;
        }
        // Fetched when attesting, not twice; the URL itself was checked by `validate`.
        TrustBootstrap::Url { .. } | TrustBootstrap::Insecure => {}
    }
    Ok(())
}

/// Undoes the data directory a failed start created: its lock file and the directory, if
/// nothing else was put there.
fn remove_created_dir(dir: &std::path::Path) {
    let _ = std::fs::remove_file(dir.join(store::LOCK_FILE));
    if let Err(e) = std::fs::remove_dir(dir) {
        tracing::debug!(dir = %dir.display(), error = %e, "Left the data directory in place");
    }
}

/// Gets the agent its identity and wires the sync loop to it.
async fn start(
    config: &AgentConfig,
    store: Arc<StateStore>,
    published: Arc<Published>,
    clock: Arc<dyn Clock>,
    metrics: AgentMetrics,
) -> Result<Syncer, AgentError> {
    if config.rebootstrap_mode == RebootstrapMode::Auto && !config.rebootstraps() {
        tracing::warn!(
            "rebootstrap_mode is auto but the attestor cannot attest again (join token): \
             rebootstrapping is disabled"
        );
    }
    let identity = bootstrap::bootstrap(config, &store, &*clock).await?;
    let agent_id = identity.svid.svid.spiffe_id().clone();
    let reattest = refusal::Reattest {
        config: config.clone(),
        token_unspent: !identity.token_spent,
    };
    let syncer =
        assemble(config, identity, store, published, clock, metrics)?.with_reattest(reattest);
    tracing::info!(
        spiffe_id = %agent_id,
        socket = %config.socket_path.display(),
        server = %config.server_address,
        "Agent started"
    );
    Ok(syncer)
}

/// Wires the sync loop to the agent's identity; it publishes into `published`.
fn assemble(
    config: &AgentConfig,
    identity: bootstrap::Identity,
    store: Arc<StateStore>,
    published: Arc<Published>,
    clock: Arc<dyn Clock>,
    metrics: AgentMetrics,
) -> Result<Syncer, AgentError> {
    let td = config.trust_domain.clone();
    let bundle = Arc::new(ArcSwap::from_pointee(identity.bundle.clone()));
    let cert = Arc::new(AgentCert::default());
    cert.set(&identity.svid.svid)?;
    let tls = client_config(
        &td,
        ServerTrust::Bundle(Arc::clone(&bundle)),
        Arc::clone(&cert),
    )?;
    let origin = TrustOrigin::Stored(store.dir().to_path_buf());
    let client = Arc::new(ServerClient::new(
        ServerAddress::parse(&config.server_address)?,
        tls,
        origin,
    ));
    published.set_client(Arc::clone(&client));
    let cache = Cache::new(identity.bundle);
    published.publish(cache.snapshot());
    Ok(Syncer::new(SyncParts {
        trust_domain: td,
        client,
        cert,
        bundle,
        store,
        agent: identity.svid,
        cache,
        published,
        interval: config.sync_interval,
        key_type: config.workload_key_type,
        clock,
        metrics,
        wake: Arc::new(tokio::sync::Notify::new()),
    }))
}

/// The error for a Workload API server that stopped although nobody asked it to.
fn serve_ended(config: &AgentConfig, served: Result<(), ServeError>) -> Result<(), AgentError> {
    match served {
        Ok(()) => Err(AgentError::ServeStopped {
            path: config.socket_path.clone(),
        }),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::net::TcpListener;
    use std::path::Path;

    use lanyard_spiffe::TrustDomain;
    use lanyard_workload::{ClientError, EndpointAddr, WorkloadClient};

    use super::*;

    /// A configuration with a join token, attesting to `server`, serving on `socket`.
    fn config(dir: &Path, server: &TcpListener, socket: &Path) -> AgentConfig {
        let mut config = AgentConfig::new(
            TrustDomain::new("example.org").unwrap(),
            dir.join("agent"),
            server.local_addr().unwrap().to_string(),
            TrustBootstrap::Insecure,
        );
        config.join_token = Some("token".into());
        config.socket_path = socket.to_path_buf();
        config
    }

    #[tokio::test]
    async fn socket_path_in_the_way_fails_before_the_join_token_is_spent() {
        let tmp = tempfile::tempdir().unwrap();
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        server.set_nonblocking(true).unwrap();
        let in_the_way = tmp.path().join("api.sock");
        std::fs::write(&in_the_way, b"not a socket").unwrap();

        let err = run(
            config(tmp.path(), &server, &in_the_way),
            std::future::pending(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, AgentError::Serve(_)), "{err}");
        assert!(err.to_string().contains("not a socket"), "{err}");
        let contacted = server.accept().map(drop);
        assert_eq!(
            contacted.unwrap_err().kind(),
            ErrorKind::WouldBlock,
            "the agent must not contact the server"
        );
    }

    /// Status code of `GET path` on `addr`, over plain HTTP/1.1.
    async fn http_status(addr: &str, path: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out[9..12].parse().unwrap()
    }

    #[tokio::test]
    async fn live_but_not_ready_while_attestation_is_pending() {
        let tmp = tempfile::tempdir().unwrap();
        let silent_server = TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = tmp.path().join("api.sock");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = config(tmp.path(), &silent_server, &socket);
        config.health_checks = lanyard_telemetry::HealthChecks {
            listener_enabled: true,
            bind_address: "127.0.0.1".into(),
            bind_port: port,
            ..Default::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let agent = run(config, async {
            let _ = stopped.await;
        });
        let probes = async {
            let addr = format!("127.0.0.1:{port}");
            // The listener is bound on the agent's first poll, before attestation starts.
            let live = http_status(&addr, "/live").await;
            let ready = http_status(&addr, "/ready").await;
            let answers = workload_api_answers(&socket, std::time::Duration::from_secs(2)).await;
            stop.send(()).unwrap();
            (live, ready, answers)
        };
        let (ran, (live, ready, answers)) = tokio::join!(agent, probes);
        ran.unwrap();
        assert_eq!(live, 200, "the Workload API answers");
        assert_eq!(ready, 503, "no identity yet");
        answers.unwrap();
    }

    #[tokio::test]
    async fn grpc_health_on_the_workload_socket_agrees_with_ready() {
        use lanyard_proto::grpc::health::v1::{
            HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
        };
        let tmp = tempfile::tempdir().unwrap();
        let silent_server = TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = tmp.path().join("api.sock");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let agent = run(config(tmp.path(), &silent_server, &socket), async {
            let _ = stopped.await;
        });
        let probes = async {
            let channel = lanyard_workload::client::unix_channel(&socket)
                .await
                .unwrap();
            let mut health = HealthClient::new(channel);
            let mut answers = Vec::new();
            for service in [
                "",
                "lanyard.agent",
                "lanyard.agent.liveness",
                "lanyard.server",
            ] {
                let answer = health
                    .check(HealthCheckRequest {
                        service: service.into(),
                    })
                    .await
                    .map(|r| r.into_inner().status)
                    .map_err(|s| s.code());
                answers.push(answer);
            }
            stop.send(()).unwrap();
            answers
        };
        let (ran, answers) = tokio::join!(agent, probes);
        ran.unwrap();
        let not_serving = Ok(ServingStatus::NotServing as i32);
        assert_eq!(answers[0], not_serving, "attestation pending");
        assert_eq!(answers[1], not_serving, "attestation pending");
        assert_eq!(answers[2], Ok(ServingStatus::Serving as i32), "alive");
        assert_eq!(answers[3], Err(tonic::Code::NotFound), "not a server");
    }

    #[tokio::test]
    async fn a_second_agent_on_the_same_data_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let silent_server = TcpListener::bind("127.0.0.1:0").unwrap();
        let first_socket = tmp.path().join("first.sock");
        let second_socket = tmp.path().join("second.sock");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let first = run(config(tmp.path(), &silent_server, &first_socket), async {
            let _ = stopped.await;
        });
        let second = async {
            let err = run(
                config(tmp.path(), &silent_server, &second_socket),
                std::future::pending(),
            )
            .await
            .unwrap_err();
            stop.send(()).unwrap();
            err
        };
        let (ran, err) = tokio::join!(first, second);
        ran.unwrap();
        assert!(
            matches!(err, AgentError::Store(StoreError::InUse { .. })),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("is in use by another lanyard agent"),
            "{err}"
        );
        assert!(
            !second_socket.exists(),
            "the refused agent created no socket"
        );
    }

    #[tokio::test]
    async fn a_missing_trust_bundle_fails_before_the_data_dir_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = tmp.path().join("api.sock");
        let mut config = config(tmp.path(), &server, &socket);
        config.trust_bundle = TrustBootstrap::Pem(tmp.path().join("missing.pem"));
        let err = run(config, std::future::pending()).await.unwrap_err();
        assert!(matches!(err, AgentError::Config(_)), "{err}");
        assert!(!tmp.path().join("agent").exists(), "no data directory");
        assert!(!socket.exists(), "no socket");
    }

    #[tokio::test]
    async fn workload_api_answers_not_yet_while_the_agent_attests() {
        let tmp = tempfile::tempdir().unwrap();
        // Accepts connections (in the backlog) but never answers: attestation stays pending.
        let silent_server = TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = tmp.path().join("api.sock");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let agent = run(config(tmp.path(), &silent_server, &socket), async {
            let _ = stopped.await;
        });

        // `join!` polls the agent first, and the agent binds its socket on its first poll.
        let workload = async {
            let addr = EndpointAddr::Unix(socket.clone());
            let mut client = WorkloadClient::connect(&addr).await.unwrap();
            let answer = client.fetch_x509_context().await;
            drop(client);
            stop.send(()).unwrap();
            answer
        };
        let (ran, answer) = tokio::join!(agent, workload);

        let Err(ClientError::Status(status)) = answer else {
            panic!("expected a refusal, got {answer:?}");
        };
        // Unavailable, which clients retry: the caller may have an identity once the agent
        // has its entries.
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), source::NOT_SYNCED);
        ran.unwrap();
        assert!(!socket.exists(), "the socket is removed at shutdown");
    }
}
