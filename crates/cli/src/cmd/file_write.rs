//! Replaces a file atomically without trusting the directory it lives in: every file the CLI
//! writes for a workload (the helper's certificates, keys, bundles and tokens, `agent api fetch
//! x509 --write`) goes through [`replace`].
//!
//! Another local user who can write to the directory must not be able to redirect a private
//! key into a file of their choosing. So the bytes go to a fresh temporary file whose name
//! cannot be guessed, created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`: a planted symlink or
//! file at that name is refused, never followed or reused) and closed to everyone else from
//! its first instant; the rename that follows replaces whatever sits at the final name,
//! including a symlink, instead of writing through it.

use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How many fresh names are tried before giving up on a directory where each one exists.
const NAME_ATTEMPTS: u32 = 8;

/// Why a file could not be replaced.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// The directory could not be created.
    #[error("cannot create the directory {path}: {source}", path = path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The temporary file could not be created, written or synced.
    #[error("cannot write a temporary file next to {path}: {source}", path = path.display())]
    Temporary {
        /// The final file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The temporary file could not be renamed over the final name (it is removed).
    #[error("cannot replace {path}: {source}", path = path.display())]
    Rename {
        /// The final file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// Replaces `path` atomically with `contents` and exactly `mode` (the umask does not apply).
///
/// A reader sees the old file or the new one, never half of either; the file is never more
/// open than `mode` (nor than 0600 while it is written); a symlink at `path` is replaced, not
/// followed; on failure no temporary file is left behind, so a key never lingers under a
/// stray name.
///
/// # Errors
///
/// See [`WriteError`].
pub(crate) fn replace(path: &Path, contents: &[u8], mode: u32) -> Result<(), WriteError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|source| WriteError::Directory {
        path: dir.to_path_buf(),
        source,
    })?;
    let temporary = |source| WriteError::Temporary {
        path: path.to_path_buf(),
        source,
    };

    let (tmp, mut file) = create_exclusive(dir, path).map_err(temporary)?;
    let written = (|| {
        use std::os::unix::fs::PermissionsExt;
        // Set on the open descriptor, so it is exact whatever the umask, and cannot reach
        // anything but the file created above.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    drop(file);
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(temporary(source));
    }

    if let Err(source) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(WriteError::Rename {
            path: path.to_path_buf(),
            source,
        });
    }
    // Makes the rename itself durable; the file is in place either way, so a directory that
    // cannot be synced (some filesystems refuse) is not an error.
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates `.<final name>.<random>.tmp` in `dir`, exclusively and with mode 0600, trying
/// fresh names while one already exists.
fn create_exclusive(dir: &Path, path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;

    let mut last = None;
    for _ in 0..NAME_ATTEMPTS {
        let tmp = dir.join(temporary_name(path));
        let opened = std::fs::OpenOptions::new()
            .write(true)
            // O_CREAT|O_EXCL: fails on any existing entry, a dangling symlink included.
            .create_new(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&tmp);
        match opened {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temporary name could be created")))
}

/// `.<final name>.<16 hex digits>.tmp`; the whole final name is kept so that the files of one
/// directory never share a temporary prefix, and the random part comes from the randomly
/// keyed std hasher (seeded from the operating system), mixed with the pid and the time.
fn temporary_name(path: &Path) -> std::ffi::OsString {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{:016x}.tmp", hasher.finish()));
    name
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn sets_the_exact_mode_whatever_the_umask_and_the_older_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.token");
        replace(&path, b"one", 0o644).unwrap();
        assert_eq!(mode_of(&path), 0o644);
        replace(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(mode_of(&path), 0o600);
        // Group write survives although the usual umask (022) would clear it.
        replace(&path, b"three", 0o664).unwrap();
        assert_eq!(mode_of(&path), 0o664);
        replace(&path, b"four", 0o400).unwrap();
        assert_eq!(mode_of(&path), 0o400);
        assert_eq!(
            entries(dir.path()),
            ["jwt.token"],
            "no temporary file is left"
        );
    }

    #[test]
    fn never_follows_symlinks_planted_at_temporary_names() {
        let dir = tempfile::tempdir().unwrap();
        let victim_dir = tempfile::tempdir().unwrap();
        let victim = victim_dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        // Every name an older writer used, and the shape of the current one.
        let planted = [
            ".svid_key.pem.tmp",
            "svid_key.tmp",
            "svid_key.pem.tmp",
            ".svid_key.pem.0000000000000000.tmp",
        ];
        for name in planted {
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        }

        let path = dir.path().join("svid_key.pem");
        replace(&path, b"PRIVATE KEY", 0o600).unwrap();

        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(mode_of(&victim), 0o644);
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        assert_eq!(std::fs::read(&path).unwrap(), b"PRIVATE KEY");
        for name in planted {
            let link = dir.path().join(name);
            assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        }
    }

    #[test]
    fn exclusive_creation_refuses_an_existing_symlink_even_a_dangling_one() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("absent");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&link)
                .unwrap_err()
        };
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert!(!target.exists(), "the symlink's target was not created");
    }

    #[test]
    fn replaces_a_symlink_at_the_final_name_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim_dir = tempfile::tempdir().unwrap();
        let victim = victim_dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.path().join("svid.pem");
        std::os::unix::fs::symlink(&victim, &path).unwrap();

        replace(&path, b"CERT", 0o644).unwrap();

        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        assert_eq!(std::fs::read(&path).unwrap(), b"CERT");
        assert_eq!(mode_of(&path), 0o644);
    }

    #[test]
    fn removes_the_temporary_file_when_the_final_name_cannot_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svid_key.pem");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"x").unwrap();

        let err = replace(&path, b"PRIVATE KEY", 0o600).unwrap_err();

        assert!(matches!(err, WriteError::Rename { .. }), "{err}");
        assert!(err.to_string().contains("svid_key.pem"), "{err}");
        assert_eq!(
            entries(dir.path()),
            ["svid_key.pem"],
            "no stray key is left"
        );
    }

    #[test]
    fn temporary_names_differ_between_calls() {
        let path = Path::new("/d/svid.pem");
        let a = temporary_name(path);
        let b = temporary_name(path);
        assert_ne!(a, b);
        assert!(a.to_string_lossy().starts_with(".svid.pem."));
    }
}
