//! MySQL: go-sql-driver DSNs and `mysql://` URLs into sqlx `mysql://` URLs.
//!
//! go-sql-driver DSN grammar: `[user[:password]@][protocol[(address)]]/dbname[?k=v&...]`.
//! The last `/` starts the database name, the last `@` before it ends the credentials, and the
//! first `:` in the credentials ends the user name, so a password may hold `:`, `@` and `/`
//! unescaped. The database name is path-unescaped; parameter values are query-unescaped.
//!
//! Accepted and dropped, because they only steer Go's conversion of values and sqlx has its own:
//! `parseTime`, `loc`, `interpolateParams`, `allowNativePasswords=true`, and a `charset` list
//! starting with `utf8mb4` (sqlx's default charset).
//!
//! This file reads the two input forms; `params` holds what they set and the rule for each
//! key, `render` writes the sqlx URL.

mod params;
mod render;

use std::net::{Ipv4Addr, Ipv6Addr};

use super::tls_files::TlsFiles;
use super::{ConnEngine, ConnStringError, Shown, decode_component, is_hostname, parse_url};
use params::{MyAddr, MyParams};

const ENGINE: ConnEngine = ConnEngine::Mysql;

/// Network names Go's `net.Dial` knows, plus go-sql-driver's Cloud SQL dialer.
const GO_NETWORKS: &[&str] = &[
    "udp",
    "udp4",
    "udp6",
    "ip",
    "ip4",
    "ip6",
    "unixgram",
    "unixpacket",
    "cloudsql",
];

/// Translates either MySQL form.
pub(super) fn to_url(s: &str, tls: &TlsFiles) -> Result<String, ConnStringError> {
    let mut params = if is_url(s) {
        from_url(s)?
    } else {
        from_dsn(s)?
    };
    params.add_tls_files(tls)?;
    params.render()
}

/// Whether `s` is a `mysql://` URL rather than a go-sql-driver DSN.
pub(super) fn is_url(s: &str) -> bool {
    let s = s.trim_start().as_bytes();
    s.len() >= 8 && s[..8].eq_ignore_ascii_case(b"mysql://")
}

fn from_dsn(s: &str) -> Result<MyParams, ConnStringError> {
    let slash = s.rfind('/').ok_or(ConnStringError::MissingSlash)?;
    let (left, right) = (&s[..slash], &s[slash + 1..]);
    if right.contains('@') {
        // The last '/' sits inside the password: the DSN lacks its `/dbname`, and what follows
        // the slash is the password's tail, not a database name or parameters.
        return Err(ConnStringError::MissingSlash);
    }

    let (credentials, net) = match left.rfind('@') {
        Some(at) => (Some(&left[..at]), &left[at + 1..]),
        None => (None, left),
    };
    let (protocol, address) = match net.find('(') {
        Some(open) => match net[open + 1..].strip_suffix(')') {
            Some(address) => (&net[..open], Some(address)),
            None => return Err(ConnStringError::UnclosedAddress),
        },
        None => (net, None),
    };
    let addr = match protocol {
        "" | "tcp" | "tcp4" | "tcp6" => tcp_address(address.unwrap_or(""))?,
        "unix" => MyAddr::Socket(
            address
                .filter(|a| !a.is_empty())
                .unwrap_or("/tmp/mysql.sock")
                .to_owned(),
        ),
        other => {
            // Only name Go's own network names: when the '@' before the protocol is missing,
            // this text is the tail of the password.
            let protocol = if GO_NETWORKS.contains(&other) {
                Shown::new(other)
            } else {
                Shown::hidden()
            };
            return Err(ConnStringError::UnsupportedProtocol { protocol });
        }
    };

    let mut params = MyParams::new(addr);
    if let Some(credentials) = credentials {
        let (user, password) = match credentials.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (credentials, None),
        };
        params.user = Some(user.to_owned());
        params.password = password.map(str::to_owned);
    }

    let (db, query) = right.split_once('?').unwrap_or((right, ""));
    params.dbname = Some(decode_component(db, "database name")?);

    let mut at = slash + 1 + db.len() + 1;
    for param in query.split('&') {
        if !param.is_empty() {
            let (key, value) = param
                .split_once('=')
                .ok_or(ConnStringError::ParamWithoutValue { at })?;
            let value = decode_component(&value.replace('+', " "), "parameter value")?;
            params.set_go(key, value)?;
        }
        at += param.len() + 1;
    }
    Ok(params)
}

fn from_url(s: &str) -> Result<MyParams, ConnStringError> {
    let url = parse_url(ENGINE, s)?;
    let host = match url.host() {
        Some(url::Host::Domain(d)) if is_hostname(d) => d.to_owned(),
        Some(url::Host::Domain("")) => "localhost".to_owned(),
        Some(url::Host::Domain(d)) => {
            return Err(invalid("host", d, "must be a host name or an IP address"));
        }
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => "localhost".to_owned(),
    };
    let mut params = MyParams::new(MyAddr::Tcp {
        host,
        port: url.port(),
    });

    if !url.username().is_empty() {
        params.user = Some(decode_component(url.username(), "user name")?);
    }
    if let Some(password) = url.password() {
        params.password = Some(decode_component(password, "password")?);
    }
    let path = url.path().trim_start_matches('/');
    if !path.is_empty() {
        params.dbname = Some(decode_component(path, "database name")?);
    }
    for (key, value) in url.query_pairs() {
        params.set_sqlx(&key, value.into_owned())?;
    }
    Ok(params)
}

/// `host:port`, `[v6]:port`, `host` or empty (go-sql-driver's default, 127.0.0.1:3306).
fn tcp_address(address: &str) -> Result<MyAddr, ConnStringError> {
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (v6, port) = rest
            .split_once(']')
            .ok_or_else(|| invalid("address", address, "an IPv6 address needs a closing ']'"))?;
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(invalid(
                "address",
                address,
                "brackets must hold an IPv6 address",
            ));
        }
        match port {
            "" => (v6, None),
            p => match p.strip_prefix(':') {
                Some(p) => (v6, Some(p)),
                None => return Err(invalid("address", address, "write [ipv6]:port")),
            },
        }
    } else if address.matches(':').count() > 1 {
        return Err(invalid(
            "address",
            address,
            "put an IPv6 address in brackets: [ipv6]:port",
        ));
    } else {
        match address.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        }
    };

    let port = port
        .map(|p| p.parse::<u16>().ok().filter(|p| *p != 0))
        .map(|p| p.ok_or_else(|| invalid("address", address, "port must be 1-65535")))
        .transpose()?;
    let host = match host {
        "" => Ipv4Addr::LOCALHOST.to_string(),
        h if is_hostname(h) || h.parse::<Ipv6Addr>().is_ok() => h.to_owned(),
        _ => return Err(invalid("address", address, "must be host:port")),
    };
    Ok(MyAddr::Tcp { host, port })
}

fn invalid(key: &'static str, value: &str, rule: &'static str) -> ConnStringError {
    ConnStringError::InvalidValue {
        engine: ENGINE,
        key,
        value: Shown::new(value),
        rule,
    }
}
