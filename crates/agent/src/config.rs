//! What the agent is told: [`AgentConfig`], the bootstrap trust source, and the server address.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lanyard_ca::KeyType;
use lanyard_spiffe::{TrustDomain, X509Bundle};
use lanyard_telemetry::{HealthChecks, Telemetry};
use rustls_pki_types::ServerName;

/// How often the agent asks the server for entry and bundle changes unless configured (SPIRE's
/// `sync_interval` default).
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(5);

/// Everything [`run`](crate::run) needs. Every field mirrors a key of SPIRE's `agent {}` block.
#[derive(Clone)]
pub struct AgentConfig {
    /// The trust domain the agent and its server belong to.
    pub trust_domain: TrustDomain,
    /// Directory for the agent's private key, X509-SVID and latest bundle (created 0700).
    pub data_dir: PathBuf,
    /// The server's agent API, `host:port` (`[v6addr]:port` for IPv6 literals).
    pub server_address: String,
    /// How the agent authenticates the server before it has a bundle of its own.
    pub trust_bundle: TrustBootstrap,
    /// Join token for the first attestation; ignored while a stored agent SVID is still valid.
    pub join_token: Option<String>,
    /// Unix socket the Workload API is served on.
    pub socket_path: PathBuf,
    /// Time between two syncs with the server (entries, bundle, SVIDs due for renewal). A
    /// Lanyard server also pushes change notifications that start a sync at once, so this is
    /// the fallback, and the only schedule against a server that does not push (SPIRE).
    pub sync_interval: Duration,
    /// Key type of the workload X509-SVIDs the agent requests.
    pub workload_key_type: KeyType,
    /// SPIRE's `health_checks {}`: the HTTP liveness and readiness listener.
    pub health_checks: HealthChecks,
    /// SPIRE's `telemetry {}`: the Prometheus exporter.
    pub telemetry: Telemetry,
    /// SPIRE's `WorkloadAttestor "unix" { plugin_data {} }`.
    pub unix_attestor: UnixAttestorConfig,
}

/// The settings of the `unix` workload attestor, as SPIRE names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnixAttestorConfig {
    /// SPIRE's `discover_workload_path`: also produce `unix:path` and `unix:sha256` from the
    /// caller's binary. Off by default; the agent needs permission to read the caller's
    /// `/proc/<pid>/exe` (run as root or as the workload's user).
    pub discover_workload_path: bool,
    /// SPIRE's `workload_size_limit`: which binaries get a `unix:sha256` selector.
    pub workload_size_limit: WorkloadSizeLimit,
}

/// How big a workload binary may be for the agent to hash it (SPIRE's `workload_size_limit`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WorkloadSizeLimit {
    /// Hash binaries of any size (SPIRE's `0`, its default).
    #[default]
    Unlimited,
    /// Hash binaries up to this many bytes; bigger ones get no `unix:sha256` selector.
    Bytes(u64),
    /// Never hash (SPIRE's negative values).
    NeverHash,
}

impl WorkloadSizeLimit {
    /// The meaning SPIRE gives the number: zero is no limit, negative is never hash.
    pub fn from_spire(value: i64) -> Self {
        match u64::try_from(value) {
            Ok(0) => Self::Unlimited,
            Ok(n) => Self::Bytes(n),
            Err(_) => Self::NeverHash,
        }
    }
}

/// Where trust in the server comes from on first contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustBootstrap {
    /// A PEM file with the server's CA certificates (SPIRE's `trust_bundle_path`).
    Pem(PathBuf),
    /// Trust whatever server answers on the first connection and take its bundle (SPIRE's
    /// `insecure_bootstrap`). Overrides the secure default of requiring a bundle: a man in
    /// the middle could hand the agent a foreign identity. For experiments only.
    Insecure,
}

impl AgentConfig {
    /// A configuration with the defaults for everything but the essentials: the sync interval
    /// [`DEFAULT_SYNC_INTERVAL`], EC P-256 workload keys, no join token, the Workload API
    /// socket `<data_dir>/api.sock`, and the `unix` attestor without path discovery.
    pub fn new(
        trust_domain: TrustDomain,
        data_dir: PathBuf,
        server_address: String,
        trust_bundle: TrustBootstrap,
    ) -> Self {
        let socket_path = data_dir.join("api.sock");
        Self {
            trust_domain,
            data_dir,
            server_address,
            trust_bundle,
            join_token: None,
            socket_path,
            sync_interval: DEFAULT_SYNC_INTERVAL,
            workload_key_type: KeyType::EcP256,
            health_checks: HealthChecks::default(),
            telemetry: Telemetry::default(),
            unix_attestor: UnixAttestorConfig::default(),
        }
    }

    /// Checks the values that can be checked without I/O.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field, its value and the rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ServerAddress::parse(&self.server_address)?;
        if self.sync_interval.is_zero() {
            return Err(ConfigError::SyncInterval);
        }
        if self.join_token.as_deref() == Some("") {
            return Err(ConfigError::EmptyJoinToken);
        }
        Ok(())
    }
}

// The join token is a secret until spent: never print it whole.
impl fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfig")
            .field("trust_domain", &self.trust_domain)
            .field("data_dir", &self.data_dir)
            .field("server_address", &self.server_address)
            .field("trust_bundle", &self.trust_bundle)
            .field(
                "join_token",
                &self.join_token.as_ref().map(|_| "<redacted>"),
            )
            .field("socket_path", &self.socket_path)
            .field("sync_interval", &self.sync_interval)
            .field("workload_key_type", &self.workload_key_type)
            .field("health_checks", &self.health_checks)
            .field("telemetry", &self.telemetry)
            .field("unix_attestor", &self.unix_attestor)
            .finish()
    }
}

/// Configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `server_address` is not `host:port`.
    #[error("server address {value:?}: {rule}")]
    ServerAddress {
        /// The configured value.
        value: String,
        /// What is wrong with it.
        rule: &'static str,
    },
    /// A zero sync interval would spin.
    #[error("sync interval 0s: must be longer than zero")]
    SyncInterval,
    /// `--join-token ""`.
    #[error("join token is empty: give the token printed by `lanyard server token generate`")]
    EmptyJoinToken,
    /// The bootstrap bundle file cannot be read.
    #[error("cannot read the trust bundle {path}", path = path.display())]
    TrustBundleRead {
        /// The file.
        path: PathBuf,
        /// The operating system error.
        source: std::io::Error,
    },
    /// The bootstrap bundle file holds no usable certificates.
    #[error("the trust bundle {path} is not a usable PEM bundle", path = path.display())]
    TrustBundleParse {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        source: lanyard_spiffe::x509::X509Error,
    },
}

/// Reads the bootstrap bundle from a PEM file.
pub(crate) fn read_pem_bundle(td: &TrustDomain, path: &Path) -> Result<X509Bundle, ConfigError> {
    let pem = lanyard_ca::operator_file::read_operator_file(
        path,
        lanyard_ca::operator_file::MAX_OPERATOR_FILE_BYTES,
    )
    .map_err(|source| ConfigError::TrustBundleRead {
        path: path.to_path_buf(),
        source,
    })?;
    X509Bundle::from_pem(td.clone(), &pem).map_err(|source| ConfigError::TrustBundleParse {
        path: path.to_path_buf(),
        source,
    })
}

/// A validated `host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerAddress {
    /// As configured, for connecting and for messages.
    pub(crate) addr: String,
    /// The host part without IPv6 brackets, sent in the TLS handshake (the server's SVID is
    /// checked by SPIFFE ID, not by this name).
    pub(crate) name: ServerName<'static>,
}

impl ServerAddress {
    /// Splits and checks `host:port`.
    pub(crate) fn parse(value: &str) -> Result<Self, ConfigError> {
        let invalid = |rule| ConfigError::ServerAddress {
            value: value.to_string(),
            rule,
        };
        let (host, port) = value
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected host:port"))?;
        match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(invalid("the port must be a number from 1 to 65535")),
            Ok(_) => {}
        }
        let host = match host.strip_prefix('[') {
            Some(rest) => rest
                .strip_suffix(']')
                .ok_or_else(|| invalid("an IPv6 address must be written [addr]:port"))?,
            None if host.contains(':') => {
                return Err(invalid("an IPv6 address must be written [addr]:port"));
            }
            None => host,
        };
        if host.is_empty() {
            return Err(invalid("the host is empty"));
        }
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| invalid("the host is neither an IP address nor a DNS name"))?;
        Ok(Self {
            addr: value.to_string(),
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_port_and_bracketed_ipv6() {
        let host = |s: &str| ServerAddress::parse(s).unwrap().name.to_str().into_owned();
        assert_eq!(host("127.0.0.1:8081"), "127.0.0.1");
        assert_eq!(host("spire.example:443"), "spire.example");
        assert_eq!(host("[::1]:8081"), "::1");
    }

    #[test]
    fn rejects_addresses_without_a_usable_port_or_host() {
        for bad in [
            "localhost",
            "localhost:0",
            "localhost:x",
            ":8081",
            "::1:8081",
            "[::1:8081",
        ] {
            let err = ServerAddress::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn unreadable_trust_bundle_names_the_file_once_and_keeps_the_cause_walkable() {
        let td = TrustDomain::new("example.org").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("missing.pem");
        let err = read_pem_bundle(&td, &path).unwrap_err();
        let chain = crate::report::ErrorChain(&err).to_string();
        assert_eq!(
            chain,
            format!(
                "cannot read the trust bundle {}: No such file or directory (os error 2)",
                path.display()
            )
        );
        assert!(
            !err.to_string().contains("os error"),
            "the cause is its source: {err}"
        );

        std::fs::write(&path, "not PEM").unwrap();
        let err = read_pem_bundle(&td, &path).unwrap_err();
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn a_trust_bundle_that_is_a_device_is_refused_without_reading_it() {
        let td = TrustDomain::new("example.org").unwrap();
        let err = read_pem_bundle(&td, Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            crate::report::ErrorChain(&err).to_string(),
            "cannot read the trust bundle /dev/zero: it is a character device: only a regular \
             file is read"
        );
    }

    #[test]
    fn debug_output_hides_the_join_token() {
        let mut config = AgentConfig::new(
            TrustDomain::new("example.org").unwrap(),
            PathBuf::from("/tmp/a"),
            "127.0.0.1:8081".into(),
            TrustBootstrap::Insecure,
        );
        config.join_token = Some("secret-token".into());
        assert!(!format!("{config:?}").contains("secret-token"));
    }
}
