//! Reading a file whose path an operator configured (upstream CA files, a trust bundle, a join
//! token): only a regular file of bounded size is read, so that a FIFO, a device such as
//! `/dev/zero` or a huge file cannot hang or exhaust the daemon that reads it.

use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The usual cap for an operator file: certificates, keys, bundles and tokens are far smaller.
pub const MAX_OPERATOR_FILE_BYTES: u64 = 1024 * 1024;

/// `O_NONBLOCK` on Linux: opening a FIFO with it returns at once instead of waiting for a writer.
/// It changes nothing for a regular file.
const O_NONBLOCK: i32 = 0o4000;

/// Reads the whole of `path` when it is a regular file (after following symlinks) of at most
/// `max` bytes.
///
/// The file's type is checked before it is opened, so a FIFO is never opened, and again on the
/// opened file, so that a path swapped in between is caught too; the read stops after `max + 1`
/// bytes even if the file grows meanwhile.
///
/// # Errors
///
/// The operating system's error, or [`io::ErrorKind::InvalidInput`] naming the rule broken
/// (not a regular file, over `max` bytes). The caller names the path.
pub fn read_operator_file(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    check(&std::fs::metadata(path)?, max)?;

    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    check(&meta, max)?;

    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut buf)?;
    if u64::try_from(buf.len()).unwrap_or(u64::MAX) > max {
        return Err(too_big(max));
    }
    Ok(buf)
}

/// [`read_operator_file`] as UTF-8 text.
///
/// # Errors
///
/// As [`read_operator_file`], and [`io::ErrorKind::InvalidData`] when the content is not UTF-8.
pub fn read_operator_text(path: &Path, max: u64) -> io::Result<String> {
    String::from_utf8(read_operator_file(path, max)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn check(meta: &std::fs::Metadata, max: u64) -> io::Result<()> {
    let ft = meta.file_type();
    if !ft.is_file() {
        let kind = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {kind}: only a regular file is read"),
        ));
    }
    if meta.len() > max {
        return Err(too_big(max));
    }
    Ok(())
}

fn too_big(max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is larger than {max} bytes, the most read from such a file"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_small_regular_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, "abc").unwrap();
        assert_eq!(read_operator_file(&path, 10).unwrap(), b"abc");
    }

    #[test]
    fn refuses_a_fifo_without_opening_it() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let e = read_operator_file(&path, 10).unwrap_err();
        assert_eq!(e.to_string(), "it is a FIFO: only a regular file is read");
    }

    #[test]
    fn refuses_dev_zero() {
        let e = read_operator_file(Path::new("/dev/zero"), 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is a character device: only a regular file is read"
        );
    }

    #[test]
    fn refuses_a_file_over_the_cap() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big");
        std::fs::write(&path, [0u8; 11]).unwrap();
        let e = read_operator_file(&path, 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is larger than 10 bytes, the most read from such a file"
        );
    }
}
