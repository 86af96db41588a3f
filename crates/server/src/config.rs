//! Server settings. The CLI maps flags (and later config files) onto this struct.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lanyard_ca::KeyType;
use lanyard_spiffe::{SpiffeId, TrustDomain};
use lanyard_telemetry::{HealthChecks, Telemetry};

use crate::ServerError;

/// Everything the server needs to start.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The trust domain this server signs for.
    pub trust_domain: TrustDomain,
    /// Holds the datastore, the CA keys and nothing else.
    pub data_dir: PathBuf,
    /// TCP address of the agent API (TLS).
    pub bind: SocketAddr,
    /// Unix socket of the admin API.
    pub socket_path: PathBuf,
    /// Where the CA's private keys live (SPIRE's `KeyManager` plugin); on disk by default.
    pub key_manager: KeyManagerKind,
    /// The directory of [`KeyManagerKind::Disk`]; `None` is `<data_dir>/keys`.
    pub keys_dir: Option<PathBuf>,
    /// Key type of the X.509 CA.
    pub ca_key_type: KeyType,
    /// Key type of the JWT signing keys (SPIRE's `jwt_key_type`).
    pub jwt_key_type: KeyType,
    /// The `iss` claim of JWT-SVIDs (SPIRE's `jwt_issuer`); none unless set.
    pub jwt_issuer: Option<String>,
    /// Lifetime of each X.509 CA.
    pub ca_ttl: Duration,
    /// X509-SVID lifetime when an entry does not set one; also the server's own SVID lifetime.
    pub default_x509_svid_ttl: Duration,
    /// JWT-SVID lifetime when a request or entry does not set one (SPIRE's
    /// `default_jwt_svid_ttl`, 5 minutes).
    pub default_jwt_svid_ttl: Duration,
    /// Lifetime of agent SVIDs.
    pub agent_ttl: Duration,
    /// Lifetime of join tokens created without an explicit TTL.
    pub join_token_ttl: Duration,
    /// SPIRE's `health_checks {}`: the HTTP liveness and readiness listener.
    pub health_checks: HealthChecks,
    /// SPIRE's `telemetry {}`: the Prometheus exporter.
    pub telemetry: Telemetry,
    /// SPIRE's `audit_log_enabled`: one structured log line per admin API call.
    pub audit_log_enabled: bool,
    /// SPIRE's `UpstreamAuthority "disk"`: an operator's CA signs the server's CAs, and the
    /// trust bundle holds its roots. None by default: the server's CAs are self-signed.
    pub upstream: Option<UpstreamDisk>,
    /// SPIRE's `admin_ids`: callers of the agent API (TLS) whose X509-SVID carries one of these
    /// IDs may use the admin RPCs, as callers of the admin socket always may. Empty by default:
    /// over TLS only entries with `admin = true` grant admin access.
    pub admin_ids: Vec<SpiffeId>,
    /// SPIRE's `cache_reload_interval`: how often the server reads the datastore's change feed
    /// into its in-memory entry and agent caches, so that writes made through other servers
    /// sharing the database take effect here. SPIRE reloads everything every 5 s; Lanyard reads
    /// only the changes, so it polls every 500 ms unless told otherwise.
    pub cache_reload_interval: Duration,
    /// SPIRE's `DataStore "sql"`: the database. `None` (the default) is an SQLite file at
    /// `<data_dir>/datastore.sqlite3`. Entries, agents and bundles written through one server
    /// reach the others sharing the database through its change feed; each server keeps its
    /// own `data_dir` for its CA keys and its CA journal under the server ID in that directory.
    pub datastore: Option<lanyard_datastore::DatabaseConfig>,
    /// SPIRE's `NodeAttestor "x509pop"`: agents may also attest with a certificate from these
    /// CAs. `None` (the default) accepts join tokens only.
    pub x509pop: Option<crate::X509popConfig>,
}

/// Where the server keeps the private keys of its CAs and JWT signing keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyManagerKind {
    /// SPIRE's `KeyManager "disk"`: one file per key under `<data_dir>/keys` (or
    /// [`ServerConfig::keys_dir`]), so that a restart keeps the CA.
    #[default]
    Disk,
    /// SPIRE's `KeyManager "memory"`: keys live in the process only, and no key touches the
    /// disk. A restart makes a new CA and JWT key: the journal's authorities whose keys are
    /// gone cannot sign again, and the prepared one is dropped; the formerly active one stays
    /// in the bundle as the old authority until it expires (plus the grace period), so what it
    /// signed keeps verifying. Overrides the default of keeping keys on disk.
    Memory,
}

/// Where an upstream CA on disk keeps its files (SPIRE's `UpstreamAuthority "disk"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamDisk {
    /// `cert_file_path`: the upstream CA certificate, then any certificates up to a root.
    pub cert_path: PathBuf,
    /// `key_file_path`: its private key (PEM PKCS#8, SEC1 or PKCS#1).
    pub key_path: PathBuf,
    /// `bundle_file_path`: the upstream roots. Without it the certificate must be self-signed
    /// and is itself the root.
    pub bundle_path: Option<PathBuf>,
}

impl UpstreamDisk {
    /// Loads and checks the files at `now` (see [`lanyard_ca::DiskUpstream::open`]).
    ///
    /// # Errors
    ///
    /// [`lanyard_ca::UpstreamError`] naming the file and the rule it breaks.
    pub fn open(
        &self,
        now: std::time::SystemTime,
    ) -> Result<lanyard_ca::DiskUpstream, lanyard_ca::UpstreamError> {
        lanyard_ca::DiskUpstream::open(
            lanyard_ca::DiskUpstreamPaths {
                cert: self.cert_path.clone(),
                key: self.key_path.clone(),
                bundle: self.bundle_path.clone(),
            },
            now,
        )
    }
}

/// The SPIRE defaults, except that the agent API listens on loopback until told otherwise.
pub const DEFAULT_BIND: &str = "127.0.0.1:8081";
/// Where the admin socket lives unless configured.
pub const DEFAULT_SOCKET: &str = "/tmp/lanyard-server/private/api.sock";
/// How often the change feed is read unless configured (see
/// [`ServerConfig::cache_reload_interval`]).
pub const DEFAULT_CACHE_RELOAD_INTERVAL: Duration = Duration::from_millis(500);
/// The longest `ca_ttl` accepted: 100 years. Far beyond any sane CA, and far inside what an
/// X.509 validity (GeneralizedTime, up to year 9999) and the system clock can represent.
pub const MAX_CA_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl ServerConfig {
    /// A configuration with SPIRE's defaults for `trust_domain`, keeping state in `data_dir`.
    pub fn with_defaults(trust_domain: TrustDomain, data_dir: PathBuf) -> Self {
        Self {
            trust_domain,
            data_dir,
            bind: SocketAddr::from(([127, 0, 0, 1], 8081)),
            socket_path: PathBuf::from(DEFAULT_SOCKET),
            key_manager: KeyManagerKind::Disk,
            keys_dir: None,
            ca_key_type: KeyType::EcP256,
            jwt_key_type: KeyType::EcP256,
            jwt_issuer: None,
            ca_ttl: Duration::from_secs(24 * 3600),
            default_x509_svid_ttl: Duration::from_secs(3600),
            default_jwt_svid_ttl: Duration::from_secs(300),
            agent_ttl: Duration::from_secs(3600),
            join_token_ttl: Duration::from_secs(600),
            health_checks: HealthChecks::default(),
            telemetry: Telemetry::default(),
            audit_log_enabled: false,
            upstream: None,
            admin_ids: Vec::new(),
            cache_reload_interval: DEFAULT_CACHE_RELOAD_INTERVAL,
            datastore: None,
            x509pop: None,
        }
    }

    /// What an operator should hear about but that does not stop the server: SVID lifetimes
    /// longer than the CA schedule lets them run. An SVID never outlives the CA that signs
    /// it, and the next CA takes over when min(ca_ttl / 6, 7 days) of the current one
    /// remains, so such SVIDs (and JWT-SVIDs, whose keys follow the same schedule) are cut
    /// short at the CA's expiry. SPIRE warns about these and runs, so SPIRE's own sample
    /// configuration (`ca_ttl = "168h"`, `default_x509_svid_ttl = "48h"`) starts here too.
    pub fn warnings(&self) -> Vec<String> {
        let largest = largest_untruncated_ttl(self.ca_ttl);
        [
            ("default_x509_svid_ttl", self.default_x509_svid_ttl),
            ("default_jwt_svid_ttl", self.default_jwt_svid_ttl),
            ("agent_ttl", self.agent_ttl),
        ]
        .into_iter()
        .filter(|(_, ttl)| *ttl > largest)
        .map(|(name, ttl)| {
            format!(
                "{name} {} is longer than ca_ttl {} lets it run: SVIDs are cut short at their \
                 CA's expiry; set {name} to {} or less (ca_ttl / 6, at most 7 days)",
                humanize(ttl),
                humanize(self.ca_ttl),
                humanize(largest)
            )
        })
        .collect()
    }

    /// Refuses settings that would make the server misbehave instead of failing later.
    ///
    /// # Errors
    ///
    /// [`ServerError::Config`] naming the setting and the rule it breaks.
    pub fn validate(&self) -> Result<(), ServerError> {
        for (name, ttl) in [
            ("ca_ttl", self.ca_ttl),
            ("default_x509_svid_ttl", self.default_x509_svid_ttl),
            ("default_jwt_svid_ttl", self.default_jwt_svid_ttl),
            ("agent_ttl", self.agent_ttl),
            ("join_token_ttl", self.join_token_ttl),
        ] {
            if ttl < Duration::from_secs(1) {
                return Err(ServerError::Config(format!(
                    "{name} is {ttl:?}: it must be at least 1s"
                )));
            }
        }
        if self.ca_ttl > MAX_CA_TTL {
            return Err(ServerError::Config(format!(
                "ca_ttl {} is too long: at most {} (100 years) is accepted",
                humanize(self.ca_ttl),
                humanize(MAX_CA_TTL)
            )));
        }
        // An SVID can never outlive the CA that signs it, and the next CA becomes active
        // when min(L/6, 7 days) of the current one remains, so longer SVIDs get cut short.
        let largest = largest_untruncated_ttl(self.ca_ttl);
        if largest < Duration::from_secs(1) {
            return Err(ServerError::Config(format!(
                "ca_ttl {} is too short: it must be at least 6s, because SVIDs may only use \
                 the last sixth of a CA's life before the next CA takes over",
                humanize(self.ca_ttl)
            )));
        }
        if self.cache_reload_interval < Duration::from_millis(10)
            || self.cache_reload_interval > Duration::from_secs(24 * 3600)
        {
            return Err(ServerError::Config(format!(
                "cache_reload_interval is {:?}: it must be between 10ms and 24h",
                self.cache_reload_interval
            )));
        }
        if let Some(foreign) = self
            .admin_ids
            .iter()
            .find(|id| !id.is_member_of(&self.trust_domain))
        {
            return Err(ServerError::Config(format!(
                "admin_ids holds {foreign}: the agent API only accepts X509-SVIDs of trust domain \
                 {}, so an admin ID must be in it",
                self.trust_domain
            )));
        }
        if let Some(db) = &self.datastore
            && db.connection_string.trim().is_empty()
        {
            return Err(ServerError::Config(format!(
                "DataStore \"sql\" connection_string is empty: give the {} database to use",
                db.engine
            )));
        }
        lanyard_telemetry::check_listeners(
            &self.health_checks,
            &self.telemetry,
            &[("bind_port", self.bind)],
        )?;
        if self
            .jwt_issuer
            .as_deref()
            .is_some_and(|iss| iss.is_empty() || iss.chars().any(char::is_control))
        {
            return Err(ServerError::Config(format!(
                "jwt_issuer {:?} is empty or holds control characters: give a URL such as \
                 https://oidc.example.org, or leave it out",
                self.jwt_issuer.as_deref().unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// The CA settings this configuration implies.
    pub fn ca_config(&self) -> lanyard_ca::CaConfig {
        lanyard_ca::CaConfig {
            ca_ttl: self.ca_ttl,
            key_type: self.ca_key_type,
            jwt_key_type: self.jwt_key_type,
            jwt_issuer: self.jwt_issuer.clone(),
        }
    }
}

/// The longest SVID lifetime that an active CA of lifetime `ca_ttl` can always honour.
pub fn largest_untruncated_ttl(ca_ttl: Duration) -> Duration {
    (ca_ttl / 6).min(Duration::from_secs(7 * 24 * 3600))
}

fn humanize(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        let td = TrustDomain::new("example.org").unwrap();
        ServerConfig::with_defaults(td, PathBuf::from("/tmp/x"))
    }

    #[test]
    fn defaults_are_valid() {
        config().validate().unwrap();
    }

    #[test]
    fn svid_ttls_the_ca_would_cut_short_are_warned_about_not_refused() {
        let mut c = config();
        assert!(c.warnings().is_empty());
        // SPIRE's sample server.conf.
        c.ca_ttl = Duration::from_secs(168 * 3600);
        c.default_x509_svid_ttl = Duration::from_secs(48 * 3600);
        c.agent_ttl = c.default_x509_svid_ttl;
        c.validate().unwrap();
        let warnings = c.warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("default_x509_svid_ttl 172800s")
                && warnings[0].contains("set default_x509_svid_ttl to 100800s or less"),
            "{warnings:?}"
        );
        assert!(warnings[1].starts_with("agent_ttl"), "{warnings:?}");

        let mut c = config();
        c.ca_ttl = Duration::from_secs(600);
        c.default_x509_svid_ttl = Duration::from_secs(60);
        c.agent_ttl = Duration::from_secs(60);
        let warnings = c.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("default_jwt_svid_ttl 300s")
                && warnings[0].contains("to 100s or less"),
            "{warnings:?}"
        );
        c.default_jwt_svid_ttl = Duration::from_secs(100);
        assert!(c.warnings().is_empty());
    }

    #[test]
    fn jwt_defaults_follow_spire() {
        let c = config();
        assert_eq!(c.default_jwt_svid_ttl, Duration::from_secs(300));
        assert_eq!(c.jwt_key_type, KeyType::EcP256);
        assert_eq!(c.ca_config().jwt_issuer, None);
    }

    #[test]
    fn refuses_empty_jwt_issuer_and_zero_jwt_ttl() {
        let mut c = config();
        c.jwt_issuer = Some(String::new());
        assert!(c.validate().unwrap_err().to_string().contains("jwt_issuer"));
        let mut c = config();
        c.default_jwt_svid_ttl = Duration::ZERO;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("default_jwt_svid_ttl"), "{err}");
    }

    #[test]
    fn refuses_zero_ttl() {
        let mut c = config();
        c.agent_ttl = Duration::ZERO;
        assert!(c.validate().unwrap_err().to_string().contains("agent_ttl"));
    }
}
