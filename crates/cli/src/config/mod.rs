//! SPIRE-style HCL config files for `server run|validate` and `agent run|validate`.
//!
//! A file has SPIRE's top-level blocks (`server {}` or `agent {}`, `plugins {}`, `telemetry {}`,
//! `health_checks {}`) and key names. Every key SPIRE has is recognised: the ones Lanyard
//! implements are mapped onto [`lanyard_server::ServerConfig`] or [`lanyard_agent::AgentConfig`],
//! the others are refused with a message saying Lanyard does not implement them yet, and keys
//! SPIRE does not have are refused as unknown. Nothing is silently ignored.
//!
//! Precedence: built-in defaults < the file < flags given on the command line. Flags are
//! `Option`s without clap defaults so that "not given" can be told from "given the default";
//! the defaults are applied after merging (and shown in each flag's help text).

pub(crate) mod agent;
mod common;
mod datastore;
mod error;
mod expand;
pub(crate) mod hcl;
mod hcl1;
mod hcl1_lex;
mod hcl_shape;
mod ops;
mod plugins;
pub(crate) mod server;
pub(crate) mod validate;
mod x509pop;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

pub(crate) use error::{ConfigError, clip};
use hcl::Entry;

/// How Lanyard treats a key SPIRE defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// Mapped onto Lanyard's configuration.
    Mapped,
    /// Refused: Lanyard does not implement it yet.
    Unimplemented,
    /// A boolean that Lanyard accepts only as `false`, which is SPIRE's default and what
    /// Lanyard does; `true` asks for something not implemented yet.
    FalseOnly,
}

/// One block's keys and how the walker names them in messages.
pub(crate) struct Scope<'k> {
    /// For unknown-key messages, such as `server {}`.
    pub(crate) block: &'k str,
    /// For not-implemented messages: `server`, `agent`, `telemetry`, ...
    pub(crate) kind: &'k str,
    /// Prepended to nested keys in messages, such as `experimental.`.
    pub(crate) prefix: &'k str,
    /// Every key SPIRE has in this block.
    pub(crate) keys: &'k [(&'static str, Key)],
}

/// Visits the entries of one block: refuses duplicates, unknown and unimplemented keys, and
/// hands each mapped one to `apply`.
///
/// # Errors
///
/// The first refused entry, or the first error of `apply`.
pub(crate) fn walk<'a>(
    entries: &'a [Entry],
    scope: &Scope<'_>,
    mut apply: impl FnMut(&'a Entry) -> Result<(), ConfigError>,
) -> Result<(), ConfigError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for entry in entries {
        if let Some(first) = seen.insert(&entry.key, entry.line) {
            return Err(ConfigError::DuplicateKey {
                key: entry.key.clone(),
                block: scope.block.to_owned(),
                line: entry.line,
                first,
            });
        }
    }
    for entry in entries {
        let unimplemented = || ConfigError::NotImplemented {
            key: format!("{}{}", scope.prefix, entry.key),
            line: entry.line,
            kind: scope.kind.to_owned(),
        };
        match scope.keys.iter().find(|(k, _)| *k == entry.key) {
            None => {
                return Err(ConfigError::UnknownKey {
                    key: entry.key.clone(),
                    line: entry.line,
                    block: scope.block.to_owned(),
                    suggestion: closest(&entry.key, scope.keys.iter().map(|(k, _)| *k)),
                });
            }
            Some((_, Key::Unimplemented)) => return Err(unimplemented()),
            Some((_, Key::FalseOnly)) => {
                if entry.bool()? {
                    return Err(unimplemented());
                }
            }
            Some((_, Key::Mapped)) => apply(entry)?,
        }
    }
    Ok(())
}

/// The largest config file read: SPIRE's samples are a few KiB, and a bound keeps
/// `--config /dev/zero` from eating memory.
pub(crate) const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Reads, expands (with `--expand-env`) and parses a config file into its top-level blocks,
/// merging repeated blocks as SPIRE does. Only a regular file of at most
/// [`MAX_FILE_BYTES`] is read: a FIFO would block and a device would never end.
///
/// # Errors
///
/// [`ConfigError::Read`], [`ConfigError::NotRegularFile`], [`ConfigError::TooLarge`],
/// [`ConfigError::Json`], expansion and syntax errors, [`ConfigError::DuplicateBlock`].
pub(crate) fn read_file(path: &Path, expand_env: bool) -> Result<Vec<Entry>, ConfigError> {
    use std::io::Read;

    let read_error = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    // stat, not open: opening a FIFO blocks until a writer comes.
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    if !metadata.is_file() {
        return Err(ConfigError::NotRegularFile {
            path: path.to_path_buf(),
        });
    }
    let too_large = |size| ConfigError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: MAX_FILE_BYTES,
    };
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large(metadata.len()));
    }
    // Bounded again while reading: the file may grow between the stat and the read.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    let text = String::from_utf8(bytes).map_err(|_| ConfigError::NotText {
        path: path.to_path_buf(),
    })?;
    if text.trim_start().starts_with('{') {
        return Err(ConfigError::Json {
            path: path.to_path_buf(),
        });
    }
    parse_text(&text, expand_env, |name| std::env::var(name).ok())
}

/// [`read_file`] on text, with the environment given by `lookup`.
///
/// # Errors
///
/// As [`read_file`].
pub(crate) fn parse_text(
    text: &str,
    expand_env: bool,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Entry>, ConfigError> {
    let entries = if expand_env {
        hcl::parse_spire(&expand::expand(text, lookup)?)?
    } else {
        hcl::parse_spire(text)?
    };
    // Repeated top-level blocks are merged here (as SPIRE does); what is left repeated is a
    // block given once as a block and once as a value.
    let entries = hcl_shape::normalize(entries);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for entry in &entries {
        if let Some(first) = seen.insert(&entry.key, entry.line) {
            return Err(ConfigError::DuplicateBlock {
                name: format!("{} {{}}", entry.key),
                line: entry.line,
                first,
            });
        }
    }
    Ok(entries)
}

/// The closest of `known` to `key`, when it is close enough to be a typo.
pub(crate) fn closest<'k>(key: &str, known: impl Iterator<Item = &'k str>) -> Option<&'k str> {
    known
        .map(|k| (edit_distance(key, k), k))
        .filter(|&(d, k)| d <= (k.len() / 3).max(2))
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// `path` made absolute against the working directory with `.` and `..` resolved by text, so
/// that two spellings of one path compare equal without touching the file system.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_keys_only() {
        let keys = ["trust_domain", "data_dir", "bind_port"];
        assert_eq!(
            closest("trust_domian", keys.into_iter()),
            Some("trust_domain")
        );
        assert_eq!(closest("datadir", keys.into_iter()), Some("data_dir"));
        assert_eq!(closest("colour", keys.into_iter()), None);
    }

    #[test]
    fn clips_long_values() {
        assert_eq!(clip("short"), "\"short\"");
        let long = "a".repeat(50_000);
        assert_eq!(clip(&long), format!("{:?}…", "a".repeat(64)));
    }

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let tmp = tempfile::tempdir().unwrap();
        let err = read_file(tmp.path(), false).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "config file {} is not a regular file: give the path of an HCL file",
                tmp.path().display()
            )
        );
    }

    #[test]
    fn refuses_files_over_one_mebibyte() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big.conf");
        std::fs::write(&path, vec![b'#'; 1024 * 1024 + 1]).unwrap();
        let err = read_file(&path, false).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "config file {} is 1048577 bytes: at most 1048576 bytes (1 MiB) are read",
                path.display()
            )
        );
    }

    #[test]
    fn says_a_json_file_is_not_read_yet() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("server.json");
        std::fs::write(&path, "\n  {\"server\": {}}\n").unwrap();
        let err = read_file(&path, false).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "config file {} looks like JSON: Lanyard reads HCL only for now; write it as \
                 HCL (see conf/server.conf)",
                path.display()
            )
        );
    }

    #[test]
    fn normalizes_spellings_of_one_path() {
        assert_eq!(
            normalize(Path::new("./data/../data/x.db")),
            normalize(Path::new("data/x.db"))
        );
    }

    #[test]
    fn merges_a_repeated_top_level_block_and_refuses_a_key_given_in_both() {
        let entries = parse_text(
            "server { a = 1 }\nplugins {}\n\nserver { b = 2 }\n",
            false,
            |_| None,
        )
        .unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].object().unwrap().len(), 2);
        let err = parse_text("server {}\nserver = 1\n", false, |_| None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "duplicate block server {} at line 2: it was already given at line 1"
        );
    }

    #[test]
    fn reports_syntax_errors_with_their_line() {
        let err = parse_text("server {\n  trust_domain = \n}\n", false, |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("HCL syntax error at line 2, column 17"),
            "{err}"
        );
    }
}
