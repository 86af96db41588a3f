//! Reading one process through its open `/proc/<pid>` directory handle.
//!
//! Every read goes through the handle the Workload API server opened when it accepted the
//! connection ([`ProcessDir`]), never through a path built from the PID: once the caller has
//! exited, the reads fail, even if its PID now belongs to somebody else.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use aws_lc_rs::digest;
use lanyard_workload::ProcessDir;
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, readlinkat};
use nix::sys::stat::Mode;

/// Failures of reading a process's `/proc` entries.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The process exited after it connected (its `/proc` entries are gone).
    #[error("the process has exited: /proc/<pid>/{entry} is gone")]
    Gone {
        /// The entry that could not be read.
        entry: &'static str,
    },
    /// The entry exists but could not be read (permissions, I/O).
    #[error("reading /proc/<pid>/{entry} failed")]
    Read {
        /// The entry.
        entry: &'static str,
        /// The system error.
        source: io::Error,
    },
    /// The `Groups:` line of `/proc/<pid>/status` is missing or not a list of numbers.
    #[error("/proc/<pid>/status has {found:?} as its Groups line: expected `Groups:` and gids")]
    MalformedGroups {
        /// What was found instead (`<missing>` when there is no such line).
        found: String,
    },
}

/// Hashing a workload binary.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The file is bigger than `workload_size_limit` allows.
    #[error("the binary has {size} bytes: workload_size_limit allows at most {limit}")]
    TooBig {
        /// The file's size (at least; it may still be growing).
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The file could not be read.
    #[error("reading the binary failed")]
    Read(#[source] io::Error),
}

/// The text of `/proc/<pid>/status`.
pub(crate) fn status(dir: &ProcessDir) -> Result<String, ProcError> {
    let mut file = open_entry(dir, "status")?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|source| read_error("status", source))?;
    Ok(text)
}

/// The supplementary group IDs on the `Groups:` line of a `/proc/<pid>/status` text.
pub(crate) fn supplementary_gids(status: &str) -> Result<Vec<u32>, ProcError> {
    let Some(line) = status.lines().find(|l| l.starts_with("Groups:")) else {
        return Err(ProcError::MalformedGroups {
            found: "<missing>".into(),
        });
    };
    let malformed = || ProcError::MalformedGroups {
        found: line.to_owned(),
    };
    line.strip_prefix("Groups:")
        .ok_or_else(malformed)?
        .split_whitespace()
        .map(|gid| gid.parse::<u32>().map_err(|_| malformed()))
        .collect()
}

/// Where `/proc/<pid>/exe` points, as the kernel reports it: an absolute path, with
/// ` (deleted)` appended when the binary has been removed or replaced since it was started.
pub(crate) fn exe_path(dir: &ProcessDir) -> Result<PathBuf, ProcError> {
    readlinkat(dir, "exe")
        .map(PathBuf::from)
        .map_err(|e| errno_error("exe", e))
}

/// The running binary, opened through `/proc/<pid>/exe`: this reaches the executed file even
/// when it has been deleted or replaced on disk.
pub(crate) fn open_exe(dir: &ProcessDir) -> Result<File, ProcError> {
    open_entry(dir, "exe")
}

/// The SHA-256 of `file`, refusing files bigger than `limit` bytes (`None`: no limit).
pub(crate) fn sha256(file: File, limit: Option<u64>) -> Result<digest::Digest, HashError> {
    let size = file.metadata().map_err(HashError::Read)?.len();
    if let Some(limit) = limit.filter(|&limit| size > limit) {
        return Err(HashError::TooBig { size, limit });
    }

    // The file may grow between the size check and the read: read at most one byte past the
    // limit, so a growing file is refused too.
    let mut reader: Box<dyn Read> = match limit {
        Some(limit) => Box::new(file.take(limit.saturating_add(1))),
        None => Box::new(file),
    };
    let mut context = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HashError::Read(e)),
        };
        total = total.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        if let Some(limit) = limit.filter(|&limit| total > limit) {
            return Err(HashError::TooBig { size: total, limit });
        }
        context.update(buf.get(..n).unwrap_or_default());
    }
    Ok(context.finish())
}

/// Lower-case hex of a digest.
pub(crate) fn hex(digest: &digest::Digest) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn open_entry(dir: &ProcessDir, entry: &'static str) -> Result<File, ProcError> {
    openat(
        dir,
        entry,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(File::from)
    .map_err(|e| errno_error(entry, e))
}

fn errno_error(entry: &'static str, errno: Errno) -> ProcError {
    read_error(entry, io::Error::from(errno))
}

/// `ESRCH` and `ENOENT` under an open `/proc/<pid>` handle mean the process is gone.
fn read_error(entry: &'static str, source: io::Error) -> ProcError {
    match source.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ESRCH | Errno::ENOENT) => ProcError::Gone { entry },
        _ => ProcError::Read { entry, source },
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn groups_lines_parse_into_gids() {
        let table: &[(&str, Option<&[u32]>)] = &[
            (
                "Name:\tx\nGroups:\t4 24 27 \nNgid:\t0\n",
                Some(&[4, 24, 27]),
            ),
            ("Groups:\t\n", Some(&[])),
            ("Groups:\n", Some(&[])),
            ("Groups:\t1000\n", Some(&[1000])),
            ("Groups:\t4294967295\n", Some(&[u32::MAX])),
            ("Name:\tx\n", None),
            ("Groups:\t4 abc\n", None),
            ("Groups:\t-1\n", None),
            ("Groups:\t4294967296\n", None),
        ];
        for (text, want) in table {
            let got = supplementary_gids(text).ok();
            assert_eq!(got.as_deref(), *want, "{text:?}");
        }
    }

    #[test]
    fn malformed_groups_error_names_the_line() {
        let err = supplementary_gids("Groups:\t4 abc\n").unwrap_err();
        assert!(err.to_string().contains("Groups:\\t4 abc"), "{err}");
    }

    fn temp_file(content: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(content).unwrap();
        file
    }

    #[test]
    fn sha256_of_a_file_matches_the_known_digest() {
        let file = temp_file(b"abc");
        let digest = sha256(file.reopen().unwrap(), None).unwrap();
        assert_eq!(
            hex(&digest),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let digest = sha256(file.reopen().unwrap(), Some(3)).unwrap();
        assert_eq!(hex(&digest).len(), 64);
    }

    #[test]
    fn sha256_refuses_files_over_the_size_limit() {
        let file = temp_file(b"abcd");
        let err = sha256(file.reopen().unwrap(), Some(3)).unwrap_err();
        assert!(
            matches!(err, HashError::TooBig { size: 4, limit: 3 }),
            "{err:?}"
        );
        assert!(err.to_string().contains("workload_size_limit"), "{err}");
    }

    #[test]
    fn reads_the_own_process_through_its_proc_dir() {
        let dir = ProcessDir::open(i32::try_from(std::process::id()).unwrap()).unwrap();
        let text = status(&dir).unwrap();
        assert!(text.contains("Groups:"), "{text}");
        supplementary_gids(&text).unwrap();
        let exe = exe_path(&dir).unwrap();
        assert_eq!(exe, std::env::current_exe().unwrap());
        let via_proc = sha256(open_exe(&dir).unwrap(), None).unwrap();
        let direct = sha256(File::open(&exe).unwrap(), None).unwrap();
        assert_eq!(via_proc.as_ref(), direct.as_ref());
    }

    #[test]
    fn reads_fail_once_the_process_has_exited() {
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let dir = ProcessDir::open(pid).unwrap();
        assert!(status(&dir).is_ok(), "readable while it runs");

        child.kill().unwrap();
        child.wait().unwrap();

        let err = status(&dir).unwrap_err();
        assert!(
            matches!(err, ProcError::Gone { entry: "status" }),
            "{err:?}"
        );
        assert!(err.to_string().contains("exited"), "{err}");
        assert!(matches!(exe_path(&dir), Err(ProcError::Gone { .. })));
        assert!(matches!(open_exe(&dir), Err(ProcError::Gone { .. })));
    }
}
