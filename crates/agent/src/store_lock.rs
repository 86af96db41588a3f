//! The lock of the data directory (and of a key directory of its own), so that two agents
//! never share one.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::StoreError;

/// The lock file in the data directory, held while an agent runs.
pub(crate) const LOCK_FILE: &str = "agent.lock";

/// An exclusive lock on `<data dir>/agent.lock`, held for the agent's lifetime so that two
/// agents never rotate the same keys or overwrite each other's SVID files. The kernel releases
/// it when the process ends, so a crash leaves no stale lock.
pub(crate) struct DirLock {
    _flock: nix::fcntl::Flock<File>,
}

impl DirLock {
    /// Creates `dir` (mode 0700) if missing and takes its lock without waiting.
    ///
    /// # Errors
    ///
    /// [`StoreError::InUse`] when another process holds the lock; [`StoreError::Io`] when the
    /// directory or the lock file cannot be created.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, StoreError> {
        create_private_dir(dir)?;
        if let Ok(meta) = fs::metadata(dir) {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    data_dir = %dir.display(),
                    mode = format!("{mode:04o}"),
                    "The data directory holds the agent's keys but other users can access it: \
                     chmod 700 it"
                );
            }
        }
        Self::lock(
            dir,
            StoreError::InUse {
                dir: dir.to_path_buf(),
            },
        )
    }

    /// Locks a `KeyManager "disk"` directory apart from the data directory, so that two agents
    /// with their own data directories never rotate the same key files either. The key
    /// manager has created it.
    ///
    /// # Errors
    ///
    /// [`StoreError::KeysInUse`] when another process holds the lock; [`StoreError::Io`] when
    /// the lock file cannot be created.
    pub(crate) fn acquire_keys(dir: &Path) -> Result<Self, StoreError> {
        Self::lock(
            dir,
            StoreError::KeysInUse {
                dir: dir.to_path_buf(),
            },
        )
    }

    fn lock(dir: &Path, in_use: StoreError) -> Result<Self, StoreError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| StoreError::Io {
                op: "opening",
                path: path.clone(),
                source,
            })?;
        let flock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|_| in_use)?;
        Ok(Self { _flock: flock })
    }
}

/// Creates `dir` and its missing parents, mode 0700 (the agent's keys may live there).
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StoreError::Io {
            op: "creating",
            path: dir.to_path_buf(),
            source,
        })
}
