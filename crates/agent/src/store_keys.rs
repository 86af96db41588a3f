//! The agent's key slots, kept as SPIRE's agent `KeyManager` setting asks: in key files on disk
//! (`"disk"`, in `data_dir` or a `directory` of their own) or in process memory (`"memory"`).
//!
//! In memory nothing key-related touches the disk, as with SPIRE, whose memory key manager
//! writes no file at all. The SVID and bundle files stay in the data directory either way
//! (SPIRE keeps its `agent-data.json` there too), so a restarted agent still has the bundle to
//! authenticate the server with when it attests again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lanyard_ca::{DiskKeyManager, KeyError, KeyManager, KeyType, MemoryKeyManager};
use rcgen::KeyPair;

use crate::config::AgentKeyManager;

/// Key manager ids of the two key slots; attestation uses the first.
pub(crate) const KEY_SLOTS: [&str; 2] = ["agent-svid", "agent-svid-next"];

/// The agent's key manager and where it keeps the keys.
pub(crate) struct AgentKeys {
    manager: Box<dyn KeyManager>,
    /// The key directory; `None` when the keys are in memory.
    dir: Option<PathBuf>,
}

impl AgentKeys {
    /// Opens the key manager `setting` asks for; a key directory is created (mode 0700) if
    /// missing.
    ///
    /// # Errors
    ///
    /// [`KeyError`] when the key directory cannot be created or is writable by others.
    pub(crate) fn open(setting: &AgentKeyManager, data_dir: &Path) -> Result<Self, KeyError> {
        Ok(match setting {
            AgentKeyManager::Disk { directory } => {
                let dir = directory.as_deref().unwrap_or(data_dir);
                Self {
                    manager: Box::new(DiskKeyManager::open(dir)?),
                    dir: Some(dir.to_path_buf()),
                }
            }
            AgentKeyManager::Memory => Self {
                manager: Box::new(MemoryKeyManager::new()),
                dir: None,
            },
        })
    }

    /// The key directory; `None` when the keys are in memory.
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Generates a fresh key in `slot`, replacing the one kept there.
    pub(crate) fn generate(&self, slot: usize) -> Result<Arc<KeyPair>, KeyError> {
        self.manager
            .generate_key(KEY_SLOTS[slot.min(1)], KeyType::EcP256)
    }

    /// The key kept in `slot`, if any.
    pub(crate) fn get(&self, slot: usize) -> Result<Option<Arc<KeyPair>>, KeyError> {
        self.manager.get_key(KEY_SLOTS[slot.min(1)])
    }

    /// Why no kept key belongs to the SVID stored in `data_dir`: the text the agent shows when
    /// it cannot attest again.
    pub(crate) fn no_match(&self, data_dir: &Path) -> String {
        match &self.dir {
            Some(dir) if dir == data_dir => format!(
                "no agent key in {} matches the stored agent SVID",
                dir.display()
            ),
            Some(dir) => format!(
                "no agent key in {} (KeyManager \"disk\" directory) matches the stored agent \
                 SVID in {}",
                dir.display(),
                data_dir.display()
            ),
            None => format!(
                "the agent's key was kept in memory only (KeyManager \"memory\"), so it is gone \
                 since the agent restarted and the agent SVID stored in {} cannot be used: the \
                 agent must attest again, with a new join token",
                data_dir.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::store::{StateStore, Stored};
    use crate::test_support::TestCa;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_memory_key_writes_no_file_and_a_restart_finds_no_usable_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("agent");
        let ca = TestCa::new();
        let store = StateStore::open_with(&dir, &AgentKeyManager::Memory).unwrap();
        let key = store.generate_key(0).unwrap();
        store.save_bundle(&ca.bundle()).unwrap();
        store
            .save_svid(&ca.sign(&key, "/agent", Duration::from_secs(3600)))
            .unwrap();
        assert!(
            matches!(store.load(&ca.td, SystemTime::now()), Stored::Usable { .. }),
            "the running agent holds its key"
        );
        assert_eq!(names(&dir), ["agent_svid.der", "bundle.der"], "no key file");

        let restarted = StateStore::open_with(&dir, &AgentKeyManager::Memory).unwrap();
        let Stored::Unusable(reason) = restarted.load(&ca.td, SystemTime::now()) else {
            panic!("a restarted memory-key agent must not reuse its SVID");
        };
        assert!(reason.contains("KeyManager \"memory\""), "{reason}");
        assert!(
            reason.contains("attest again, with a new join token"),
            "{reason}"
        );
        assert!(reason.contains(&dir.display().to_string()), "{reason}");
    }

    #[test]
    fn memory_keys_ignore_key_files_a_disk_run_left_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let disk = StateStore::open(tmp.path()).unwrap();
        let key = disk.generate_key(0).unwrap();
        disk.save_bundle(&ca.bundle()).unwrap();
        disk.save_svid(&ca.sign(&key, "/agent", Duration::from_secs(3600)))
            .unwrap();

        let memory = StateStore::open_with(tmp.path(), &AgentKeyManager::Memory).unwrap();
        assert!(matches!(
            memory.load(&ca.td, SystemTime::now()),
            Stored::Unusable(_)
        ));
    }

    #[test]
    fn a_key_directory_of_its_own_holds_the_keys_survives_a_restart_and_is_not_shared() {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let key_dir = tmp.path().join("keys");
        let setting = AgentKeyManager::Disk {
            directory: Some(key_dir.clone()),
        };
        let ca = TestCa::new();
        let store = StateStore::open_with(&data_dir, &setting).unwrap();
        let key = store.generate_key(0).unwrap();
        store.save_bundle(&ca.bundle()).unwrap();
        store
            .save_svid(&ca.sign(&key, "/agent", Duration::from_secs(3600)))
            .unwrap();

        assert_eq!(names(&key_dir), ["agent-svid.key.der", "agent.lock"]);
        assert_eq!(names(&data_dir), ["agent_svid.der", "bundle.der"]);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&key_dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);

        let second = tmp.path().join("second");
        let Err(err) = StateStore::open_with(&second, &setting) else {
            panic!("two agents must not share a key directory");
        };
        assert!(
            err.to_string()
                .contains("is in use by another lanyard agent"),
            "{err}"
        );

        drop(store);
        let restarted = StateStore::open_with(&data_dir, &setting).unwrap();
        assert!(matches!(
            restarted.load(&ca.td, SystemTime::now()),
            Stored::Usable { .. }
        ));
        let in_data_dir = StateStore::open(&data_dir).unwrap();
        let Stored::Unusable(reason) = in_data_dir.load(&ca.td, SystemTime::now()) else {
            panic!("the key is not in data_dir");
        };
        assert_eq!(
            reason,
            format!(
                "no agent key in {} matches the stored agent SVID",
                data_dir.display()
            )
        );
    }
}
