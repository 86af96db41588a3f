//! What server and agent files have alike: the log flags, the keys both `server {}` and
//! `agent {}` have, and the top-level blocks beside them.

use std::path::{Path, PathBuf};

use lanyard_spiffe::TrustDomain;

use super::hcl::Entry;
use super::server::{parse_trust_domain, rule, trust_domain};
use super::{ConfigError, Key, Scope, ops, walk};
use crate::logging::{LogFormat, LogLevel, LogSettings};

/// The log flags of `server run` and `agent run`; also what a file's log keys say.
#[derive(clap::Args, Debug, Default, Clone)]
pub(crate) struct LogFlags {
    /// Log level: debug, info, warn or error, any case [default: info].
    #[arg(long, value_parser = clap::value_parser!(LogLevel))]
    pub(crate) log_level: Option<LogLevel>,
    /// Log format: text or json [default: text].
    #[arg(long, value_parser = clap::value_parser!(LogFormat))]
    pub(crate) log_format: Option<LogFormat>,
    /// Append logs to this file (created 0600) instead of writing them to stderr.
    #[arg(long)]
    pub(crate) log_file: Option<PathBuf>,
}

impl LogFlags {
    /// Each setting from the flags first, then the file's, then the default.
    pub(crate) fn over(&self, file: LogFlags) -> LogSettings {
        LogSettings {
            level: self.log_level.or(file.log_level).unwrap_or_default(),
            format: self.log_format.or(file.log_format).unwrap_or_default(),
            file: self.log_file.clone().or(file.log_file),
        }
    }
}

/// The keys both `server {}` and `agent {}` have, and the `telemetry {}` and
/// `health_checks {}` blocks, as written in the file.
#[derive(Debug, Default)]
pub(crate) struct CommonFile {
    pub(crate) trust_domain: Option<TrustDomain>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) socket_path: Option<PathBuf>,
    pub(crate) log: LogFlags,
    pub(crate) health_checks: Option<lanyard_telemetry::HealthChecks>,
    pub(crate) telemetry: Option<lanyard_telemetry::Telemetry>,
}

impl CommonFile {
    /// Takes `e` when it is a key both blocks have; `false` when it is another.
    ///
    /// # Errors
    ///
    /// A value the key does not take.
    pub(crate) fn read_key(&mut self, e: &Entry) -> Result<bool, ConfigError> {
        match e.key.as_str() {
            "trust_domain" => self.trust_domain = Some(trust_domain(e)?),
            "data_dir" => self.data_dir = Some(e.path()?),
            "socket_path" => self.socket_path = Some(e.path()?),
            "log_level" => self.log.log_level = Some(e.str()?.parse().map_err(|r| rule(e, r))?),
            "log_format" => self.log.log_format = Some(e.str()?.parse().map_err(|r| rule(e, r))?),
            "log_file" => self.log.log_file = Some(e.path()?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The trust domain from `flag`, then the file, then `example.org`.
    ///
    /// # Errors
    ///
    /// None in practice: the default is a valid name.
    pub(crate) fn trust_domain(
        &mut self,
        flag: Option<&TrustDomain>,
    ) -> Result<TrustDomain, ConfigError> {
        match flag.cloned().or(self.trust_domain.take()) {
            Some(td) => Ok(td),
            None => parse_trust_domain("example.org").map_err(ConfigError::Conflict),
        }
    }
}

/// A server or agent file: its own block and plugins beside what both kinds have.
pub(crate) trait DaemonFile: Default {
    /// `server` or `agent`: the name of the file's own block.
    const KIND: &'static str;

    /// Reads the `server {}` or `agent {}` block.
    ///
    /// # Errors
    ///
    /// The first refused entry.
    fn read_block(&mut self, entries: &[Entry]) -> Result<(), ConfigError>;

    /// Reads the `plugins {}` block.
    ///
    /// # Errors
    ///
    /// The first refused plugin or setting.
    fn read_plugins(&mut self, entry: &Entry) -> Result<(), ConfigError>;

    /// The keys and blocks both kinds of files have.
    fn common(&mut self) -> &mut CommonFile;
}

/// Reads the config file at `path`, when one is given, into its blocks.
///
/// # Errors
///
/// As [`super::read_file`] and [`read_blocks`].
pub(crate) fn load<F: DaemonFile>(path: Option<&Path>, expand_env: bool) -> Result<F, ConfigError> {
    match path {
        Some(path) => read_blocks(&super::read_file(path, expand_env)?),
        None => Ok(F::default()),
    }
}

/// Reads a file's top-level blocks.
///
/// # Errors
///
/// The first refused entry.
pub(crate) fn read_blocks<F: DaemonFile>(entries: &[Entry]) -> Result<F, ConfigError> {
    let mut file = F::default();
    let block = format!("the {} config file", F::KIND);
    let top = Scope {
        block: &block,
        kind: F::KIND,
        prefix: "",
        keys: &[
            (F::KIND, Key::Mapped),
            ("plugins", Key::Mapped),
            ("telemetry", Key::Mapped),
            ("health_checks", Key::Mapped),
        ],
    };
    walk(entries, &top, |entry| {
        match entry.key.as_str() {
            "plugins" => file.read_plugins(entry)?,
            "telemetry" => file.common().telemetry = Some(ops::telemetry(entry)?),
            "health_checks" => file.common().health_checks = Some(ops::health_checks(entry)?),
            _ => file.read_block(entry.object()?)?,
        }
        Ok(())
    })?;
    Ok(file)
}
