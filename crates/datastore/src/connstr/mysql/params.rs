//! The settings a MySQL connection string carries, and the rule for each go-sql-driver DSN
//! parameter and each sqlx URL query parameter.

use super::{ENGINE, invalid};
use crate::connstr::shared::SeenKeys;
use crate::connstr::tls_files::{TlsFiles, merge};
use crate::connstr::{ConnStringError, Shown};

/// go-sql-driver parameters that sqlx 0.9 cannot honour, with what to do instead.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("timeout", TIMEOUT),
    ("readTimeout", TIMEOUT),
    ("writeTimeout", TIMEOUT),
    ("allowAllFiles", NO_EQUIVALENT),
    ("allowCleartextPasswords", NO_EQUIVALENT),
    ("allowFallbackToPlaintext", NO_EQUIVALENT),
    ("allowOldPasswords", NO_EQUIVALENT),
    ("checkConnLiveness", NO_EQUIVALENT),
    ("clientFoundRows", NO_EQUIVALENT),
    ("columnsWithAlias", NO_EQUIVALENT),
    ("compress", NO_EQUIVALENT),
    ("connectionAttributes", NO_EQUIVALENT),
    ("maxAllowedPacket", NO_EQUIVALENT),
    ("multiStatements", NO_EQUIVALENT),
    ("rejectReadOnly", NO_EQUIVALENT),
    ("serverPubKey", NO_EQUIVALENT),
    ("strict", NO_EQUIVALENT),
    ("timeTruncate", NO_EQUIVALENT),
];
const TIMEOUT: &str = "sqlx URLs have no dial or I/O timeouts; remove it";
const NO_EQUIVALENT: &str = "sqlx has no equivalent setting; remove it";

/// go-sql-driver parameters translated or accepted.
const GO_KNOWN: &[&str] = &[
    "tls",
    "parseTime",
    "interpolateParams",
    "allowNativePasswords",
    "loc",
    "charset",
    "collation",
    "time_zone",
];

/// sqlx URL parameters accepted in `mysql://` input.
const SQLX_KNOWN: &[&str] = &[
    "ssl-mode",
    "sslmode",
    "ssl-ca",
    "sslca",
    "ssl-cert",
    "sslcert",
    "ssl-key",
    "sslkey",
    "socket",
    "charset",
    "collation",
    "timezone",
    "time-zone",
    "statement-cache-capacity",
];

/// sqlx `ssl-mode` values, in the spelling sqlx itself prints.
const SSL_MODES: &[&str] = &[
    "DISABLED",
    "PREFERRED",
    "REQUIRED",
    "VERIFY_CA",
    "VERIFY_IDENTITY",
];

/// Where the server is.
#[derive(Debug)]
pub(super) enum MyAddr {
    Tcp { host: String, port: Option<u16> },
    Socket(String),
}

/// The settings both input forms produce.
#[derive(Debug)]
pub(super) struct MyParams {
    seen: SeenKeys,
    pub(super) user: Option<String>,
    pub(super) password: Option<String>,
    pub(super) addr: MyAddr,
    pub(super) dbname: Option<String>,
    pub(super) ssl_mode: Option<&'static str>,
    /// A go-sql-driver `tls=<name>`: usable only with a CA file from the plugin config.
    named_tls: Option<Shown>,
    pub(super) ssl_ca: Option<String>,
    pub(super) ssl_cert: Option<String>,
    pub(super) ssl_key: Option<String>,
    pub(super) charset: Option<String>,
    pub(super) collation: Option<String>,
    pub(super) timezone: Option<String>,
    pub(super) statement_cache_capacity: Option<usize>,
}

impl MyParams {
    pub(super) fn new(addr: MyAddr) -> Self {
        MyParams {
            seen: SeenKeys::default(),
            user: None,
            password: None,
            addr,
            dbname: None,
            ssl_mode: None,
            named_tls: None,
            ssl_ca: None,
            ssl_cert: None,
            ssl_key: None,
            charset: None,
            collation: None,
            timezone: None,
            statement_cache_capacity: None,
        }
    }
}

impl MyParams {
    /// Applies one go-sql-driver DSN parameter.
    pub(super) fn set_go(&mut self, key: &str, value: String) -> Result<(), ConnStringError> {
        match key {
            "tls" => {
                let mode = match value.as_str() {
                    "true" | "TRUE" | "True" | "1" => "VERIFY_IDENTITY",
                    "skip-verify" => "REQUIRED",
                    "preferred" => "PREFERRED",
                    "false" | "FALSE" | "False" | "0" => "DISABLED",
                    // SPIRE registers a TLS config from root_ca_path and the client files,
                    // verifying the chain and the host name; add_tls_files checks the CA.
                    name => {
                        self.named_tls = Some(Shown::new(name));
                        "VERIFY_IDENTITY"
                    }
                };
                self.once("tls")?.ssl_mode = Some(mode);
            }
            "parseTime" => {
                go_bool("parseTime", &value)?;
            }
            "interpolateParams" => {
                go_bool("interpolateParams", &value)?;
            }
            "allowNativePasswords" => {
                if !go_bool("allowNativePasswords", &value)? {
                    return Err(invalid(
                        "allowNativePasswords",
                        &value,
                        "sqlx always allows mysql_native_password; only true is accepted",
                    ));
                }
            }
            "loc" => {}
            "charset" => {
                let first = value.split(',').next().unwrap_or_default();
                if !first.eq_ignore_ascii_case("utf8mb4") {
                    if value.contains(',') {
                        return Err(invalid(
                            "charset",
                            &value,
                            "sqlx has no charset fallback; a list must start with utf8mb4",
                        ));
                    }
                    self.once("charset")?.charset = Some(value);
                }
            }
            "collation" => self.once("collation")?.collation = Some(value),
            "time_zone" => {
                // go-sql-driver sends `SET time_zone=<value>` verbatim, so the value carries
                // its own SQL quotes; sqlx quotes it itself.
                let bare = value
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .unwrap_or(&value)
                    .to_owned();
                self.once("timezone")?.timezone = Some(bare);
            }
            _ => {
                if let Some((known, reason)) = UNSUPPORTED.iter().find(|(k, _)| *k == key) {
                    return Err(unsupported(known, reason));
                }
                // go-sql-driver would have sent it as `SET key=value`; sqlx cannot.
                let known = GO_KNOWN
                    .iter()
                    .chain(UNSUPPORTED.iter().map(|(k, _)| k))
                    .copied();
                let key = Shown::near_miss(key, known);
                return Err(ConnStringError::UnknownKey {
                    engine: ENGINE,
                    key,
                });
            }
        }
        Ok(())
    }

    /// Adds the plugin config's TLS files. With a CA file and no TLS mode, the mode is
    /// `VERIFY_IDENTITY`: naming a CA means the operator wants the server checked, host name
    /// included.
    pub(super) fn add_tls_files(&mut self, tls: &TlsFiles) -> Result<(), ConnStringError> {
        if let Some(name) = self.named_tls.take()
            && tls.root_ca.is_none()
        {
            return Err(ConnStringError::NamedTlsConfig { name });
        }
        merge(
            ENGINE,
            "root_ca_path",
            "ssl-ca",
            tls.root_ca.as_ref(),
            &mut self.ssl_ca,
        )?;
        merge(
            ENGINE,
            "client_cert_path",
            "ssl-cert",
            tls.client_cert.as_ref(),
            &mut self.ssl_cert,
        )?;
        merge(
            ENGINE,
            "client_key_path",
            "ssl-key",
            tls.client_key.as_ref(),
            &mut self.ssl_key,
        )?;
        if tls.root_ca.is_some() {
            match self.ssl_mode {
                None => self.ssl_mode = Some("VERIFY_IDENTITY"),
                Some("VERIFY_CA" | "VERIFY_IDENTITY") => {}
                Some(mode) => {
                    return Err(ConnStringError::CaNotVerified {
                        engine: ENGINE,
                        mode,
                    });
                }
            }
        }
        Ok(())
    }

    /// Applies one sqlx URL query parameter.
    pub(super) fn set_sqlx(&mut self, key: &str, value: String) -> Result<(), ConnStringError> {
        match key {
            "ssl-mode" | "sslmode" => {
                let mode = SSL_MODES
                    .iter()
                    .find(|m| m.eq_ignore_ascii_case(&value))
                    .ok_or_else(|| {
                        invalid(
                            "ssl-mode",
                            &value,
                            "must be DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY",
                        )
                    })?;
                self.once("ssl-mode")?.ssl_mode = Some(mode);
            }
            "ssl-ca" | "sslca" => self.once("ssl-ca")?.ssl_ca = Some(file("ssl-ca", value)?),
            "ssl-cert" | "sslcert" => {
                self.once("ssl-cert")?.ssl_cert = Some(file("ssl-cert", value)?)
            }
            "ssl-key" | "sslkey" => self.once("ssl-key")?.ssl_key = Some(file("ssl-key", value)?),
            "socket" => {
                let socket = file("socket", value)?;
                self.once("socket")?.addr = MyAddr::Socket(socket);
            }
            "charset" => self.once("charset")?.charset = Some(value),
            "collation" => self.once("collation")?.collation = Some(value),
            "timezone" | "time-zone" => self.once("timezone")?.timezone = Some(value),
            "statement-cache-capacity" => {
                let capacity = value
                    .parse()
                    .map_err(|_| invalid("statement-cache-capacity", &value, "must be a count"))?;
                self.once("statement-cache-capacity")?
                    .statement_cache_capacity = Some(capacity);
            }
            _ => {
                let key = Shown::near_miss(key, SQLX_KNOWN.iter().copied());
                return Err(ConnStringError::UnknownKey {
                    engine: ENGINE,
                    key,
                });
            }
        }
        Ok(())
    }

    fn once(&mut self, key: &'static str) -> Result<&mut Self, ConnStringError> {
        self.seen.record(ENGINE, key)?;
        Ok(self)
    }
}

/// go-sql-driver's booleans: true, TRUE, True, 1 and false, FALSE, False, 0.
fn go_bool(key: &'static str, value: &str) -> Result<bool, ConnStringError> {
    match value {
        "true" | "TRUE" | "True" | "1" => Ok(true),
        "false" | "FALSE" | "False" | "0" => Ok(false),
        _ => Err(invalid(key, value, "must be true or false")),
    }
}

fn file(key: &'static str, value: String) -> Result<String, ConnStringError> {
    if value.is_empty() {
        return Err(invalid(key, &value, "must name a file"));
    }
    Ok(value)
}

fn unsupported(key: &'static str, reason: &'static str) -> ConnStringError {
    ConnStringError::UnsupportedKey {
        engine: ENGINE,
        key,
        reason,
    }
}
