//! `lanyard agent run|validate`: the flags, the `agent {}` block, and the merged
//! [`AgentConfig`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use lanyard_agent::{AgentConfig, AgentKeyManager, BundleFormat, RebootstrapMode, TrustBootstrap};
use lanyard_ca::KeyType;
use lanyard_server::KeyManagerKind;
use lanyard_spiffe::TrustDomain;

use super::common::{self, CommonFile, DaemonFile, LogFlags};
use super::hcl::{Entry, Value};
use super::plugins::{self, AgentPlugins};
use super::server::{parse_trust_domain, rule};
use super::{ConfigError, Key, Scope, normalize, walk};
use crate::logging::LogSettings;

/// Where the agent serves the Workload API unless configured, under Lanyard's own name (see
/// [`crate::spire_args::agent_socket`]).
pub(crate) const DEFAULT_SOCKET: &str = "/tmp/lanyard-agent/public/api.sock";
/// Where the agent keeps its key, SVID and bundle unless configured.
pub(crate) const DEFAULT_DATA_DIR: &str = ".lanyard/agent";
const DEFAULT_SERVER_HOST: &str = "127.0.0.1";
const DEFAULT_SERVER_PORT: u16 = 8081;

/// Every key of SPIRE's `agent {}` block.
const AGENT_KEYS: &[(&str, Key)] = &[
    ("trust_domain", Key::Mapped),
    ("data_dir", Key::Mapped),
    ("server_address", Key::Mapped),
    ("server_port", Key::Mapped),
    ("socket_path", Key::Mapped),
    ("trust_bundle_path", Key::Mapped),
    ("trust_bundle_format", Key::Mapped),
    ("insecure_bootstrap", Key::Mapped),
    ("join_token", Key::Mapped),
    ("join_token_file", Key::Mapped),
    ("log_level", Key::Mapped),
    ("log_format", Key::Mapped),
    ("log_file", Key::Mapped),
    ("workload_x509_svid_key_type", Key::Mapped),
    ("experimental", Key::Mapped),
    ("admin_socket_path", Key::Unimplemented),
    ("allow_unauthenticated_verifiers", Key::FalseOnly),
    ("allowed_foreign_jwt_claims", Key::Unimplemented),
    ("authorized_delegates", Key::Unimplemented),
    ("availability_target", Key::Unimplemented),
    ("disable_sds_api", Key::Unimplemented),
    ("disable_workload_api", Key::FalseOnly),
    ("jwt_svid_cache_max_size", Key::Unimplemented),
    ("log_selectors", Key::Unimplemented),
    ("log_source_location", Key::FalseOnly),
    ("profiling_enabled", Key::FalseOnly),
    ("profiling_freq", Key::Unimplemented),
    ("profiling_names", Key::Unimplemented),
    ("profiling_port", Key::Unimplemented),
    ("rebootstrap_delay", Key::Mapped),
    ("rebootstrap_mode", Key::Mapped),
    ("sds", Key::Unimplemented),
    ("trust_bundle_spiffe_workload_api", Key::Unimplemented),
    ("trust_bundle_unix_socket", Key::Unimplemented),
    ("trust_bundle_url", Key::Mapped),
    ("x509_svid_cache_max_size", Key::Mapped),
];

/// Keys of SPIRE's `agent { experimental {} }`.
const EXPERIMENTAL_KEYS: &[(&str, Key)] = &[
    ("sync_interval", Key::Mapped),
    ("jwt_svid_cache_hit_timeout", Key::Unimplemented),
    ("named_pipe_name", Key::Unimplemented),
    ("admin_named_pipe_name", Key::Unimplemented),
    ("use_sync_authorized_entries", Key::Unimplemented),
    ("require_pq_kem", Key::FalseOnly),
    ("ratelimit", Key::Unimplemented),
    ("broker", Key::Unimplemented),
    ("feature_flags", Key::Unimplemented),
];

/// Flags of `lanyard agent run` and `validate`. Each mirrors a SPIRE `agent {}` key and, when
/// given, overrides the config file.
#[derive(clap::Args, Debug, Default, Clone)]
pub(crate) struct AgentFlags {
    /// HCL config file with SPIRE's agent {}, plugins {}, telemetry {} and health_checks {}
    /// blocks; flags given on the command line override it.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Replace $NAME and ${NAME} in the config file with environment variables before parsing
    /// (an unset variable is an error, unlike SPIRE's -expandEnv).
    #[arg(long, requires = "config")]
    pub(crate) expand_env: bool,
    /// Trust domain of the server [default: example.org].
    #[arg(long, value_parser = parse_trust_domain)]
    pub(crate) trust_domain: Option<TrustDomain>,
    /// Directory for the agent's key, SVID and bundle [default: .lanyard/agent].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// The server's agent API: HOST:PORT, or HOST with --server-port [default: 127.0.0.1:8081].
    #[arg(long)]
    pub(crate) server_address: Option<String>,
    /// Port of the server's agent API (SPIRE's server_port) [default: 8081].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) server_port: Option<u16>,
    /// Join token for the first attestation; not needed once the agent has an SVID.
    #[arg(long, conflicts_with = "join_token_file")]
    pub(crate) join_token: Option<String>,
    /// File holding the join token.
    #[arg(long)]
    pub(crate) join_token_file: Option<PathBuf>,
    /// File with the server's CA certificates, used to authenticate the server when the agent
    /// attests (SPIRE's trust_bundle_path). One of this, --trust-bundle-url or
    /// --insecure-bootstrap is required.
    #[arg(
        long,
        visible_alias = "trust-bundle-path",
        conflicts_with_all = ["insecure_bootstrap", "trust_bundle_url"]
    )]
    pub(crate) trust_bundle: Option<PathBuf>,
    /// HTTPS URL to fetch the server's CA certificates from when the agent attests (SPIRE's
    /// trust_bundle_url); the web server is verified with the system's CA certificates
    /// (SSL_CERT_FILE replaces them). Plain http is refused.
    #[arg(long, conflicts_with = "insecure_bootstrap")]
    pub(crate) trust_bundle_url: Option<String>,
    /// Format of the trust bundle file or URL: pem, or spiffe for a SPIFFE bundle document
    /// [default: pem].
    #[arg(long, value_parser = ["pem", "spiffe"])]
    pub(crate) trust_bundle_format: Option<String>,
    /// Trust whatever server answers on the first connection (overrides the default of
    /// requiring a trust bundle). Only for experiments: it allows a man in the middle.
    #[arg(long)]
    pub(crate) insecure_bootstrap: bool,
    /// Unix socket of the Workload API [default: /tmp/lanyard-agent/public/api.sock; run as
    /// spire-agent, SPIRE's /tmp/spire-agent/public/api.sock].
    #[arg(long, visible_alias = "socket-path")]
    pub(crate) socket: Option<PathBuf>,
    /// How often the agent asks the server for entry and bundle changes (SPIRE's
    /// experimental.sync_interval) [default: 5s].
    #[arg(long, value_parser = crate::duration::parse)]
    pub(crate) sync_interval: Option<Duration>,
    /// Key type of workload X509-SVIDs: ec-p256, ec-p384 or rsa-2048, as in SPIRE
    /// [default: ec-p256].
    #[arg(long, value_parser = parse_workload_key_type)]
    pub(crate) workload_x509_svid_key_type: Option<KeyType>,
    /// How many workload X509-SVIDs the agent keeps signed ahead; past it, those least
    /// recently asked for are dropped (never one a workload holds open) and signed again on
    /// demand. 0 means the default [default: 1000].
    #[arg(long)]
    pub(crate) x509_svid_cache_max_size: Option<usize>,
    #[command(flatten)]
    pub(crate) log: LogFlags,
}

/// What `agent run` starts with.
#[derive(Debug)]
pub(crate) struct AgentSettings {
    /// The agent's configuration.
    pub(crate) config: AgentConfig,
    /// How the process logs.
    pub(crate) log: LogSettings,
}

/// The `agent {}` block and the plugins, as written in the file.
#[derive(Debug, Default)]
struct AgentFile {
    common: CommonFile,
    server_address: Option<(String, usize)>,
    server_port: Option<u16>,
    trust_bundle_path: Option<PathBuf>,
    trust_bundle_url: Option<(String, usize)>,
    trust_bundle_format: Option<BundleFormat>,
    insecure_bootstrap: Option<(bool, usize)>,
    join_token: Option<(String, usize)>,
    join_token_file: Option<(PathBuf, usize)>,
    sync_interval: Option<Duration>,
    workload_key_type: Option<KeyType>,
    x509_svid_cache_max_size: Option<usize>,
    rebootstrap_mode: Option<RebootstrapMode>,
    rebootstrap_delay: Option<Duration>,
    plugins: AgentPlugins,
}

impl AgentFlags {
    /// Reads the config file (if any) and merges it under the flags.
    ///
    /// # Errors
    ///
    /// The first problem in the file, settings that contradict each other, an unreadable
    /// join token file.
    pub(crate) fn load(&self) -> Result<AgentSettings, ConfigError> {
        self.merge(common::load(self.config.as_deref(), self.expand_env)?)
    }

    /// As [`load`](Self::load), with the file's text given and the environment in `lookup`.
    #[cfg(test)]
    pub(crate) fn load_text(
        &self,
        text: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<AgentSettings, ConfigError> {
        self.merge(common::read_blocks(&super::parse_text(
            text,
            self.expand_env,
            lookup,
        )?)?)
    }

    fn merge(&self, mut file: AgentFile) -> Result<AgentSettings, ConfigError> {
        let trust_domain = file.common.trust_domain(self.trust_domain.as_ref())?;
        // As for the server: the key directory is compared with the file's own data_dir, and
        // when it is that one a --data-dir flag moves it along.
        let file_data_dir = file
            .common
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let key_manager = key_manager(&file.plugins, &file_data_dir);
        let data_dir = self.data_dir.clone().unwrap_or(file_data_dir);
        let server_address = self.server_address(file.server_address.as_ref(), file.server_port)?;
        let trust_bundle = self.trust_bundle(FileTrust {
            path: file.trust_bundle_path.take(),
            url: file.trust_bundle_url.take(),
            format: file.trust_bundle_format,
            insecure: file.insecure_bootstrap,
        })?;

        let join_token = match (&self.join_token, &self.join_token_file) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(path)) => Some(read_token(path)?),
            (None, None) => match (file.join_token, file.join_token_file) {
                (Some(_), Some((_, line))) => {
                    return Err(ConfigError::Conflict(format!(
                        "join_token and join_token_file (line {line}) are both set: give one"
                    )));
                }
                (Some((token, _)), None) => Some(token),
                (None, Some((path, _))) => Some(read_token(&path)?),
                (None, None) => None,
            },
        };

        let mut config = AgentConfig::new(trust_domain, data_dir, server_address, trust_bundle);
        config.join_token = join_token;
        config.key_manager = key_manager;
        config.socket_path = self
            .socket
            .clone()
            .or(file.common.socket_path)
            .unwrap_or_else(|| PathBuf::from(crate::spire_args::agent_socket()));
        if let Some(interval) = self.sync_interval.or(file.sync_interval) {
            config.sync_interval = interval;
        }
        if let Some(kt) = self.workload_x509_svid_key_type.or(file.workload_key_type) {
            config.workload_key_type = kt;
        }
        if let Some(max) = self
            .x509_svid_cache_max_size
            .or(file.x509_svid_cache_max_size)
        {
            config.x509_svid_cache_max_size = max;
        }
        if let Some(h) = file.common.health_checks {
            config.health_checks = h;
        }
        if let Some(t) = file.common.telemetry {
            config.telemetry = t;
        }
        config.unix_attestor = file.plugins.unix_attestor;
        config.x509pop = file.plugins.x509pop;
        if let Some(mode) = file.rebootstrap_mode {
            config.rebootstrap_mode = mode;
        }
        if let Some(delay) = file.rebootstrap_delay {
            config.rebootstrap_delay = delay;
        }
        let log = self.log.over(file.common.log);
        Ok(AgentSettings { config, log })
    }

    /// `host:port` from SPIRE's separate `server_address` and `server_port`, or from a
    /// `--server-address HOST:PORT` flag; each part from the flags first, then the file.
    fn server_address(
        &self,
        file_address: Option<&(String, usize)>,
        file_port: Option<u16>,
    ) -> Result<String, ConfigError> {
        let flag = self.server_address.as_deref().map(split_host_port);
        if let (Some((_, Some(in_address))), Some(port)) = (flag, self.server_port)
            && in_address != port
        {
            return Err(ConfigError::Conflict(format!(
                "--server-address has port {in_address} and --server-port {port}: give the port once"
            )));
        }
        let file = file_address.map(|(a, line)| (split_host_port(a), *line));
        if let (Some(((_, Some(in_address)), line)), Some(port)) = (file, file_port)
            && in_address != port
        {
            return Err(ConfigError::Conflict(format!(
                "server_address at line {line} has port {in_address} and server_port is {port}: \
                 give the port once"
            )));
        }
        let host = flag
            .map(|(h, _)| h)
            .or(file.map(|((h, _), _)| h))
            .unwrap_or(DEFAULT_SERVER_HOST);
        let port = self
            .server_port
            .or(flag.and_then(|(_, p)| p))
            .or(file_port)
            .or(file.and_then(|((_, p), _)| p))
            .unwrap_or(DEFAULT_SERVER_PORT);
        Ok(if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        })
    }

    /// The bootstrap source: the flags' choice replaces the file's; the format applies to a
    /// file or a URL alike (SPIRE's trust_bundle_format).
    fn trust_bundle(&self, file: FileTrust) -> Result<TrustBootstrap, ConfigError> {
        let format = match self.trust_bundle_format.as_deref() {
            Some("spiffe") => BundleFormat::Spiffe,
            Some(_) => BundleFormat::Pem,
            None => file.format.unwrap_or_default(),
        };
        let source = match (
            &self.trust_bundle,
            &self.trust_bundle_url,
            self.insecure_bootstrap,
        ) {
            (Some(path), _, _) => Some(Source::Path(path.clone())),
            (None, Some(url), _) => Some(Source::Url(url.clone())),
            (None, None, true) => return Ok(TrustBootstrap::Insecure),
            (None, None, false) => None,
        };
        let source = match source {
            Some(source) => source,
            None => file_source(file)?,
        };
        Ok(match (source, format) {
            (Source::Path(path), BundleFormat::Pem) => TrustBootstrap::Pem(path),
            (Source::Path(path), BundleFormat::Spiffe) => TrustBootstrap::Spiffe(path),
            (Source::Url(url), format) => TrustBootstrap::Url { url, format },
            (Source::Insecure, _) => TrustBootstrap::Insecure,
        })
    }
}

/// The file's bootstrap keys.
struct FileTrust {
    path: Option<PathBuf>,
    url: Option<(String, usize)>,
    format: Option<BundleFormat>,
    insecure: Option<(bool, usize)>,
}

/// Where the bootstrap bundle comes from, before its format is applied.
enum Source {
    Path(PathBuf),
    Url(String),
    Insecure,
}

/// The file's bootstrap source: exactly one of trust_bundle_path, trust_bundle_url and
/// insecure_bootstrap = true.
fn file_source(file: FileTrust) -> Result<Source, ConfigError> {
    let insecure = file.insecure.filter(|(on, _)| *on);
    match (file.path, file.url, insecure) {
        (Some(_), _, Some((_, line))) => Err(ConfigError::Conflict(format!(
            "trust_bundle_path and insecure_bootstrap = true (line {line}) are both set: \
             give exactly one"
        ))),
        (_, Some((_, url_line)), Some((_, line))) => Err(ConfigError::Conflict(format!(
            "trust_bundle_url (line {url_line}) and insecure_bootstrap = true (line {line}) are \
             both set: give exactly one"
        ))),
        (Some(_), Some((_, line)), None) => Err(ConfigError::Conflict(format!(
            "trust_bundle_path and trust_bundle_url (line {line}) are both set: give exactly one"
        ))),
        (Some(path), None, None) => Ok(Source::Path(path)),
        (None, Some((url, _)), None) => Ok(Source::Url(url)),
        (None, None, Some(_)) => Ok(Source::Insecure),
        (None, None, None) => Err(ConfigError::Conflict(
            "the agent needs to authenticate the server: set trust_bundle_path \
             (--trust-bundle PATH) or trust_bundle_url (--trust-bundle-url URL) or, for \
             experiments only, insecure_bootstrap = true (--insecure-bootstrap)"
                .into(),
        )),
    }
}

/// Splits `host[:port]`; a bare IPv6 address (several colons, no brackets) has no port.
fn split_host_port(s: &str) -> (&str, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[')
        && let Some((host, tail)) = rest.split_once(']')
    {
        return (host, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host, Some(p)),
            Err(_) => (s, None),
        },
        _ => (s, None),
    }
}

fn read_token(path: &Path) -> Result<String, ConfigError> {
    let text = lanyard_ca::operator_file::read_operator_text(
        path,
        lanyard_ca::operator_file::MAX_OPERATOR_FILE_BYTES,
    )
    .map_err(|source| ConfigError::ReadFile {
        what: "join token file",
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ConfigError::EmptyJoinTokenFile {
            path: path.to_path_buf(),
        });
    }
    Ok(token.to_owned())
}

impl DaemonFile for AgentFile {
    const KIND: &'static str = "agent";

    fn read_block(&mut self, entries: &[Entry]) -> Result<(), ConfigError> {
        read_agent(entries, self)
    }

    fn read_plugins(&mut self, entry: &Entry) -> Result<(), ConfigError> {
        self.plugins = plugins::agent(entry)?;
        Ok(())
    }

    fn common(&mut self) -> &mut CommonFile {
        &mut self.common
    }
}

fn read_agent(entries: &[Entry], file: &mut AgentFile) -> Result<(), ConfigError> {
    let scope = Scope {
        block: "agent {}",
        kind: "agent",
        prefix: "",
        keys: AGENT_KEYS,
    };
    walk(entries, &scope, |e| {
        if file.common.read_key(e)? {
            return Ok(());
        }
        match e.key.as_str() {
            "server_address" => {
                let s = e.str()?;
                if s.is_empty() {
                    return Err(e.invalid("give the server's DNS name or IP address"));
                }
                file.server_address = Some((s.to_owned(), e.line));
            }
            "server_port" => file.server_port = Some(e.server_port()?),
            "trust_bundle_path" => file.trust_bundle_path = Some(e.path()?),
            "trust_bundle_format" => {
                file.trust_bundle_format = Some(match e.str()? {
                    "pem" => BundleFormat::Pem,
                    "spiffe" => BundleFormat::Spiffe,
                    _ => return Err(e.invalid("the formats are pem and spiffe")),
                });
            }
            "rebootstrap_mode" => {
                file.rebootstrap_mode = Some(match e.str()? {
                    "never" => RebootstrapMode::Never,
                    "auto" => RebootstrapMode::Auto,
                    "always" => RebootstrapMode::Always,
                    _ => return Err(e.invalid("the modes are never, auto and always")),
                });
            }
            "rebootstrap_delay" => file.rebootstrap_delay = Some(e.duration()?),
            "trust_bundle_url" => {
                let url = e.str()?;
                if !url.starts_with("https://") {
                    return Err(e.invalid(
                        "give an https:// URL: plain http is refused, as the bundle \
                         authenticates the server",
                    ));
                }
                file.trust_bundle_url = Some((url.to_owned(), e.line));
            }
            "insecure_bootstrap" => file.insecure_bootstrap = Some((e.bool()?, e.line)),
            "join_token" => {
                let token = e.str()?;
                if token.is_empty() {
                    return Err(e.invalid(
                        "the join token is empty: give one from `lanyard server token generate`, \
                         or leave the key out",
                    ));
                }
                file.join_token = Some((token.to_owned(), e.line));
            }
            "join_token_file" => file.join_token_file = Some((e.path()?, e.line)),
            "x509_svid_cache_max_size" => {
                let n = match e.value {
                    Value::Int(n) => n,
                    _ => {
                        return Err(e.invalid("a whole number of SVIDs; 0 for the default of 1000"));
                    }
                };
                let n = usize::try_from(n).map_err(|_| {
                    e.invalid("the cache size cannot be negative; 0 for the default of 1000")
                })?;
                file.x509_svid_cache_max_size = Some(n);
            }
            "workload_x509_svid_key_type" => {
                file.workload_key_type =
                    Some(parse_workload_key_type(e.str()?).map_err(|r| rule(e, r))?);
            }
            _ => read_experimental(e.object()?, file)?,
        }
        Ok(())
    })
}

fn read_experimental(entries: &[Entry], file: &mut AgentFile) -> Result<(), ConfigError> {
    let scope = Scope {
        block: "agent { experimental {} }",
        kind: "agent",
        prefix: "experimental.",
        keys: EXPERIMENTAL_KEYS,
    };
    walk(entries, &scope, |e| {
        file.sync_interval = Some(e.duration()?);
        Ok(())
    })
}

/// A workload key type: SPIRE's agent offers ec-p256, ec-p384 and rsa-2048 only.
fn parse_workload_key_type(s: &str) -> Result<KeyType, String> {
    match s.parse::<KeyType>() {
        Ok(kt @ (KeyType::EcP256 | KeyType::EcP384 | KeyType::Rsa2048)) => Ok(kt),
        _ => Err(format!(
            "{} is not a workload key type: use ec-p256, ec-p384 or rsa-2048",
            super::clip(s)
        )),
    }
}

/// Where the agent's key lives, from its `KeyManager` block. SPIRE's `KeyManager "disk"`
/// keeps the keys in `directory`; Lanyard does too, and keeps the SVID and bundle in
/// `data_dir`, where SPIRE keeps them. A `directory` that is the file's own `data_dir` (however
/// spelled) is no setting of its own, so that `--data-dir` moves the keys along with the rest.
fn key_manager(plugins: &AgentPlugins, data_dir: &Path) -> AgentKeyManager {
    if let Some((KeyManagerKind::Memory, _)) = plugins.key_manager {
        return AgentKeyManager::Memory;
    }
    let directory = plugins
        .key_directory
        .as_ref()
        .filter(|(dir, _)| normalize(dir) != normalize(data_dir))
        .map(|(dir, _)| dir.clone());
    AgentKeyManager::Disk { directory }
}

#[cfg(test)]
#[path = "agent_tests.rs"]
mod tests;
