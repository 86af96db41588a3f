//! What every request handler shares: the datastore, the CA, the current bundle and the
//! server's own SVID.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use lanyard_ca::JournalStore;
use lanyard_ca::{CaManager, Clock, DiskKeyManager, KeyManager, MemoryKeyManager, SystemClock};
use lanyard_datastore::{AttestedAgent, Datastore, Entry, ServerJournal, SqlDatastore};
use lanyard_spiffe::{SpiffeId, TrustDomain, X509Bundle};
use lanyard_telemetry::{Metrics, ServerMetrics, SvidKind};

use crate::authorized::EntryIndex;
use crate::changes::Changes;
pub(crate) use crate::own_bundle::CurrentBundle;
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
    /// Every entry, indexed for authorization, so that no agent RPC reads the entry table. The
    /// handlers that write entries update it after each committed write; the change feed
    /// (`sync.rs`) brings in writes made through other servers sharing the database.
    pub(crate) entries: std::sync::RwLock<EntryIndex>,
    /// Every attested agent, so that authorizing an agent RPC reads no database; kept current
    /// like `entries`.
    agents: std::sync::RwLock<HashMap<SpiffeId, AttestedAgent>>,
    /// The change-feed position the caches reflect: every change up to it has been applied.
    pub(crate) feed_position: AtomicU64,
    /// What this server's CA has put into the stored bundle (see `own_bundle.rs`).
    pub(crate) published: std::sync::Mutex<crate::own_bundle::Published>,
    /// The server's metric families (signing, entries, agents, CA rotation).
    pub(crate) metrics: ServerMetrics,
    /// The registry they live in, for the per-RPC families.
    pub(crate) registry: Metrics,
    /// Bumped whenever `entries`, `agents` or the published bundle changes, for the agents'
    /// watch streams.
    pub(crate) changes: Changes,
    /// Agents' authorized entries between their signing calls.
    authorized: crate::authorized_cache::AuthorizedCache,
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
        let (datastore, db_name) = match &config.datastore {
            None => {
                let path = config.data_dir.join("datastore.sqlite3");
                let name = path.display().to_string();
                (Arc::new(SqlDatastore::open(&path).await?), name)
            }
            Some(db) => (
                Arc::new(SqlDatastore::connect(db).await?),
                format!("({} database)", db.engine),
            ),
        };
        datastore.claim_trust_domain(&config.trust_domain).await?;
        // Servers sharing a database each keep their CA keys in their own data directory and
        // their CA journal under their own ID.
        let journal = Arc::new(ServerJournal::new(
            datastore.clone(),
            server_instance_id(&config.data_dir)?,
        ));
        let keys: Arc<dyn KeyManager> = match config.key_manager {
            KeyManagerKind::Disk => {
                let keys_dir = config
                    .keys_dir
                    .clone()
                    .unwrap_or_else(|| config.data_dir.join("keys"));
                refuse_orphaned_keys(journal.as_ref(), &keys_dir, &db_name).await?;
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
            journal,
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

        // Each snapshot comes with the feed position read before it, so replaying the feed
        // from the older of the two positions misses nothing (replaying a change is harmless).
        let (all_entries, entries_position) = datastore.entries_snapshot().await?;
        let (all_agents, agents_position) = datastore.agents_snapshot().await?;
        let entries = std::sync::RwLock::new(EntryIndex::new(all_entries));
        let agents = all_agents
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect::<HashMap<_, _>>();
        metrics.agents.set(gauge_value(agents.len()));
        metrics
            .entries
            .set(gauge_value(entries.read().map(|e| e.len()).unwrap_or(0)));
        let start = clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let state = Self {
            changes: Changes::new(start),
            authorized: crate::authorized_cache::AuthorizedCache::default(),
            metrics,
            registry: registry.clone(),
            agents: std::sync::RwLock::new(agents),
            feed_position: AtomicU64::new(entries_position.min(agents_position)),
            published: std::sync::Mutex::default(),
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

    /// Whether an entry with `admin = true` names `id`.
    pub(crate) fn is_admin_entry(&self, id: &SpiffeId) -> bool {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_admin(id)
    }

    /// Forgets an agent that was evicted.
    pub(crate) fn forget_agent(&self, id: &SpiffeId) {
        let mut agents = self
            .agents
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let removed = agents.remove(id).is_some();
        self.metrics.agents.set(gauge_value(agents.len()));
        drop(agents);
        if removed {
            self.changes.agent_changed();
        }
    }

    /// Moves the change-feed position forward (never back).
    pub(crate) fn advance_feed(&self, position: u64) {
        self.feed_position.fetch_max(position, Ordering::SeqCst);
    }

    /// Replaces both caches with snapshots and sets the feed position they were read at (the
    /// older of the two); the feed replays whatever happened since.
    pub(crate) fn replace_caches(
        &self,
        entries: Vec<Entry>,
        agents: Vec<AttestedAgent>,
        position: u64,
    ) {
        let index = EntryIndex::new(entries);
        let agents: HashMap<_, _> = agents.into_iter().map(|a| (a.id.clone(), a)).collect();
        self.metrics.entries.set(gauge_value(index.len()));
        self.metrics.agents.set(gauge_value(agents.len()));
        *self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = index;
        *self
            .agents
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = agents;
        self.feed_position.store(position, Ordering::SeqCst);
        // Whatever the snapshots differ in, every watch stream re-checks its agent.
        self.changes.entries_changed();
        self.changes.agent_changed();
    }

    /// Records committed entry writes in the index (created or updated entries, deleted IDs).
    pub(crate) fn index_entries(&self, created: Vec<Entry>, deleted: &[String]) {
        let mut index = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut changed = false;
        for id in deleted {
            changed |= index.remove(id);
        }
        for e in created {
            changed |= index.insert(e);
        }
        self.metrics.entries.set(gauge_value(index.len()));
        drop(index);
        // The change feed replays this server's own writes too; those change nothing here.
        if changed {
            self.changes.entries_changed();
        }
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
        let changed = agents.get(&agent.id) != Some(&agent);
        agents.insert(agent.id.clone(), agent);
        self.metrics.agents.set(gauge_value(agents.len()));
        drop(agents);
        if changed {
            self.changes.agent_changed();
        }
    }

    /// The entries `agent` may hold SVIDs for.
    pub(crate) fn authorized_entries(&self, agent: &AttestedAgent) -> Vec<Arc<Entry>> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .authorized(agent, &self.server_id)
    }

    /// [`Self::authorized_entries`] by entry ID, kept between calls while nothing changes.
    pub(crate) fn authorized_by_id(&self, agent: &AttestedAgent) -> crate::authorized_cache::ById {
        // Read before the walk: see `AuthorizedCache::get`.
        let revision = self.changes.entries_revision();
        self.authorized
            .get(agent, revision, || self.authorized_entries(agent))
    }

    /// A digest of the entries `agent` may hold SVIDs for (see `EntryIndex::authorized_digest`).
    pub(crate) fn authorized_digest(&self, agent: &AttestedAgent) -> u64 {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .authorized_digest(agent, &self.server_id)
    }

    /// Current time as Unix seconds.
    pub(crate) fn now_unix(&self) -> i64 {
        unix_seconds(self.clock.now())
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

/// The ID under which this server keeps its CA journal in a datastore that other servers may
/// share: a random UUID written to `<data_dir>/server_id` on first start, so it follows the
/// data directory (and its CA keys) rather than a host name or an address.
fn server_instance_id(data_dir: &Path) -> Result<String, ServerError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("server_id");
    let io = |source| ServerError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            uuid::Uuid::parse_str(id).map_err(|_| {
                ServerError::Config(format!(
                    "{} holds {:?}, not a server ID (a UUID written by lanyard on first start): \
                     restore the file, or delete it if this server never shared its datastore",
                    path.display(),
                    id.chars().take(64).collect::<String>()
                ))
            })?;
            Ok(id.to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = uuid::Uuid::new_v4().to_string();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io)?;
            file.write_all(format!("{id}\n").as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(id)
        }
        Err(e) => Err(io(e)),
    }
}

/// A datastore without a CA journal next to existing CA keys means the database was lost or
/// replaced. Creating a new CA would overwrite the old keys for good and break every agent,
/// so the server refuses instead.
async fn refuse_orphaned_keys(
    journal: &ServerJournal,
    keys_dir: &Path,
    db_name: &str,
) -> Result<(), ServerError> {
    let journal = journal
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
            db_name,
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
