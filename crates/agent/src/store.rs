//! The agent's state on disk, so that a restart needs no new join token.
//!
//! Files in the data directory:
//! - `agent_svid.der`: the agent's X509-SVID chain, concatenated DER, leaf first;
//! - `bundle.der`: the latest trust bundle of the agent's trust domain, concatenated DER;
//! - `agent-svid.key.der` / `agent-svid-next.key.der`: PKCS#8 keys written by
//!   [`DiskKeyManager`](lanyard_ca::DiskKeyManager) (mode 0600), unless `KeyManager "disk"`
//!   names another directory for them or `KeyManager "memory"` keeps them in the process (see
//!   `store_keys.rs`). Renewal writes the new key into the slot the current SVID does not use,
//!   so at every instant the stored chain matches one of the two keys.
//!
//! Every file is replaced atomically (temporary file, fsync, rename, fsync of the directory).

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use lanyard_ca::KeyError;
use lanyard_spiffe::x509::{concat_der, parse_der_chain, verify_chain};
use lanyard_spiffe::{TrustDomain, X509Bundle, X509Svid};
use rcgen::KeyPair;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use crate::config::AgentKeyManager;
use crate::report::ErrorChain;
use crate::timeutil::rfc3339;

#[path = "store_keys.rs"]
mod keys;
#[path = "store_lock.rs"]
mod lock;
use keys::{AgentKeys, KEY_SLOTS};
pub(crate) use lock::{DirLock, LOCK_FILE};

/// The agent SVID chain file.
pub(crate) const SVID_FILE: &str = "agent_svid.der";
/// The bundle file.
pub(crate) const BUNDLE_FILE: &str = "bundle.der";
/// The agent's own X509-SVID and which key slot holds its key.
pub(crate) struct AgentSvid {
    pub(crate) svid: X509Svid,
    pub(crate) slot: usize,
}

impl AgentSvid {
    /// The slot a renewal should write its new key to.
    pub(crate) fn other_slot(&self) -> usize {
        1 - self.slot.min(1)
    }
}

/// What a previous run left behind.
pub(crate) enum Stored {
    /// No agent SVID file.
    Absent,
    /// Files exist but cannot be reused; the text says why (for the error shown when no join
    /// token is given).
    Unusable(String),
    /// A chain, its key and a bundle that verifies it at the time of loading.
    Usable {
        /// The agent SVID.
        svid: AgentSvid,
        /// The stored bundle.
        bundle: X509Bundle,
    },
}

/// Reads and writes the data directory.
pub(crate) struct StateStore {
    dir: PathBuf,
    keys: AgentKeys,
    /// The lock of a key directory apart from `dir` (that of `dir` is the caller's).
    _keys_lock: Option<DirLock>,
}

/// Failures to read or write the data directory.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("{op} {path} failed", path = path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system error.
        source: std::io::Error,
    },
    /// The key manager failed (its message names the key and file).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Another agent holds the data directory's lock (local misconfiguration: two agents).
    #[error(
        "data directory {dir} is in use by another lanyard agent: give each agent its own \
         data_dir",
        dir = dir.display()
    )]
    InUse {
        /// The data directory.
        dir: PathBuf,
    },
    /// Another agent holds the lock of the `KeyManager "disk"` directory (local
    /// misconfiguration: two agents sharing one key directory would replace each other's keys).
    #[error(
        "KeyManager \"disk\" directory {dir} is in use by another lanyard agent: give each \
         agent its own directory",
        dir = dir.display()
    )]
    KeysInUse {
        /// The key directory.
        dir: PathBuf,
    },
}

impl StateStore {
    /// Opens (creating, mode 0700) the data directory, the keys kept there.
    #[cfg(test)]
    pub(crate) fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, &AgentKeyManager::default())
    }

    /// Opens (creating, mode 0700) the data directory, the keys kept as `keys` asks.
    pub(crate) fn open_with(dir: &Path, keys: &AgentKeyManager) -> Result<Self, StoreError> {
        // The key manager creates its directory, but memory keys or a key directory elsewhere
        // leave the data directory to us.
        lock::create_private_dir(dir)?;
        let keys = AgentKeys::open(keys, dir)?;
        let keys_lock = match keys.dir() {
            Some(key_dir) if !same_dir(key_dir, dir) => Some(DirLock::acquire_keys(key_dir)?),
            _ => None,
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            keys,
            _keys_lock: keys_lock,
        })
    }

    /// The data directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads the stored state and checks it against `td` and `now`.
    pub(crate) fn load(&self, td: &TrustDomain, now: SystemTime) -> Stored {
        let dir = self.dir.display();
        let chain = match read_optional(&self.dir.join(SVID_FILE)) {
            Ok(None) => return Stored::Absent,
            Ok(Some(bytes)) => bytes,
            Err(e) => return Stored::Unusable(ErrorChain(&e).to_string()),
        };
        let chain = match parse_der_chain(&chain) {
            Ok(c) => c,
            Err(e) => {
                return Stored::Unusable(format!("{SVID_FILE} in {dir}: {}", ErrorChain(&e)));
            }
        };
        let svid = match self.match_key(chain) {
            Ok(Some(svid)) => svid,
            Ok(None) => return Stored::Unusable(self.keys.no_match(&self.dir)),
            Err(e) => return Stored::Unusable(ErrorChain(&e).to_string()),
        };
        let id = svid.svid.spiffe_id();
        if !id.is_member_of(td) {
            return Stored::Unusable(format!(
                "the stored agent SVID in {dir} is {id}, not a member of trust domain {td}"
            ));
        }
        if svid.svid.not_after() <= now {
            return Stored::Unusable(format!(
                "the stored agent SVID in {dir} expired at {}",
                rfc3339(svid.svid.not_after())
            ));
        }
        let bundle = match read_optional(&self.dir.join(BUNDLE_FILE)) {
            Ok(Some(der)) => match X509Bundle::from_der(td.clone(), &der) {
                Ok(b) => b,
                Err(e) => {
                    return Stored::Unusable(format!("{BUNDLE_FILE} in {dir}: {}", ErrorChain(&e)));
                }
            },
            Ok(None) => return Stored::Unusable(format!("{BUNDLE_FILE} is missing in {dir}")),
            Err(e) => return Stored::Unusable(ErrorChain(&e).to_string()),
        };
        if let Err(e) = verify_chain(svid.svid.chain(), &bundle, now) {
            return Stored::Unusable(format!(
                "the stored agent SVID in {dir} does not verify against the stored bundle: {}",
                ErrorChain(&e)
            ));
        }
        Stored::Usable { svid, bundle }
    }

    /// Generates a fresh key in `slot`, replacing the one stored there.
    pub(crate) fn generate_key(&self, slot: usize) -> Result<Arc<KeyPair>, StoreError> {
        Ok(self.keys.generate(slot)?)
    }

    /// Replaces the stored agent SVID chain.
    pub(crate) fn save_svid(&self, chain: &[CertificateDer<'_>]) -> Result<(), StoreError> {
        write_atomic(&self.dir, SVID_FILE, &concat_der(chain))
    }

    /// Replaces the stored bundle.
    pub(crate) fn save_bundle(&self, bundle: &X509Bundle) -> Result<(), StoreError> {
        write_atomic(&self.dir, BUNDLE_FILE, &bundle.to_der())
    }

    /// The stored bundle, if any and readable (used to widen the bootstrap trust).
    pub(crate) fn load_bundle(&self, td: &TrustDomain) -> Option<X509Bundle> {
        let der = read_optional(&self.dir.join(BUNDLE_FILE)).ok()??;
        X509Bundle::from_der(td.clone(), &der).ok()
    }

    /// Finds the key slot whose key belongs to the chain's leaf.
    fn match_key(
        &self,
        chain: Vec<CertificateDer<'static>>,
    ) -> Result<Option<AgentSvid>, StoreError> {
        for slot in 0..KEY_SLOTS.len() {
            let Some(key) = self.keys.get(slot)? else {
                continue;
            };
            let pkcs8 = PrivatePkcs8KeyDer::from(key.serialize_der());
            if let Ok(svid) = X509Svid::from_parts(chain.clone(), pkcs8) {
                return Ok(Some(AgentSvid { svid, slot }));
            }
        }
        Ok(None)
    }
}

/// Whether two existing directories are one (spelled differently, or through a link).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Io {
            op: "reading",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `dir/name` so that a crash leaves either the old or the new content, mode 0600.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
    let io = |op, path: &Path, source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    };
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io("creating", &tmp, e))?;
        file.write_all(bytes).map_err(|e| io("writing", &tmp, e))?;
        file.sync_all().map_err(|e| io("syncing", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io("renaming into place", &path, e))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing directory", dir, e))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use super::*;
    use crate::test_support::TestCa;

    fn now() -> SystemTime {
        SystemTime::now()
    }

    #[test]
    fn agent_state_survives_a_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("agent");
        let ca = TestCa::new();
        let store = StateStore::open(&dir).unwrap();
        let key = store.generate_key(0).unwrap();
        let chain = ca.sign(&key, "/spire/agent/join_token/t", Duration::from_secs(3600));
        store.save_bundle(&ca.bundle()).unwrap();
        store.save_svid(&chain).unwrap();

        let reopened = StateStore::open(&dir).unwrap();
        let Stored::Usable { svid, bundle } = reopened.load(&ca.td, now()) else {
            panic!("state not usable");
        };
        assert_eq!(svid.slot, 0);
        assert_eq!(svid.svid.chain(), chain.as_slice());
        assert_eq!(svid.svid.spiffe_id().path(), "/spire/agent/join_token/t");
        assert_eq!(bundle, ca.bundle());
        for file in [SVID_FILE, BUNDLE_FILE, "agent-svid.key.der"] {
            let mode = fs::metadata(dir.join(file)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file}");
        }
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(names.is_empty(), "temporary files left: {names:?}");
    }

    #[test]
    fn renewed_svid_is_found_in_the_other_key_slot() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let store = StateStore::open(tmp.path()).unwrap();
        let first = store.generate_key(0).unwrap();
        store.save_bundle(&ca.bundle()).unwrap();
        store
            .save_svid(&ca.sign(&first, "/agent", Duration::from_secs(60)))
            .unwrap();
        let next = store.generate_key(1).unwrap();
        store
            .save_svid(&ca.sign(&next, "/agent", Duration::from_secs(60)))
            .unwrap();

        let Stored::Usable { svid, .. } = store.load(&ca.td, now()) else {
            panic!("state not usable");
        };
        assert_eq!(svid.slot, 1);
        assert_eq!(svid.other_slot(), 0);
    }

    #[test]
    fn missing_state_is_absent_and_expired_state_says_when_it_expired() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let store = StateStore::open(tmp.path()).unwrap();
        assert!(matches!(store.load(&ca.td, now()), Stored::Absent));

        let key = store.generate_key(0).unwrap();
        store.save_bundle(&ca.bundle()).unwrap();
        store
            .save_svid(&ca.sign(&key, "/agent", Duration::from_secs(60)))
            .unwrap();
        let Stored::Unusable(reason) = store.load(&ca.td, now() + Duration::from_secs(120)) else {
            panic!("expired state must not be usable");
        };
        assert!(reason.contains("expired at"), "{reason}");
    }

    #[test]
    fn state_of_another_trust_domain_is_unusable() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let store = StateStore::open(tmp.path()).unwrap();
        let key = store.generate_key(0).unwrap();
        store.save_bundle(&ca.bundle()).unwrap();
        store
            .save_svid(&ca.sign(&key, "/agent", Duration::from_secs(60)))
            .unwrap();
        let other = TrustDomain::new("other.org").unwrap();
        let Stored::Unusable(reason) = store.load(&other, now()) else {
            panic!("foreign state must not be usable");
        };
        assert!(
            reason.contains("not a member of trust domain other.org"),
            "{reason}"
        );
    }
}
