//! `lanyard server run|validate`: the flags, the `server {}` block, and the merged
//! [`ServerConfig`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lanyard_ca::KeyType;
use lanyard_server::ServerConfig;
use lanyard_spiffe::TrustDomain;

use super::common::{self, CommonFile, DaemonFile, LogFlags};
use super::hcl::Entry;
use super::plugins::{self, ServerPlugins};
use super::{ConfigError, Key, Scope, normalize, walk};
use crate::logging::LogSettings;

/// Where the server keeps its state unless configured.
pub(crate) const DEFAULT_DATA_DIR: &str = ".lanyard/server";

/// Every key of SPIRE's `server {}` block.
const SERVER_KEYS: &[(&str, Key)] = &[
    ("trust_domain", Key::Mapped),
    ("bind_address", Key::Mapped),
    ("bind_port", Key::Mapped),
    ("socket_path", Key::Mapped),
    ("data_dir", Key::Mapped),
    ("log_level", Key::Mapped),
    ("log_format", Key::Mapped),
    ("log_file", Key::Mapped),
    ("ca_key_type", Key::Mapped),
    ("ca_ttl", Key::Mapped),
    ("default_x509_svid_ttl", Key::Mapped),
    ("agent_ttl", Key::Mapped),
    ("audit_log_enabled", Key::Mapped),
    ("default_jwt_svid_ttl", Key::Mapped),
    ("jwt_issuer", Key::Mapped),
    ("jwt_key_type", Key::Mapped),
    ("admin_ids", Key::Mapped),
    ("cache_reload_interval", Key::Mapped),
    ("ca_subject", Key::Unimplemented),
    ("disable_jwt_svids", Key::Unimplemented),
    ("experimental", Key::Unimplemented),
    ("federation", Key::Unimplemented),
    ("log_source_location", Key::FalseOnly),
    ("max_attested_node_info_staleness", Key::Unimplemented),
    ("profiling_enabled", Key::FalseOnly),
    ("profiling_freq", Key::Unimplemented),
    ("profiling_names", Key::Unimplemented),
    ("profiling_port", Key::Unimplemented),
    ("proxy_protocol_trusted_cidrs", Key::Unimplemented),
    ("prune_attested_nodes_batch_size", Key::Unimplemented),
    ("prune_attested_nodes_expired_for", Key::Unimplemented),
    ("prune_tofu_nodes", Key::FalseOnly),
    ("ratelimit", Key::Unimplemented),
];

/// Flags of `lanyard server run` and `validate`. Each mirrors a SPIRE `server {}` key and,
/// when given, overrides the config file.
#[derive(clap::Args, Debug, Default, Clone)]
pub(crate) struct ServerFlags {
    /// HCL config file with SPIRE's server {}, plugins {}, telemetry {} and health_checks {}
    /// blocks; flags given on the command line override it.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Replace $NAME and ${NAME} in the config file with environment variables before parsing
    /// (an unset variable is an error, unlike SPIRE's -expandEnv).
    #[arg(long, requires = "config")]
    pub(crate) expand_env: bool,
    /// Trust domain this server signs for [default: example.org].
    #[arg(long, value_parser = parse_trust_domain)]
    pub(crate) trust_domain: Option<TrustDomain>,
    /// Directory for the datastore and the CA keys [default: .lanyard/server].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Address of the agent API (TLS), IP:PORT. SPIRE binds 0.0.0.0; Lanyard stays on
    /// loopback unless told otherwise [default: 127.0.0.1:8081].
    #[arg(long, value_parser = parse_bind, conflicts_with_all = ["bind_address", "bind_port"])]
    pub(crate) bind: Option<SocketAddr>,
    /// IP address of the agent API (SPIRE's bind_address) [default: 127.0.0.1].
    #[arg(long)]
    pub(crate) bind_address: Option<IpAddr>,
    /// Port of the agent API (SPIRE's bind_port, and its -serverPort flag); 0 picks a free
    /// one [default: 8081].
    #[arg(long, alias = "server-port")]
    pub(crate) bind_port: Option<u16>,
    /// Unix socket of the admin API [default: /tmp/lanyard-server/private/api.sock; run as
    /// spire-server, SPIRE's /tmp/spire-server/private/api.sock].
    #[arg(long, visible_alias = "socket-path")]
    pub(crate) socket: Option<PathBuf>,
    /// Key type of the X.509 CA: ec-p256, ec-p384, rsa-2048 or rsa-4096 [default: ec-p256].
    #[arg(long)]
    pub(crate) ca_key_type: Option<KeyType>,
    /// Lifetime of each X.509 CA [default: 24h].
    #[arg(long, value_parser = crate::duration::parse)]
    pub(crate) ca_ttl: Option<Duration>,
    /// X509-SVID lifetime for entries that do not set one [default: 1h].
    #[arg(long, value_parser = crate::duration::parse)]
    pub(crate) default_x509_svid_ttl: Option<Duration>,
    /// JWT-SVID lifetime when a request does not set one [default: 5m].
    #[arg(long, value_parser = crate::duration::parse)]
    pub(crate) default_jwt_svid_ttl: Option<Duration>,
    /// The iss claim of JWT-SVIDs, such as https://oidc.example.org [default: none].
    #[arg(long)]
    pub(crate) jwt_issuer: Option<String>,
    /// Key type of the JWT signing keys: ec-p256 (ES256), ec-p384 (ES384), rsa-2048 or
    /// rsa-4096 (RS256) [default: ec-p256].
    #[arg(long)]
    pub(crate) jwt_key_type: Option<KeyType>,
    /// Lifetime of agent SVIDs [default: the default X509-SVID TTL].
    #[arg(long, value_parser = crate::duration::parse)]
    pub(crate) agent_ttl: Option<Duration>,
    /// Lifetime of join tokens generated without --ttl, at most ten years like
    /// `token generate --ttl`; flag only, SPIRE has no such key [default: 600s].
    #[arg(long, value_parser = crate::duration::parse_bounded_ttl)]
    pub(crate) join_token_ttl: Option<Duration>,
    /// One structured log line per admin API call (SPIRE's audit_log_enabled)
    /// [default: false].
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub(crate) audit_log_enabled: Option<bool>,
    #[command(flatten)]
    pub(crate) log: LogFlags,
}

/// What `server run` starts with.
#[derive(Debug)]
pub(crate) struct ServerSettings {
    /// The server's configuration.
    pub(crate) config: ServerConfig,
    /// How the process logs.
    pub(crate) log: LogSettings,
}

/// The `server {}` block and the plugins, as written in the file.
#[derive(Debug, Default)]
struct ServerFile {
    common: CommonFile,
    bind_address: Option<IpAddr>,
    bind_port: Option<u16>,
    ca_key_type: Option<KeyType>,
    ca_ttl: Option<Duration>,
    default_x509_svid_ttl: Option<Duration>,
    agent_ttl: Option<Duration>,
    default_jwt_svid_ttl: Option<Duration>,
    jwt_issuer: Option<String>,
    jwt_key_type: Option<KeyType>,
    audit_log_enabled: Option<bool>,
    admin_ids: Vec<lanyard_spiffe::SpiffeId>,
    cache_reload_interval: Option<Duration>,
    plugins: ServerPlugins,
}

impl ServerFlags {
    /// Reads the config file (if any) and merges it under the flags.
    ///
    /// # Errors
    ///
    /// The first problem in the file, or settings that contradict each other.
    pub(crate) fn load(&self) -> Result<ServerSettings, ConfigError> {
        self.merge(common::load(self.config.as_deref(), self.expand_env)?)
    }

    /// As [`load`](Self::load), with the file's text given and the environment in `lookup`.
    #[cfg(test)]
    pub(crate) fn load_text(
        &self,
        text: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ServerSettings, ConfigError> {
        self.merge(common::read_blocks(&super::parse_text(
            text,
            self.expand_env,
            lookup,
        )?)?)
    }

    fn merge(&self, mut file: ServerFile) -> Result<ServerSettings, ConfigError> {
        let trust_domain = file.common.trust_domain(self.trust_domain.as_ref())?;
        // Plugin paths are checked against the file's own data_dir: a --data-dir flag then
        // moves them along with everything else, as flags override the file.
        let file_data_dir = file
            .common
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let keys_dir = keys_dir(&file.plugins, &file_data_dir);
        let data_dir = self.data_dir.clone().unwrap_or(file_data_dir);

        let mut config = ServerConfig::with_defaults(trust_domain, data_dir);
        config.keys_dir = keys_dir;
        let ip = self
            .bind
            .map(|b| b.ip())
            .or(self.bind_address)
            .or(file.bind_address)
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let port = self
            .bind
            .map(|b| b.port())
            .or(self.bind_port)
            .or(file.bind_port)
            .unwrap_or(config.bind.port());
        config.bind = SocketAddr::new(ip, port);
        config.socket_path = self
            .socket
            .clone()
            .or(file.common.socket_path)
            .unwrap_or_else(|| PathBuf::from(crate::spire_args::server_socket()));
        if let Some(kt) = self.ca_key_type.or(file.ca_key_type) {
            config.ca_key_type = kt;
        }
        if let Some(ttl) = self.ca_ttl.or(file.ca_ttl) {
            config.ca_ttl = ttl;
        }
        if let Some(ttl) = self.default_x509_svid_ttl.or(file.default_x509_svid_ttl) {
            config.default_x509_svid_ttl = ttl;
        }
        if let Some(ttl) = self.default_jwt_svid_ttl.or(file.default_jwt_svid_ttl) {
            config.default_jwt_svid_ttl = ttl;
        }
        if let Some(iss) = self.jwt_issuer.clone().or(file.jwt_issuer) {
            config.jwt_issuer = Some(iss);
        }
        if let Some(kt) = self.jwt_key_type.or(file.jwt_key_type) {
            config.jwt_key_type = kt;
        }
        // SPIRE: agent_ttl defaults to default_x509_svid_ttl, wherever that one came from.
        config.agent_ttl = self
            .agent_ttl
            .or(file.agent_ttl)
            .unwrap_or(config.default_x509_svid_ttl);
        if let Some(ttl) = self.join_token_ttl {
            config.join_token_ttl = ttl;
        }
        config.audit_log_enabled = self
            .audit_log_enabled
            .or(file.audit_log_enabled)
            .unwrap_or(false);
        if let Some(h) = file.common.health_checks {
            config.health_checks = h;
        }
        if let Some(t) = file.common.telemetry {
            config.telemetry = t;
        }
        config.upstream = file.plugins.upstream;
        config.datastore = file.plugins.datastore;
        config.x509pop = file.plugins.x509pop;
        config.admin_ids = file.admin_ids;
        if let Some(interval) = file.cache_reload_interval {
            config.cache_reload_interval = interval;
        }
        if let Some((kind, _)) = file.plugins.key_manager {
            config.key_manager = kind;
        }

        let log = self.log.over(file.common.log);
        Ok(ServerSettings { config, log })
    }
}

impl DaemonFile for ServerFile {
    const KIND: &'static str = "server";

    fn read_block(&mut self, entries: &[Entry]) -> Result<(), ConfigError> {
        read_server(entries, self)
    }

    fn read_plugins(&mut self, entry: &Entry) -> Result<(), ConfigError> {
        self.plugins = plugins::server(entry)?;
        Ok(())
    }

    fn common(&mut self) -> &mut CommonFile {
        &mut self.common
    }
}

fn read_server(entries: &[Entry], file: &mut ServerFile) -> Result<(), ConfigError> {
    let scope = Scope {
        block: "server {}",
        kind: "server",
        prefix: "",
        keys: SERVER_KEYS,
    };
    walk(entries, &scope, |e| {
        if file.common.read_key(e)? {
            return Ok(());
        }
        match e.key.as_str() {
            "bind_address" => file.bind_address = Some(bind_address(e)?),
            "bind_port" => file.bind_port = Some(e.port()?),
            "ca_key_type" => file.ca_key_type = Some(key_type(e)?),
            "ca_ttl" => file.ca_ttl = Some(e.duration()?),
            "default_x509_svid_ttl" => file.default_x509_svid_ttl = Some(e.duration()?),
            "agent_ttl" => file.agent_ttl = Some(e.duration()?),
            "default_jwt_svid_ttl" => file.default_jwt_svid_ttl = Some(e.duration()?),
            "jwt_issuer" => file.jwt_issuer = Some(e.str()?.to_owned()),
            "jwt_key_type" => file.jwt_key_type = Some(key_type(e)?),
            "admin_ids" => file.admin_ids = admin_ids(e)?,
            "cache_reload_interval" => file.cache_reload_interval = Some(e.duration()?),
            _ => file.audit_log_enabled = Some(e.bool()?),
        }
        Ok(())
    })
}

/// `admin_ids`: a list of SPIFFE IDs.
fn admin_ids(e: &Entry) -> Result<Vec<lanyard_spiffe::SpiffeId>, ConfigError> {
    let super::hcl::Value::List(items) = &e.value else {
        return Err(e.invalid(
            "admin_ids is a list of SPIFFE IDs, such as [\"spiffe://example.org/admin\"]",
        ));
    };
    items
        .iter()
        .map(|item| match item {
            super::hcl::Value::String(s) => lanyard_spiffe::SpiffeId::parse(s)
                .map_err(|err| e.invalid(format!("admin_ids {s:?}: {err}"))),
            _ => Err(e.invalid("admin_ids holds SPIFFE ID strings only")),
        })
        .collect()
}

/// Parses a bare trust domain name (flag or file).
pub(crate) fn parse_trust_domain(s: &str) -> Result<TrustDomain, String> {
    if s.starts_with("spiffe://") {
        return Err(format!(
            "{s:?} is a SPIFFE ID: give the bare trust domain name, such as example.org"
        ));
    }
    TrustDomain::new(s).map_err(|e| e.to_string())
}

/// Parses `--bind`: an IP literal and a port.
fn parse_bind(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not an address to listen on: use IP:PORT, such as 127.0.0.1:8081")
    })
}

/// `trust_domain` in a file.
pub(super) fn trust_domain(e: &Entry) -> Result<TrustDomain, ConfigError> {
    let s = e.str()?;
    parse_trust_domain(s).map_err(|r| rule(e, r))
}

/// A key type in a file.
pub(super) fn key_type(e: &Entry) -> Result<KeyType, ConfigError> {
    e.str()?
        .parse()
        .map_err(|_| e.invalid("key types are ec-p256, ec-p384, rsa-2048 and rsa-4096"))
}

/// An [`ConfigError::InvalidValue`] from a parser's message, dropping the parser's own quote
/// of the value.
pub(super) fn rule(e: &Entry, message: String) -> ConfigError {
    let full = match &e.value {
        super::hcl::Value::String(s) => format!("{s:?}"),
        _ => e.shown(),
    };
    let rule = message
        .strip_prefix(&format!("{full} is not "))
        .or_else(|| message.strip_prefix(&format!("{} is not ", e.shown())))
        .map_or(message.clone(), |rest| format!("not {rest}"));
    // A parser may quote a huge value whole: keep the message to a readable length.
    let rule = match rule.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &rule[..cut]),
        None => rule,
    };
    e.invalid(rule)
}

/// `bind_address`: an IP literal, or `localhost` for the loopback address.
fn bind_address(e: &Entry) -> Result<IpAddr, ConfigError> {
    let s = e.str()?;
    if s == "localhost" {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    s.parse().map_err(|_| ConfigError::Unsupported {
        what: format!("bind_address {s:?}"),
        line: e.line,
        rule: "Lanyard listens on an IP address, not a name: give one such as 127.0.0.1 or 0.0.0.0"
            .into(),
    })
}

/// The directory for the CA keys that `KeyManager "disk" { keys_path }` asks for.
///
/// SPIRE's `keys_path` names one JSON file; Lanyard keeps one file per key in a directory, and
/// puts that directory beside the file SPIRE would write, named `keys`: the keys then stay on
/// the volume the operator chose for them (SPIRE's usual `<data_dir>/keys.json` gives
/// `<data_dir>/keys`, Lanyard's default). `None` when that is `<data_dir>/keys` of the file's
/// own `data_dir`, so a `--data-dir` flag moves the keys along with everything else.
fn keys_dir(plugins: &ServerPlugins, data_dir: &Path) -> Option<PathBuf> {
    let (path, _) = plugins.keys_path.as_ref()?;
    let dir = normalize(path).parent().map(|p| p.join("keys"))?;
    (dir != normalize(&data_dir.join("keys"))).then_some(dir)
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
