//! Why a configuration cannot be used: every message names the key or value, its line when it
//! comes from the file, and the rule it breaks.

use std::path::PathBuf;

/// A configuration file or flag that Lanyard refuses.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the config file {path}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system error.
        source: std::io::Error,
    },
    /// A file named by a setting cannot be read.
    #[error("cannot read the {what} {path}", path = path.display())]
    ReadFile {
        /// What the file is for, such as `join token file`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system error.
        source: std::io::Error,
    },
    /// The join token file holds nothing but white space.
    #[error(
        "join token file {path} is empty: write the token printed by `lanyard server token \
         generate` into it",
        path = path.display()
    )]
    EmptyJoinTokenFile {
        /// The file.
        path: PathBuf,
    },
    /// The config path names a directory, FIFO, device or socket.
    #[error("config file {path} is not a regular file: give the path of an HCL file", path = path.display())]
    NotRegularFile {
        /// The path.
        path: PathBuf,
    },
    /// The config file is larger than Lanyard reads.
    #[error("config file {path} is {size} bytes: at most {limit} bytes (1 MiB) are read", path = path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size, or what was read before giving up.
        size: u64,
        /// The bound.
        limit: u64,
    },
    /// The config file is not UTF-8.
    #[error("config file {path} is not UTF-8 text", path = path.display())]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// The config file is JSON, which SPIRE accepts and Lanyard does not read yet.
    #[error(
        "config file {path} looks like JSON: Lanyard reads HCL only for now; write it as HCL \
         (see conf/server.conf)",
        path = path.display()
    )]
    Json {
        /// The file.
        path: PathBuf,
    },
    /// The text is not HCL.
    #[error("HCL syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// `$VAR` under `--expand-env` names a variable that is not set.
    #[error(
        "environment variable {name} (line {line}) is not set: set it or remove the reference \
         (--expand-env refuses to expand unset variables to an empty string)"
    )]
    UnsetVariable {
        /// The variable.
        name: String,
        /// Where it is referenced.
        line: usize,
    },
    /// `${` without a closing brace, or `${}`, under `--expand-env`.
    #[error("malformed variable reference at line {line}: write $NAME or ${{NAME}}")]
    BadVariable {
        /// Where it is.
        line: usize,
    },
    /// A key neither SPIRE nor Lanyard knows.
    #[error("unknown key {key:?} at line {line} in {block}{hint}", hint = hint(suggestion))]
    UnknownKey {
        /// The key.
        key: String,
        /// Where it is.
        line: usize,
        /// The enclosing block, such as `server {}`.
        block: String,
        /// The closest known key, when one is close.
        suggestion: Option<&'static str>,
    },
    /// A SPIRE key that Lanyard does not implement yet.
    #[error("{key:?} (line {line}) is a SPIRE {kind} key that Lanyard does not implement yet")]
    NotImplemented {
        /// The key, with its block path when nested (`experimental.cache_reload_interval`).
        key: String,
        /// Where it is.
        line: usize,
        /// `server`, `agent`, `telemetry`, `health_checks` or a plugin name.
        kind: String,
    },
    /// A plugin SPIRE has and Lanyard does not implement yet.
    #[error(
        "{plugin_type} {name:?} (line {line}) is a SPIRE plugin that Lanyard does not implement \
         yet{instead}"
    )]
    PluginNotImplemented {
        /// `NodeAttestor`, `KeyManager`, ...
        plugin_type: String,
        /// The plugin name (block label).
        name: String,
        /// Where it is.
        line: usize,
        /// What to use instead, starting with `: `, or empty.
        instead: String,
    },
    /// A plugin name or type that SPIRE does not have either.
    #[error("unknown plugin {plugin_type} {name:?} at line {line}: {known}")]
    UnknownPlugin {
        /// The block identifier.
        plugin_type: String,
        /// The block label.
        name: String,
        /// Where it is.
        line: usize,
        /// What is accepted here.
        known: String,
    },
    /// A value Lanyard reads but cannot honour yet (such as a datastore path outside
    /// `data_dir`); never silently ignored.
    #[error("{what} (line {line}) is not supported yet: {rule}")]
    Unsupported {
        /// The key or plugin.
        what: String,
        /// Where it is.
        line: usize,
        /// What Lanyard does instead and how to write it.
        rule: String,
    },
    /// A built-in plugin with `enabled = false`.
    #[error("{plugin} (line {line}) cannot be disabled: it is built in")]
    BuiltInDisabled {
        /// Such as `NodeAttestor "join_token"`.
        plugin: String,
        /// Where it is.
        line: usize,
    },
    /// A duration that cannot be read.
    #[error("{key} {value} (line {line}) {problem}")]
    Duration {
        /// The key.
        key: String,
        /// The value as written, quoted and clipped.
        value: String,
        /// Where it is.
        line: usize,
        /// What is wrong.
        problem: crate::duration::DurationError,
    },
    /// A value of the wrong HCL type.
    #[error("{key:?} at line {line} must be {expected}, not {found}")]
    WrongType {
        /// The key.
        key: String,
        /// Where it is.
        line: usize,
        /// The expected type, such as `a string`.
        expected: &'static str,
        /// What was given, such as `a list`.
        found: &'static str,
    },
    /// A value of the right type that breaks a rule.
    #[error("{key} = {value} at line {line}: {rule}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value as written (strings quoted).
        value: String,
        /// Where it is.
        line: usize,
        /// The rule.
        rule: String,
    },
    /// The same block twice where SPIRE allows one.
    #[error("duplicate block {name} at line {line}: it was already given at line {first}")]
    DuplicateBlock {
        /// Such as `server {}` or `DataStore "sql"`.
        name: String,
        /// The second occurrence.
        line: usize,
        /// The first occurrence.
        first: usize,
    },
    /// The same key twice in one block.
    #[error("duplicate key {key:?} at line {line} in {block}: it was already set at line {first}")]
    DuplicateKey {
        /// The key.
        key: String,
        /// The enclosing block.
        block: String,
        /// The second occurrence.
        line: usize,
        /// The first occurrence.
        first: usize,
    },
    /// A plugin whose settings name something unusable (an unreadable or empty file, ...).
    #[error("{plugin} (line {line}): {reason}")]
    Plugin {
        /// The plugin block, such as `NodeAttestor "x509pop"`.
        plugin: String,
        /// Where it is.
        line: usize,
        /// What is wrong, naming the file or value and the rule.
        reason: String,
    },
    /// Settings that contradict each other or a required one that is missing, after the file
    /// and the flags are merged.
    #[error("{0}")]
    Conflict(String),
}

fn hint(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean {s:?}?)"),
        None => String::new(),
    }
}

/// The longest value shown in a message, in characters.
const MAX_SHOWN_CHARS: usize = 64;

/// `s` quoted for a message, cut to its first 64 characters and `…` when longer, so that a
/// huge value does not flood the terminal. (Here, not in `mod.rs`, so that the fuzz crate can
/// include the parser's files with this one.)
pub(crate) fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_SHOWN_CHARS) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}
