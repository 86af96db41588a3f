//! PostgreSQL: lib/pq URLs and libpq `key=value` lists into sqlx `postgres://` URLs.
//!
//! Both input forms carry the same libpq keys (in a URL they sit in the query string), so both
//! are read into one [`PgParams`] and rendered the same way.
//!
//! Accepted and dropped: `client_encoding=UTF8` (sqlx always speaks UTF-8).
//! `fallback_application_name` becomes `application_name` when that is absent.

use std::net::{IpAddr, Ipv6Addr};

use url::form_urlencoded;

use super::{
    ConnEngine, ConnStringError, Shown, decode_component, encode_component, is_dot_segment,
    is_hostname, kv, parse_url,
};
use crate::connstr::shared::{SeenKeys, push_userinfo};
use crate::connstr::tls_files::{TlsFiles, merge};

const ENGINE: ConnEngine = ConnEngine::Postgres;

/// Keys lib/pq or pgx understand that sqlx 0.9 cannot honour, with what to do instead.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "connect_timeout",
        "sqlx URLs have no connect timeout; remove it",
    ),
    ("channel_binding", NO_EQUIVALENT),
    ("gssencmode", NO_EQUIVALENT),
    ("keepalives", NO_EQUIVALENT),
    ("keepalives_count", NO_EQUIVALENT),
    ("keepalives_idle", NO_EQUIVALENT),
    ("keepalives_interval", NO_EQUIVALENT),
    ("krbspn", NO_EQUIVALENT),
    ("krbsrvname", NO_EQUIVALENT),
    ("load_balance_hosts", NO_EQUIVALENT),
    ("passfile", NO_EQUIVALENT),
    ("require_auth", NO_EQUIVALENT),
    ("requiressl", NO_EQUIVALENT),
    ("service", NO_EQUIVALENT),
    ("servicefile", NO_EQUIVALENT),
    ("sslcrl", NO_EQUIVALENT),
    ("sslinline", NO_EQUIVALENT),
    ("sslnegotiation", NO_EQUIVALENT),
    ("sslpassword", NO_EQUIVALENT),
    ("sslsni", NO_EQUIVALENT),
    ("target_session_attrs", NO_EQUIVALENT),
    ("tcp_user_timeout", NO_EQUIVALENT),
];
const NO_EQUIVALENT: &str = "sqlx has no equivalent setting; remove it";

/// Keys translated or accepted.
const KNOWN: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "application_name",
    "fallback_application_name",
    "options",
    "client_encoding",
];

/// Values of `sslmode` that libpq and sqlx both know.
const SSL_MODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// Translates either PostgreSQL form.
pub(super) fn to_url(s: &str, tls: &TlsFiles) -> Result<String, ConnStringError> {
    let mut params = if is_url(s) { from_url(s)? } else { from_kv(s)? };
    params.add_tls_files(tls)?;
    params.render()
}

/// lib/pq treats a string as a URL exactly when it starts with one of these schemes.
pub(super) fn is_url(s: &str) -> bool {
    let s = s.trim_start().as_bytes();
    ["postgres://", "postgresql://"]
        .iter()
        .any(|p| s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
}

#[derive(Debug)]
enum PgHost {
    /// A host name or IP address, reached over TCP.
    Tcp(String),
    /// A directory holding the server's Unix socket (`host=/var/run/postgresql`).
    SocketDir(String),
}

/// The settings both input forms produce.
#[derive(Debug, Default)]
struct PgParams {
    seen: SeenKeys,
    host: Option<PgHost>,
    hostaddr: Option<IpAddr>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
    sslmode: Option<&'static str>,
    sslrootcert: Option<String>,
    sslcert: Option<String>,
    sslkey: Option<String>,
    application_name: Option<String>,
    fallback_application_name: Option<String>,
    options: Option<String>,
}

fn from_kv(s: &str) -> Result<PgParams, ConnStringError> {
    let mut params = PgParams::default();

    // In `password=sec ret=x` the password was meant to be `sec ret`; the word after an unquoted
    // password may be its tail, so that word is never quoted back in an error.
    let mut after_bare_password = false;
    for pair in kv::pairs(s) {
        let pair = pair?;
        let hide_key = after_bare_password;
        after_bare_password = pair.key == "password" && !pair.quoted;
        params.set(pair.key, pair.value, hide_key)?;
    }
    Ok(params)
}

fn from_url(s: &str) -> Result<PgParams, ConnStringError> {
    let url = parse_url(ENGINE, s)?;
    let mut params = PgParams::default();

    if !url.username().is_empty() {
        params.set(
            "user",
            decode_component(url.username(), "user name")?,
            false,
        )?;
    }
    if let Some(password) = url.password() {
        params.set("password", decode_component(password, "password")?, false)?;
    }
    // A `host` query parameter overrides the authority host rather than duplicating it:
    // `postgres://localhost/db?host=/run/postgresql` is how sqlx spells a socket directory.
    let authority_host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => Some(decode_component(d, "host")?),
        Some(url::Host::Ipv4(ip)) => Some(ip.to_string()),
        Some(url::Host::Ipv6(ip)) => Some(ip.to_string()),
        _ => None,
    };
    if let Some(port) = url.port() {
        params.set("port", port.to_string(), false)?;
    }
    let path = url.path().trim_start_matches('/');
    if !path.is_empty() {
        params.set("dbname", decode_component(path, "database name")?, false)?;
    }
    for (key, value) in url.query_pairs() {
        params.set(&key, value.into_owned(), false)?;
    }
    if let (None, Some(host)) = (&params.host, authority_host) {
        params.host = Some(parse_host(host)?);
    }
    Ok(params)
}

impl PgParams {
    /// Adds the plugin config's TLS files. With a CA file and no `sslmode`, the mode is
    /// `verify-full`: naming a CA means the operator wants the server checked, host name
    /// included. (`require` with a CA becomes `verify-ca` at render, as in lib/pq.)
    fn add_tls_files(&mut self, tls: &TlsFiles) -> Result<(), ConnStringError> {
        merge(
            ENGINE,
            "root_ca_path",
            "sslrootcert",
            tls.root_ca.as_ref(),
            &mut self.sslrootcert,
        )?;
        merge(
            ENGINE,
            "client_cert_path",
            "sslcert",
            tls.client_cert.as_ref(),
            &mut self.sslcert,
        )?;
        merge(
            ENGINE,
            "client_key_path",
            "sslkey",
            tls.client_key.as_ref(),
            &mut self.sslkey,
        )?;
        if tls.root_ca.is_some() {
            match self.sslmode {
                None => self.sslmode = Some("verify-full"),
                Some("require" | "verify-ca" | "verify-full") => {}
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

    /// Applies one libpq key; `hide_key` keeps an unknown key out of the error message.
    fn set(&mut self, key: &str, value: String, hide_key: bool) -> Result<(), ConnStringError> {
        match key {
            "host" => self.once("host")?.host = Some(parse_host(value)?),
            "hostaddr" => {
                let ip = value
                    .parse()
                    .map_err(|_| invalid("hostaddr", &value, "must be an IP address"))?;
                self.once("hostaddr")?.hostaddr = Some(ip);
            }
            "port" => {
                let port = value
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| {
                        invalid("port", &value, "must be a single port number 1-65535")
                    })?;
                self.once("port")?.port = Some(port);
            }
            "user" => self.once("user")?.user = Some(value),
            "password" => self.once("password")?.password = Some(value),
            "dbname" => self.once("dbname")?.dbname = Some(value),
            "sslmode" => {
                let mode = SSL_MODES.iter().find(|m| **m == value).ok_or_else(|| {
                    invalid(
                        "sslmode",
                        &value,
                        "must be disable, allow, prefer, require, verify-ca or verify-full",
                    )
                })?;
                self.once("sslmode")?.sslmode = Some(mode);
            }
            "sslrootcert" => {
                self.once("sslrootcert")?.sslrootcert = Some(path("sslrootcert", value)?)
            }
            "sslcert" => self.once("sslcert")?.sslcert = Some(path("sslcert", value)?),
            "sslkey" => self.once("sslkey")?.sslkey = Some(path("sslkey", value)?),
            "application_name" => self.once("application_name")?.application_name = Some(value),
            "fallback_application_name" => {
                self.once("fallback_application_name")?
                    .fallback_application_name = Some(value);
            }
            "options" => self.once("options")?.options = Some(value),
            "client_encoding" => {
                // sqlx always sets UTF8; any other encoding would change how text is decoded.
                let utf8 =
                    value.eq_ignore_ascii_case("utf8") || value.eq_ignore_ascii_case("utf-8");
                if !utf8 {
                    return Err(invalid("client_encoding", &value, "only UTF8 is supported"));
                }
                self.once("client_encoding")?;
            }
            _ => {
                if let Some((known, reason)) = UNSUPPORTED.iter().find(|(k, _)| *k == key) {
                    return Err(unsupported(known, reason));
                }
                let key = if hide_key {
                    Shown::hidden()
                } else {
                    Shown::near_miss(
                        key,
                        KNOWN
                            .iter()
                            .chain(UNSUPPORTED.iter().map(|(k, _)| k))
                            .copied(),
                    )
                };
                return Err(ConnStringError::UnknownKey {
                    engine: ENGINE,
                    key,
                });
            }
        }
        Ok(())
    }

    /// Records `key` as set, refusing a second occurrence.
    fn once(&mut self, key: &'static str) -> Result<&mut Self, ConnStringError> {
        self.seen.record(ENGINE, key)?;
        Ok(self)
    }

    fn render(self) -> Result<String, ConnStringError> {
        let mut out = String::from("postgres://");

        push_userinfo(&mut out, self.user, self.password);

        // lib/pq defaults to localhost; with a socket directory the authority host is a
        // placeholder that sqlx's `host=` query parameter overrides.
        match &self.host {
            Some(PgHost::Tcp(h)) if h.contains(':') => out.push_str(&format!("[{h}]")),
            Some(PgHost::Tcp(h)) => out.push_str(h),
            Some(PgHost::SocketDir(_)) | None => out.push_str("localhost"),
        }
        if let Some(port) = self.port {
            out.push_str(&format!(":{port}"));
        }
        out.push('/');
        let dbname = self.dbname.filter(|d| !d.is_empty());
        let dot_segment = dbname.as_deref().is_some_and(is_dot_segment);
        if let Some(db) = dbname.as_ref().filter(|_| !dot_segment) {
            out.push_str(&encode_component(db));
        }

        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair(
            "sslmode",
            effective_sslmode(self.sslmode, self.sslrootcert.is_some()),
        );
        for (key, value) in [
            ("sslrootcert", &self.sslrootcert),
            ("sslcert", &self.sslcert),
            ("sslkey", &self.sslkey),
        ] {
            if let Some(value) = value {
                query.append_pair(key, value);
            }
        }
        if let Some(PgHost::SocketDir(dir)) = &self.host {
            query.append_pair("host", dir);
        }
        if let Some(ip) = self.hostaddr {
            query.append_pair("hostaddr", &ip.to_string());
        }
        if let Some(name) = self.application_name.or(self.fallback_application_name) {
            query.append_pair("application_name", &name);
        }
        if let Some(db) = dbname.filter(|_| dot_segment) {
            query.append_pair("dbname", &db);
        }
        if let Some(options) = &self.options {
            query.append_pair("options", options);
        }
        out.push('?');
        out.push_str(&query.finish());

        url::Url::parse(&out).map_err(|e| ConnStringError::InvalidUrl {
            engine: ENGINE,
            reason: e.to_string(),
        })?;
        Ok(out)
    }
}

/// lib/pq's default is `require` (stricter than libpq's `prefer`), and like libpq it verifies
/// the server against `sslrootcert` when one is given with `require`. sqlx's `require` never
/// verifies, so that case is spelt `verify-ca` to keep the check.
fn effective_sslmode(mode: Option<&'static str>, has_root_cert: bool) -> &'static str {
    match mode.unwrap_or("require") {
        "require" if has_root_cert => "verify-ca",
        mode => mode,
    }
}

fn parse_host(value: String) -> Result<PgHost, ConnStringError> {
    if value.contains(',') {
        return Err(invalid(
            "host",
            &value,
            "sqlx connects to one host; give a single host",
        ));
    }
    if value.starts_with('/') {
        return Ok(PgHost::SocketDir(value));
    }
    let bare = value.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<Ipv6Addr>().is_ok() {
        return Ok(PgHost::Tcp(bare.to_owned()));
    }
    if is_hostname(&value) {
        return Ok(PgHost::Tcp(value));
    }
    Err(invalid(
        "host",
        &value,
        "must be a host name, an IP address or an absolute Unix socket directory",
    ))
}

fn path(key: &'static str, value: String) -> Result<String, ConnStringError> {
    if value.is_empty() {
        return Err(invalid(key, &value, "must name a file"));
    }
    Ok(value)
}

fn invalid(key: &'static str, value: &str, rule: &'static str) -> ConnStringError {
    ConnStringError::InvalidValue {
        engine: ENGINE,
        key,
        value: Shown::new(value),
        rule,
    }
}

fn unsupported(key: &'static str, reason: &'static str) -> ConnStringError {
    ConnStringError::UnsupportedKey {
        engine: ENGINE,
        key,
        reason,
    }
}
