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
mod error;
mod expand;
mod hcl;
mod ops;
mod plugins;
pub(crate) mod server;
pub(crate) mod validate;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

pub(crate) use error::ConfigError;
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

/// Reads, expands (with `--expand-env`) and parses a config file into its top-level blocks,
/// refusing top-level attributes and repeated blocks.
///
/// # Errors
///
/// [`ConfigError::Read`], expansion and syntax errors, [`ConfigError::DuplicateBlock`].
pub(crate) fn read_file(path: &Path, expand_env: bool) -> Result<Vec<Entry>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
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
        hcl::parse(&expand::expand(text, lookup)?)?
    } else {
        hcl::parse(text)?
    };
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
    fn normalizes_spellings_of_one_path() {
        assert_eq!(
            normalize(Path::new("./data/../data/x.db")),
            normalize(Path::new("data/x.db"))
        );
    }

    #[test]
    fn refuses_a_repeated_top_level_block() {
        let err = parse_text("server {}\nplugins {}\n\nserver {}\n", false, |_| None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "duplicate block server {} at line 4: it was already given at line 1"
        );
    }

    #[test]
    fn reports_syntax_errors_with_their_line() {
        let err = parse_text("server {\n  trust_domain = \n}\n", false, |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("HCL syntax error at line 2, column 18"),
            "{err}"
        );
    }
}
