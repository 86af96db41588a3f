//! What every request handler shares: the datastore, the CA, the current bundle and the
//! server's own SVID.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use lanyard_ca::{CaManager, Clock, DiskKeyManager, KeyManager, MemoryKeyManager, SystemClock};
use lanyard_datastore::{AttestedAgent, Datastore, Entry, SqliteDatastore};
use lanyard_spiffe::{BundleSource, SpiffeId, TrustDomain, X509Bundle};
use lanyard_telemetry::{Metrics, ServerMetrics, SvidKind};

use crate::authorized::EntryIndex;
use crate::{KeyManagerKind, ServerConfig, ServerError};

/// The server's shared state.
pub(crate) struct ServerState {
    /// Held for the server's lifetime: one server per data directory.
    _lock: nix::fcntl::Flock<std::fs::File>,
    pub(crate) trust_domain: TrustDomain,
    pub(crate) config: ServerConfig,
    pub(crate) datastore: Arc<dyn Datastore>,
    pub(crate) ca: CaManager,
    pub(crate) clock: Arc<dyn Clock>,
    /// The trust bundle as last published; TLS verification reads it on every handshake.
    pub(crate) bundle: Arc<CurrentBundle>,
    /// The server's own X509-SVID, swapped on renewal.
    pub(crate) server_svid: Arc<crate::tls::ServerSvid>,
    /// `spiffe://<td>/spire/server`.
    pub(crate) server_id: SpiffeId,
    /// Every entry, indexed for authorization; the handlers that write entries update it
    /// after each committed write, so no RPC reads the whole table.
    //
    // TODO: with several servers on one database (issue #7) writes made through another
    // server are not seen; the datastore's change feed will feed this index instead.
    pub(crate) entries: std::sync::RwLock<EntryIndex>,
    /// Every attested agent, so that authorizing an agent RPC reads no database; updated
    /// together with the datastore by the handlers that change agents.
    //
    // TODO: the same change feed as for entries (issue #7) must update it across servers.
    agents: std::sync::RwLock<HashMap<SpiffeId, AttestedAgent>>,
    /// The server's metric families (signing, entries, agents, CA rotation).
    pub(crate) metrics: ServerMetrics,
    /// The registry they live in, for the per-RPC families.
    pub(crate) registry: Metrics,
}

impl ServerState {
    /// Opens (or creates) the datastore and the CA under the data directory; registers the
    /// server's metric families in `registry`.
    pub(crate) async fn open(
        config: &ServerConfig,
        registry: &Metrics,
    ) -> Result<Self, ServerError> {
        create_private_dir(&config.data_dir)?;
        if let Some(mode) = shared_access(&config.data_dir) {
            tracing::warn!(
                data_dir = %config.data_dir.display(),
                mode = format!("{mode:04o}"),
                "The data directory holds CA keys and the datastore but other users can access \
                 it: chmod 700 it"
            );
        }
        let lock = lock_data_dir(&config.data_dir)?;
        let db_path = config.data_dir.join("datastore.sqlite3");
        let datastore = Arc::new(SqliteDatastore::open(&db_path).await?);
        let keys: Arc<dyn KeyManager> = match config.key_manager {
            KeyManagerKind::Disk => {
                let keys_dir = config.data_dir.join("keys");
                refuse_orphaned_keys(datastore.as_ref(), &keys_dir, &db_path).await?;
                Arc::new(DiskKeyManager::open(&keys_dir).map_err(|e| ServerError::Ca(e.into()))?)
            }
            // Nothing on disk to protect: a journal whose keys are gone yields a new CA, and
            // the keyless active authority stays in the bundle as the old one.
            KeyManagerKind::Memory => Arc::new(MemoryKeyManager::new()),
        };
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let upstream = match &config.upstream {
            Some(disk) => {
                let upstream = disk
                    .open(clock.now())
                    .map_err(|e| ServerError::Ca(e.into()))?;
                Some(Arc::new(upstream) as Arc<dyn lanyard_ca::UpstreamAuthority>)
            }
            None => None,
        };
        let ca = CaManager::load_or_create_with_upstream(
            &config.trust_domain,
            config.ca_config(),
            keys,
            upstream,
            datastore.clone(),
            clock.clone(),
        )
        .await?;
        let drift = lanyard_ca::config_drift(&ca, &config.ca_config(), config.upstream.is_some());
        if !drift.is_empty() {
            tracing::warn!(
                changes = %drift.join("; "),
                "The configuration differs from the active authority and takes effect at the next \
                 rotation, or now with `lanyard server localauthority x509 prepare` (or jwt) \
                 then activate"
            );
        }

        let trust_domain = config.trust_domain.clone();
        let server_id = SpiffeId::from_segments(&trust_domain, &["spire", "server"])
            .map_err(|e| ServerError::Internal(format!("server ID: {e}")))?;
        let bundle = Arc::new(CurrentBundle::new(X509Bundle::new(
            trust_domain.clone(),
            ca.authorities(),
        )));
        let metrics = ServerMetrics::register(registry);
        let server_svid = Arc::new(crate::tls::ServerSvid::mint(
            &ca,
            &server_id,
            config,
            clock.now(),
        )?);
        metrics.svid_signed(SvidKind::X509Server);

        let entries = std::sync::RwLock::new(EntryIndex::new(datastore.all_entries().await?));
        let agents = datastore
            .list_agents()
            .await?
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect::<HashMap<_, _>>();
        metrics.agents.set(gauge_value(agents.len()));
        metrics
            .entries
            .set(gauge_value(entries.read().map(|e| e.len()).unwrap_or(0)));
        let state = Self {
            metrics,
            registry: registry.clone(),
            agents: std::sync::RwLock::new(agents),
            _lock: lock,
            entries,
            trust_domain,
            config: config.clone(),
            datastore,
            ca,
            clock,
            bundle,
            server_svid,
            server_id,
        };
        state.publish_bundle().await?;
        Ok(state)
    }

    /// Writes the CA's current authorities to the datastore and to the in-memory bundle.
    pub(crate) async fn publish_bundle(&self) -> Result<(), ServerError> {
        let authorities = self.ca.authorities();
        let stored = self
            .datastore
            .set_bundle_authorities(
                &self.trust_domain,
                authorities.iter().map(|c| c.to_vec()).collect(),
            )
            .await?;
        self.bundle
            .store(X509Bundle::new(self.trust_domain.clone(), authorities));
        tracing::debug!(sequence = stored.sequence, "Bundle published");
        Ok(())
    }

    /// Publishes the CA's authorities after a change the certificate set may not show (an
    /// authority tainted, a JWT key prepared or revoked): the bundle's sequence rises even when
    /// its certificates stay the same, so whoever compares sequences notices.
    pub(crate) async fn publish_authority_change(&self) -> Result<(), ServerError> {
        let before = self
            .datastore
            .get_bundle(&self.trust_domain)
            .await?
            .map(|b| b.sequence);
        self.publish_bundle().await?;
        let after = self
            .datastore
            .get_bundle(&self.trust_domain)
            .await?
            .map(|b| b.sequence);
        if after == before {
            let bumped = self
                .datastore
                .bump_bundle_sequence(&self.trust_domain)
                .await?;
            tracing::debug!(
                sequence = bumped.map(|b| b.sequence),
                "Bundle sequence raised after an authority change"
            );
        }
        Ok(())
    }

    /// Records committed entry writes in the index.
    pub(crate) fn index_entries(&self, created: Vec<Entry>, deleted: &[String]) {
        let mut index = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for id in deleted {
            index.remove(id);
        }
        for e in created {
            index.insert(e);
        }
        self.metrics.entries.set(gauge_value(index.len()));
    }

    /// The attested agent `id`, if any.
    pub(crate) fn agent(&self, id: &SpiffeId) -> Option<AttestedAgent> {
        self.agents
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Records an agent as the datastore now holds it.
    pub(crate) fn remember_agent(&self, agent: AttestedAgent) {
        let mut agents = self
            .agents
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        agents.insert(agent.id.clone(), agent);
        self.metrics.agents.set(gauge_value(agents.len()));
    }

    /// The entries `agent` may hold SVIDs for.
    pub(crate) fn authorized_entries(&self, agent: &AttestedAgent) -> Vec<Entry> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .authorized(agent, &self.server_id)
    }

    /// Current time as Unix seconds.
    pub(crate) fn now_unix(&self) -> i64 {
        unix_seconds(self.clock.now())
    }
}

/// The trust bundle that TLS verification consults; replaced atomically on rotation.
pub(crate) struct CurrentBundle(ArcSwap<X509Bundle>);

impl CurrentBundle {
    pub(crate) fn new(bundle: X509Bundle) -> Self {
        Self(ArcSwap::from_pointee(bundle))
    }

    pub(crate) fn store(&self, bundle: X509Bundle) {
        self.0.store(Arc::new(bundle));
    }
}

impl BundleSource for CurrentBundle {
    fn x509_bundle(&self, td: &TrustDomain) -> Option<X509Bundle> {
        let bundle = self.0.load();
        (bundle.trust_domain() == td).then(|| X509Bundle::clone(&bundle))
    }
}

/// A count as a gauge value (saturating; no server holds 2^63 of anything).
fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Seconds since the Unix epoch; times before it (a broken clock) read as 0.
pub(crate) fn unix_seconds(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Creates `dir` (and parents) readable by the owner only, as it holds keys.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), ServerError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| ServerError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// The permission bits of `dir` when its group or other users have any access to it.
pub(crate) fn shared_access(dir: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir).ok()?.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Takes an exclusive lock on `<data dir>/server.lock`, so that two servers never rotate the
/// same CA keys or write the same database file.
fn lock_data_dir(dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, ServerError> {
    let path = dir.join("server.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| ServerError::Io {
            path: path.clone(),
            source,
        })?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        ServerError::Config(format!(
            "data directory {} is in use by another lanyard server: give each server its own \
             --data-dir",
            dir.display()
        ))
    })
}

/// A datastore without a CA journal next to existing CA keys means the database was lost or
/// replaced. Creating a new CA would overwrite the old keys for good and break every agent,
/// so the server refuses instead.
async fn refuse_orphaned_keys(
    datastore: &dyn Datastore,
    keys_dir: &Path,
    db_path: &Path,
) -> Result<(), ServerError> {
    let journal = datastore
        .load_journal()
        .await
        .map_err(|e| ServerError::Internal(format!("reading the CA journal: {e}")))?;
    if journal.is_some() {
        return Ok(());
    }
    let has_keys = std::fs::read_dir(keys_dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if has_keys {
        return Err(ServerError::Config(format!(
            "{} holds CA keys but the datastore {} has no CA journal (was it deleted or \
             replaced?): refusing to create a new CA over the existing keys; restore the \
             datastore, or move {} away to start a new CA",
            keys_dir.display(),
            db_path.display(),
            keys_dir.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_created_data_dir_is_private_and_a_shared_one_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let created = tmp.path().join("data");
        create_private_dir(&created).unwrap();
        let mode = std::fs::metadata(&created).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(shared_access(&created), None);

        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&shared).unwrap();
        assert_eq!(
            shared_access(&shared),
            Some(0o755),
            "left as is, but reported"
        );
    }
}
