//! A [`KeyManager`] that keeps one PKCS#8 DER file per key id in a private directory.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rcgen::KeyPair;

use crate::key::{
    KeyError, KeyManager, KeyType, generate_key_pair, key_pair_from_pkcs8, validate_key_id,
};

/// File name suffix of a stored key: `<dir>/<id>.key.der`.
const KEY_SUFFIX: &str = ".key.der";

/// Keys on local disk: `<dir>/<id>.key.der`, each a PKCS#8 DER private key, mode 0600.
///
/// The directory is created with mode 0700 when missing; an existing directory that group or
/// others may write to is refused, and so is a key file that group or others may read. Writes are
/// atomic (temporary file, fsync, rename, fsync of the directory), so a crash leaves either the
/// old key or the new one, never a torn file. Opening the same directory again after a restart
/// returns the same keys.
///
/// Keys are not encrypted at rest: the protection is the file mode, as with SPIRE's disk key
/// manager.
pub struct DiskKeyManager {
    dir: PathBuf,
    cache: Mutex<HashMap<String, Arc<KeyPair>>>,
}

impl DiskKeyManager {
    /// Opens (creating if needed) the key directory `dir`.
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`] if the directory cannot be created or inspected,
    /// [`KeyError::InsecurePermissions`] if it is writable by group or others.
    pub fn open(dir: &Path) -> Result<Self, KeyError> {
        let io = |op, source| KeyError::Io {
            op,
            path: dir.to_path_buf(),
            source,
        };

        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // Parent missing: create the chain, then make the leaf directory private.
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| io("creating key directory", e))?;
            }
            Err(e) => return Err(io("creating key directory", e)),
        }

        let meta = fs::metadata(dir).map_err(|e| io("inspecting key directory", e))?;
        if !meta.is_dir() {
            return Err(io(
                "opening key directory",
                std::io::Error::new(ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(KeyError::InsecurePermissions {
                path: dir.to_path_buf(),
                mode,
            });
        }

        Ok(Self {
            dir: dir.to_path_buf(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The directory keys are stored in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds (or would hold) the key `id`. The id must already be validated.
    fn key_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{KEY_SUFFIX}"))
    }

    fn read_key(&self, id: &str) -> Result<Option<KeyPair>, KeyError> {
        let path = self.key_path(id);
        let io = |op, source| KeyError::Io {
            op,
            path: path.clone(),
            source,
        };

        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("opening key file", e)),
        };
        let mode = file
            .metadata()
            .map_err(|e| io("inspecting key file", e))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::InsecurePermissions { path, mode });
        }

        let mut der = Vec::new();
        file.read_to_end(&mut der)
            .map_err(|e| io("reading key file", e))?;
        key_pair_from_pkcs8(id, &der).map(Some)
    }

    fn write_key(&self, id: &str, pkcs8_der: &[u8]) -> Result<(), KeyError> {
        let path = self.key_path(id);
        let tmp = self.dir.join(format!(".{id}.tmp-{}", random_suffix()));
        let io = |op, p: &Path, source| KeyError::Io {
            op,
            path: p.to_path_buf(),
            source,
        };

        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| io("creating temporary key file", &tmp, e))?;
            file.write_all(pkcs8_der)
                .map_err(|e| io("writing temporary key file", &tmp, e))?;
            file.sync_all()
                .map_err(|e| io("syncing temporary key file", &tmp, e))?;
            fs::rename(&tmp, &path).map_err(|e| io("renaming key file into place", &path, e))
        })();
        if result.is_err() {
            // Best effort: do not leave a half-written secret behind.
            let _ = fs::remove_file(&tmp);
        }
        result?;

        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("syncing key directory", &self.dir, e))
    }
}

impl fmt::Debug for DiskKeyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskKeyManager")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl KeyManager for DiskKeyManager {
    fn generate_key(&self, id: &str, kt: KeyType) -> Result<Arc<KeyPair>, KeyError> {
        validate_key_id(id)?;
        let key = Arc::new(generate_key_pair(kt)?);

        // Hold the cache lock across the write so the cache and the file agree on the winner
        // when two callers generate the same id at once.
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        self.write_key(id, &key.serialize_der())?;
        cache.insert(id.to_owned(), Arc::clone(&key));
        tracing::debug!(key.id = id, key.type = %kt, dir = %self.dir.display(), "Generated key");
        Ok(key)
    }

    fn get_key(&self, id: &str) -> Result<Option<Arc<KeyPair>>, KeyError> {
        validate_key_id(id)?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = cache.get(id) {
            return Ok(Some(Arc::clone(key)));
        }

        let Some(key) = self.read_key(id)? else {
            return Ok(None);
        };
        let key = Arc::new(key);
        cache.insert(id.to_owned(), Arc::clone(&key));
        Ok(Some(key))
    }
}

/// 16 random hex characters for temporary file names (uniqueness, not secrecy).
fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // Uniqueness still holds within this process thanks to `create_new`; a clash only
        // surfaces as an error, never as a torn key.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = (nanos as u64).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::PublicKeyData;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_private_directory_and_0600_key_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        let km = DiskKeyManager::open(&dir).unwrap();
        assert_eq!(mode_of(&dir), 0o700);

        km.generate_key("x509-CA-A", KeyType::EcP256).unwrap();
        let file = dir.join("x509-CA-A.key.der");
        assert_eq!(mode_of(&file), 0o600);

        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            vec!["x509-CA-A.key.der".to_owned()],
            "no temp files left"
        );
    }

    #[test]
    fn reopening_the_directory_returns_the_same_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        let mut generated = Vec::new();
        {
            let km = DiskKeyManager::open(&dir).unwrap();
            for (id, kt) in [
                ("a", KeyType::EcP256),
                ("b", KeyType::EcP384),
                ("c", KeyType::Rsa2048),
            ] {
                generated.push((id, km.generate_key(id, kt).unwrap()));
            }
        }

        let km = DiskKeyManager::open(&dir).unwrap();
        for (id, key) in generated {
            let loaded = km.get_key(id).unwrap().unwrap();
            assert_eq!(loaded.der_bytes(), key.der_bytes(), "{id}");
            assert_eq!(loaded.serialize_der(), key.serialize_der(), "{id}");
        }
        assert!(km.get_key("missing").unwrap().is_none());
    }

    #[test]
    fn generate_replaces_the_stored_key() {
        let tmp = tempfile::tempdir().unwrap();
        let km = DiskKeyManager::open(tmp.path()).unwrap();
        let first = km.generate_key("k", KeyType::EcP256).unwrap();
        let second = km.generate_key("k", KeyType::EcP256).unwrap();
        assert_ne!(first.der_bytes(), second.der_bytes());

        let reopened = DiskKeyManager::open(tmp.path()).unwrap();
        let loaded = reopened.get_key("k").unwrap().unwrap();
        assert_eq!(loaded.der_bytes(), second.der_bytes());
    }

    #[test]
    fn rejects_key_id_path_traversal() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        let km = DiskKeyManager::open(&dir).unwrap();
        for bad in ["../escape", "..", "sub/key", "/etc/passwd"] {
            assert!(matches!(
                km.generate_key(bad, KeyType::EcP256),
                Err(KeyError::InvalidKeyId(_))
            ));
            assert!(matches!(km.get_key(bad), Err(KeyError::InvalidKeyId(_))));
        }
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "only keys/ exists"
        );
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[test]
    fn refuses_a_directory_writable_by_others() {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let err = DiskKeyManager::open(tmp.path()).unwrap_err();
        assert!(
            matches!(err, KeyError::InsecurePermissions { mode: 0o777, .. }),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_key_file_readable_by_others() {
        let tmp = tempfile::tempdir().unwrap();
        let km = DiskKeyManager::open(tmp.path()).unwrap();
        km.generate_key("k", KeyType::EcP256).unwrap();
        let file = tmp.path().join("k.key.der");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();

        let fresh = DiskKeyManager::open(tmp.path()).unwrap();
        let err = fresh.get_key("k").unwrap_err();
        assert!(matches!(err, KeyError::InsecurePermissions { .. }), "{err}");
    }

    #[test]
    fn reports_a_corrupt_key_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("k.key.der");
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .unwrap()
            .write_all(b"garbage")
            .unwrap();
        let km = DiskKeyManager::open(tmp.path()).unwrap();
        assert!(matches!(km.get_key("k"), Err(KeyError::Corrupt { .. })));
    }
}
