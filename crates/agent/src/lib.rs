#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! The Lanyard agent: the per-node daemon that gives local workloads their SPIFFE identities.
//!
//! [`run`] attests the node to a server once (join token) and keeps the resulting agent
//! X509-SVID, its key and the trust bundle in the data directory, so a restart needs no new
//! token. It then syncs with the server over mutual TLS: authorized entries, the bundle, and a
//! pre-signed X509-SVID per entry, renewed at half life. Workloads are attested from the
//! kernel's peer credentials (`unix` selectors) and served through the SPIFFE Workload API on
//! a unix socket, with updates pushed to open streams.
//!
//! Deliberately not here (yet): JWT-SVIDs, federated bundles, workload attestors other than
//! `unix`, re-attestation with attestors other than join tokens, the agent admin API, and
//! persisting workload SVIDs (a restarted agent signs them anew, as SPIRE's does).

mod attestor;
mod bootstrap;
mod cache;
mod check;
mod client;
mod config;
mod entry;
mod published;
mod retry;
mod schedule;
mod source;
mod store;
mod sync;
mod timeutil;
mod tls;

#[cfg(test)]
mod test_support;

use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwap;
use lanyard_ca::{Clock, SystemClock};
use lanyard_workload::serve_unix;
use lanyard_workload::server::ServeError;
use tokio_util::sync::CancellationToken;

pub use bootstrap::BootstrapError;
pub use check::SvidCheckError;
pub use client::RpcError;
pub use config::{AgentConfig, ConfigError, DEFAULT_SYNC_INTERVAL, TrustBootstrap};
pub use store::StoreError;

use crate::cache::Cache;
use crate::client::ServerClient;
use crate::config::ServerAddress;
use crate::published::Published;
use crate::source::AgentSource;
use crate::store::StateStore;
use crate::sync::{SyncParts, Syncer};
use crate::tls::{AgentCert, ServerTrust, client_config};

/// Why the agent stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory cannot be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The agent has no identity.
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// The agent SVID cannot be loaded into TLS.
    #[error("TLS client: {0}")]
    Tls(#[from] rustls::Error),
    /// The Workload API cannot be served.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The Workload API stopped although nobody asked it to.
    #[error("the Workload API on {path} stopped unexpectedly", path = path.display())]
    ServeStopped {
        /// The socket path.
        path: std::path::PathBuf,
    },
}

/// Runs the agent until `shutdown` completes: bootstrap (restore or attest), then the sync
/// loop and the Workload API on `config.socket_path`.
///
/// # Errors
///
/// [`AgentError`] when the agent cannot get an identity (no token and no usable stored SVID,
/// a refused token: the server's reason is in the message), when the data directory or the
/// socket cannot be used, or when the configuration is invalid. Server outages after start
/// are not errors: the agent keeps serving its cache and retries.
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
    let mut shutdown = std::pin::pin!(shutdown);
    let store = Arc::new(StateStore::open(&config.data_dir)?);
    let identity = tokio::select! {
        r = bootstrap::bootstrap(&config, &store, &*clock) => r?,
        () = &mut shutdown => {
            tracing::info!("Agent stopped before it had an identity");
            return Ok(());
        }
    };

    let agent_id = identity.svid.svid.spiffe_id().clone();
    let (syncer, published) = assemble(&config, identity, store, Arc::clone(&clock))?;

    let cancel = CancellationToken::new();
    let sync_task = tokio::spawn(syncer.run(cancel.child_token()));
    tracing::info!(
        spiffe_id = %agent_id,
        socket = %config.socket_path.display(),
        server = %config.server_address,
        "Agent started"
    );
    let served = serve(&config, published, clock, &cancel, shutdown).await;

    cancel.cancel();
    if let Err(e) = sync_task.await {
        tracing::warn!(error = %e, "Sync task ended abnormally");
    }
    tracing::info!("Agent stopped");
    served
}

/// Wires the sync loop to the agent's identity; returns it with the snapshots it publishes.
fn assemble(
    config: &AgentConfig,
    identity: bootstrap::Identity,
    store: Arc<StateStore>,
    clock: Arc<dyn Clock>,
) -> Result<(Syncer, Arc<Published>), AgentError> {
    let td = config.trust_domain.clone();
    let bundle = Arc::new(ArcSwap::from_pointee(identity.bundle.clone()));
    let cert = Arc::new(AgentCert::default());
    cert.set(&identity.svid.svid)?;
    let tls = client_config(
        &td,
        ServerTrust::Bundle(Arc::clone(&bundle)),
        Arc::clone(&cert),
    )?;
    let client = ServerClient::new(ServerAddress::parse(&config.server_address)?, tls);
    let cache = Cache::new(identity.bundle);
    let published = Arc::new(Published::new(cache.snapshot()));
    let syncer = Syncer::new(SyncParts {
        trust_domain: td,
        client,
        cert,
        bundle,
        store,
        agent: identity.svid,
        cache,
        published: Arc::clone(&published),
        interval: config.sync_interval,
        key_type: config.workload_key_type,
        clock,
    });
    Ok((syncer, published))
}

/// Serves the Workload API until `shutdown` completes (or the server fails), then cancels
/// `cancel`.
async fn serve(
    config: &AgentConfig,
    published: Arc<Published>,
    clock: Arc<dyn Clock>,
    cancel: &CancellationToken,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let source = Arc::new(AgentSource::new(published, clock));
    let serving = serve_unix(
        &config.socket_path,
        source,
        cancel.clone().cancelled_owned(),
    );
    let mut serving = std::pin::pin!(serving);
    let mut shutdown = std::pin::pin!(shutdown);
    let ended_early = tokio::select! {
        r = &mut serving => Some(r),
        () = &mut shutdown => None,
    };
    cancel.cancel();
    match ended_early {
        Some(Ok(())) => Err(AgentError::ServeStopped {
            path: config.socket_path.clone(),
        }),
        Some(Err(e)) => Err(e.into()),
        None => {
            tracing::debug!("Shutting down");
            Ok(serving.await?)
        }
    }
}
