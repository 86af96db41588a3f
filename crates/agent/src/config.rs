//! What the agent is told: [`AgentConfig`], the bootstrap trust source, and the server address.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lanyard_ca::KeyType;
use lanyard_spiffe::{TrustDomain, X509Bundle};
use lanyard_telemetry::{HealthChecks, Telemetry};

#[path = "config_address.rs"]
mod address;
pub(crate) use address::ServerAddress;

/// How often the agent asks the server for entry and bundle changes unless configured (SPIRE's
/// `sync_interval` default).
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(5);

/// Everything [`run`](crate::run) needs. Every field mirrors a key of SPIRE's `agent {}` block.
#[derive(Clone)]
pub struct AgentConfig {
    /// The trust domain the agent and its server belong to.
    pub trust_domain: TrustDomain,
    /// Directory for the agent's X509-SVID and latest bundle, and for its private key unless
    /// [`key_manager`](Self::key_manager) puts it elsewhere (created 0700).
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
    /// SPIRE's `x509_svid_cache_max_size`: how many workload X509-SVIDs the agent keeps signed
    /// ahead (default 1000; 0 means the default, as in SPIRE). A soft bound: past it the SVIDs
    /// least recently asked for are dropped, never one a workload is being served, and a
    /// dropped one is signed again when a workload asks.
    pub x509_svid_cache_max_size: usize,
    /// SPIRE's `NodeAttestor "x509pop"`: attest with a certificate and its key instead of a
    /// join token, and again whenever the stored agent SVID is unusable. `None` by default.
    pub x509pop: Option<X509popAgentConfig>,
    /// SPIRE's `rebootstrap_mode`: whether the agent goes back to `trust_bundle` when its own
    /// bundle no longer authenticates the server. [`RebootstrapMode::Never`] by default.
    pub rebootstrap_mode: RebootstrapMode,
    /// SPIRE's `rebootstrap_delay`: how long the server must have been untrusted, with no
    /// trusted connection in between, before the agent rebootstraps (default
    /// [`DEFAULT_REBOOTSTRAP_DELAY`]).
    pub rebootstrap_delay: Duration,
    /// SPIRE's `KeyManager` plugin: where the agent's private key lives.
    /// [`AgentKeyManager::Disk`] in `data_dir` by default.
    pub key_manager: AgentKeyManager,
}

/// Where the agent keeps the private key of its own X509-SVID (SPIRE's agent `KeyManager`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentKeyManager {
    /// SPIRE's `KeyManager "disk"`: key files (mode 0600) in `directory`, or in `data_dir` when
    /// `None` (the default). A restarted agent finds its key and reuses its stored SVID.
    Disk {
        /// SPIRE's `directory`: a directory of its own for the keys (created 0700), for
        /// operators who keep keys on another volume than the SVID and bundle.
        directory: Option<PathBuf>,
    },
    /// SPIRE's `KeyManager "memory"`: the key lives in the process only and nothing key-related
    /// is written. Overrides the default of keeping the key on disk: a restarted agent cannot
    /// use its stored SVID and must attest again (a new join token, or x509pop, which attests
    /// by itself).
    Memory,
}

impl Default for AgentKeyManager {
    fn default() -> Self {
        Self::Disk { directory: None }
    }
}

/// SPIRE's default `rebootstrap_delay`.
pub const DEFAULT_REBOOTSTRAP_DELAY: Duration = Duration::from_secs(600);

/// SPIRE's `rebootstrap_mode`. Rebootstrapping attests again against the bootstrap bundle, so
/// it needs an attestor that may attest more than once (x509pop, not a join token), and a
/// bootstrap bundle (not `insecure_bootstrap`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RebootstrapMode {
    /// Never: an operator recovers an agent that lost trust in its server (the default). This
    /// is the secure default: rebootstrapping trusts the bootstrap source again, so whoever
    /// controls that source and the network can take the agent over after the delay.
    #[default]
    Never,
    /// Rebootstrap when the attestor allows it; otherwise warn once and never.
    Auto,
    /// Rebootstrap; a configuration that cannot (join token) is refused at start.
    Always,
}

/// The agent's `NodeAttestor "x509pop" { plugin_data { .. } }`, as SPIRE names the keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct X509popAgentConfig {
    /// `private_key_path`: the certificate's private key (PEM PKCS#8, SEC1 or PKCS#1).
    pub private_key_path: PathBuf,
    /// `certificate_path`: PEM certificates, the agent's own first, then any intermediates.
    pub certificate_path: PathBuf,
    /// `intermediates_path`: optional PEM intermediates appended after `certificate_path`'s.
    pub intermediates_path: Option<PathBuf>,
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

/// Where trust in the server comes from on first contact. It is read only when the agent has
/// to attest (no usable stored SVID); afterwards the bundle kept in the data directory is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustBootstrap {
    /// A PEM file with the server's CA certificates (SPIRE's `trust_bundle_path`).
    Pem(PathBuf),
    /// A SPIFFE bundle document (JSON) naming the server's CA certificates (SPIRE's
    /// `trust_bundle_path` with `trust_bundle_format = "spiffe"`).
    Spiffe(PathBuf),
    /// A bundle fetched over HTTPS (SPIRE's `trust_bundle_url`), the web server verified with
    /// the system's CA certificates (`SSL_CERT_FILE` replaces them, as for OpenSSL and Go).
    Url {
        /// The `https://` URL.
        url: String,
        /// How the body is written.
        format: BundleFormat,
    },
    /// Trust whatever server answers on the first connection and take its bundle (SPIRE's
    /// `insecure_bootstrap`). Overrides the secure default of requiring a bundle: a man in
    /// the middle could hand the agent a foreign identity. For experiments only.
    Insecure,
}

/// How a bootstrap bundle is written (SPIRE's `trust_bundle_format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BundleFormat {
    /// PEM CA certificates (SPIRE's default).
    #[default]
    Pem,
    /// A SPIFFE bundle document: JSON with `x509-svid` keys (SPIFFE Trust Domain and Bundle
    /// §4).
    Spiffe,
}

impl AgentConfig {
    /// A configuration with the defaults for everything but the essentials: the sync interval
    /// [`DEFAULT_SYNC_INTERVAL`], EC P-256 workload keys, no join token, the Workload API
    /// socket `<data_dir>/api.sock`, the `unix` attestor without path discovery, and the
    /// agent's key on disk in `data_dir`.
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
            x509_svid_cache_max_size: crate::cache::DEFAULT_SVID_LIMIT,
            x509pop: None,
            rebootstrap_mode: RebootstrapMode::Never,
            rebootstrap_delay: DEFAULT_REBOOTSTRAP_DELAY,
            key_manager: AgentKeyManager::default(),
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
        if let TrustBootstrap::Url { url, .. } = &self.trust_bundle {
            crate::https_get::check_url(url)?;
        }
        if self.rebootstrap_mode != RebootstrapMode::Never {
            if self.trust_bundle == TrustBootstrap::Insecure {
                return Err(ConfigError::Rebootstrap(
                    "insecure_bootstrap cannot be used with rebootstrapping: there is no bundle \
                     to go back to",
                ));
            }
            if self.rebootstrap_mode == RebootstrapMode::Always && !self.can_attest_again() {
                return Err(ConfigError::Rebootstrap(
                    "rebootstrap_mode \"always\" needs an attestor that may attest again \
                     (x509pop); a join token is single-use",
                ));
            }
        }
        Ok(())
    }

    /// Whether the configured attestor may attest any number of times (x509pop without a join
    /// token, which would win over it).
    pub(crate) fn can_attest_again(&self) -> bool {
        self.x509pop.is_some() && self.join_token.is_none()
    }

    /// Whether the agent rebootstraps: `auto` only when the attestor allows it.
    pub(crate) fn rebootstraps(&self) -> bool {
        match self.rebootstrap_mode {
            RebootstrapMode::Never => false,
            RebootstrapMode::Auto | RebootstrapMode::Always => self.can_attest_again(),
        }
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
            .field("x509_svid_cache_max_size", &self.x509_svid_cache_max_size)
            .field("x509pop", &self.x509pop)
            .field("rebootstrap_mode", &self.rebootstrap_mode)
            .field("rebootstrap_delay", &self.rebootstrap_delay)
            .field("key_manager", &self.key_manager)
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
    /// A SPIFFE-format bootstrap bundle (file or URL) is not a usable bundle document.
    #[error("the trust bundle {origin} is not a usable SPIFFE bundle")]
    TrustBundleSpiffe {
        /// The file or URL.
        origin: String,
        /// What is wrong with its content.
        source: lanyard_spiffe::bundle::BundleDocError,
    },
    /// A SPIFFE-format bootstrap bundle names no X.509 authority.
    #[error("the trust bundle {origin} holds no X.509 authority (no key with use \"x509-svid\")")]
    TrustBundleEmpty {
        /// The file or URL.
        origin: String,
    },
    /// A PEM bootstrap bundle fetched from a URL holds no usable certificates.
    #[error("the trust bundle {url} is not a usable PEM bundle")]
    TrustBundleUrlParse {
        /// The URL.
        url: String,
        /// What is wrong with its content.
        source: lanyard_spiffe::x509::X509Error,
    },
    /// The bootstrap bundle cannot be fetched.
    #[error(transparent)]
    TrustBundleUrl(#[from] crate::https_get::TrustUrlError),
    /// The rebootstrap settings cannot work.
    #[error("rebootstrap_mode: {0}")]
    Rebootstrap(&'static str),
}

/// Reads the bootstrap bundle from a PEM file.
pub(crate) fn read_pem_bundle(td: &TrustDomain, path: &Path) -> Result<X509Bundle, ConfigError> {
    let pem = read_bundle_file(path)?;
    X509Bundle::from_pem(td.clone(), &pem).map_err(|source| ConfigError::TrustBundleParse {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the bootstrap bundle from a SPIFFE bundle document.
pub(crate) fn read_spiffe_bundle(td: &TrustDomain, path: &Path) -> Result<X509Bundle, ConfigError> {
    let json = read_bundle_file(path)?;
    parse_spiffe_bundle(td, &json, &path.display().to_string())
}

/// The X.509 authorities of a SPIFFE bundle document; `origin` names it in errors.
pub(crate) fn parse_spiffe_bundle(
    td: &TrustDomain,
    json: &[u8],
    origin: &str,
) -> Result<X509Bundle, ConfigError> {
    let doc = lanyard_spiffe::SpiffeBundle::parse(td.clone(), json).map_err(|source| {
        ConfigError::TrustBundleSpiffe {
            origin: origin.into(),
            source,
        }
    })?;
    if doc.x509_bundle().authorities().is_empty() {
        return Err(ConfigError::TrustBundleEmpty {
            origin: origin.into(),
        });
    }
    Ok(doc.x509_bundle().clone())
}

/// The bytes of a bootstrap bundle file, refusing devices and oversized files.
fn read_bundle_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    lanyard_ca::operator_file::read_operator_file(
        path,
        lanyard_ca::operator_file::MAX_OPERATOR_FILE_BYTES,
    )
    .map_err(|source| ConfigError::TrustBundleRead {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
