//! Translation of SPIRE `DataStore "sql"` connection strings into URLs that sqlx parses.
//!
//! SPIRE hands `connection_string` straight to Go drivers: lib/pq for PostgreSQL (a
//! `postgres://` URL or a libpq `key=value` list) and go-sql-driver for MySQL (a
//! `user:pass@tcp(host:port)/db?params` DSN). Operators moving to Lanyard keep those strings, so
//! this module reads each Go grammar and emits the equivalent `postgres://` or `mysql://` URL.
//!
//! Policy:
//! - strict: every key is either translated, refused with an error naming it, or (for a short,
//!   documented list of Go-only knobs with no effect on sqlx) accepted and dropped;
//! - never weaker TLS than the Go driver would have used (lib/pq defaults to `sslmode=require`,
//!   so an absent `sslmode` becomes `require`);
//! - no error message contains the password, and [`redact`] hides it from any of the forms.
//!
//! What it does not do: open connections, read files named by TLS parameters, or consult
//! `PG*` environment variables (sqlx does that itself when it parses the URL).

mod kv;
mod mysql;
mod postgres;
mod redact;
mod shared;
mod tls_files;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_props;

use std::fmt;

pub use redact::redact;
pub use tls_files::TlsFiles;

/// The database engine a connection string is meant for (SPIRE's `database_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnEngine {
    /// PostgreSQL: a `postgres://` / `postgresql://` URL or a libpq `key=value` list.
    Postgres,
    /// MySQL: a `mysql://` URL or a go-sql-driver DSN.
    Mysql,
}

impl fmt::Display for ConnEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnEngine::Postgres => "PostgreSQL",
            ConnEngine::Mysql => "MySQL",
        })
    }
}

/// Converts a SPIRE `connection_string` into a URL accepted by sqlx 0.9's
/// `PgConnectOptions::from_str` (for [`ConnEngine::Postgres`]) or `MySqlConnectOptions::from_str`
/// (for [`ConnEngine::Mysql`]).
///
/// Strings already in URL form are re-parsed with the same key rules and re-emitted in normal
/// form, so a URL with a misspelt or unsupported parameter is refused too.
///
/// # Errors
///
/// [`ConnStringError`] names the offending key, byte offset or rule; it never contains the
/// password.
pub fn to_url(engine: ConnEngine, s: &str) -> Result<String, ConnStringError> {
    to_url_with_tls(engine, s, &TlsFiles::default())
}

/// Like [`to_url`], with TLS files given outside the string (SPIRE's `root_ca_path`,
/// `client_cert_path`, `client_key_path`) added as the engine's URL parameters:
/// `sslrootcert`, `sslcert`, `sslkey` for PostgreSQL, `ssl-ca`, `ssl-cert`, `ssl-key` for
/// MySQL.
///
/// A CA file makes the connection verify the server: when the string sets no TLS mode the
/// mode becomes `verify-full` / `VERIFY_IDENTITY`; PostgreSQL's `require` becomes `verify-ca`
/// as lib/pq does with a root certificate; a go-sql-driver `tls=<name>` (the TLS config SPIRE
/// registers from these settings) becomes `VERIFY_IDENTITY`.
///
/// # Errors
///
/// As [`to_url`], and [`ConnStringError::TlsFileTwice`] when the string names the same file,
/// [`ConnStringError::CaNotVerified`] when its TLS mode would not use the CA file.
pub fn to_url_with_tls(
    engine: ConnEngine,
    s: &str,
    tls: &TlsFiles,
) -> Result<String, ConnStringError> {
    if s.trim().is_empty() {
        return Err(ConnStringError::Empty { engine });
    }
    match engine {
        ConnEngine::Postgres => postgres::to_url(s, tls),
        ConnEngine::Mysql => mysql::to_url(s, tls),
    }
}

/// Why a connection string could not be translated.
///
/// Messages quote keys and non-secret values only when they look like identifiers (see
/// [`Shown`]), and unknown keys only when they are near misses of real ones; text that might
/// be a fragment of a mistyped password is left out or replaced by its byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnStringError {
    /// The string is empty or only whitespace.
    #[error("{engine} connection string is empty")]
    Empty {
        /// Engine the string was read for.
        engine: ConnEngine,
    },
    /// A single-quoted libpq value has no closing quote.
    #[error("unterminated quote in connection string at byte {at}")]
    UnterminatedQuote {
        /// Byte offset of the opening quote.
        at: usize,
    },
    /// A libpq value ends in a backslash that escapes nothing.
    #[error(
        "dangling backslash in connection string at byte {at}: a backslash must escape a character"
    )]
    DanglingBackslash {
        /// Byte offset of the backslash.
        at: usize,
    },
    /// A libpq word is not followed by `=`.
    #[error("missing '=' after the key starting at byte {at} in PostgreSQL connection string")]
    MissingEquals {
        /// Byte offset of the key.
        at: usize,
    },
    /// A libpq `=` has no key before it.
    #[error("'=' without a key at byte {at} in PostgreSQL connection string")]
    EmptyKey {
        /// Byte offset of the `=`.
        at: usize,
    },
    /// The key is not known to the Go driver grammar Lanyard translates.
    #[error("unknown key {key} in {engine} connection string")]
    UnknownKey {
        /// Engine the string was read for.
        engine: ConnEngine,
        /// The key, if it is safe to show.
        key: Shown,
    },
    /// The key is known but sqlx has no equivalent, so honouring it is impossible.
    #[error("key \"{key}\" in {engine} connection string is not supported: {reason}")]
    UnsupportedKey {
        /// Engine the string was read for.
        engine: ConnEngine,
        /// The key.
        key: &'static str,
        /// What to do instead.
        reason: &'static str,
    },
    /// The same setting is given twice (also: user name in both the URL and the query).
    #[error("key \"{key}\" given twice in {engine} connection string: give each setting once")]
    DuplicateKey {
        /// Engine the string was read for.
        engine: ConnEngine,
        /// The key.
        key: &'static str,
    },
    /// A value breaks the rule for its key.
    #[error("invalid value {value} for key \"{key}\" in {engine} connection string: {rule}")]
    InvalidValue {
        /// Engine the string was read for.
        engine: ConnEngine,
        /// The key.
        key: &'static str,
        /// The value, if it is safe to show.
        value: Shown,
        /// The rule the value breaks.
        rule: &'static str,
    },
    /// A URL-form string does not parse as a URL.
    #[error("invalid {engine} URL: {reason}")]
    InvalidUrl {
        /// Engine the string was read for.
        engine: ConnEngine,
        /// The URL parser's reason (it never repeats the input).
        reason: String,
    },
    /// A URL has an `@` after the host, the mark of an unescaped `/`, `?` or `#` in the password.
    #[error(
        "{engine} URL has '@' after the host: percent-encode '@', '/', '?' and '#' in the user \
         name and password"
    )]
    AtAfterHost {
        /// Engine the string was read for.
        engine: ConnEngine,
    },
    /// A go-sql-driver DSN has no `/` before the database name.
    #[error("MySQL DSN has no '/' before the database name: write user:pass@tcp(host:port)/dbname")]
    MissingSlash,
    /// A go-sql-driver address has an opening `(` but no closing `)` before the `/`.
    #[error("MySQL DSN network address is not closed with ')' before the '/'")]
    UnclosedAddress,
    /// A go-sql-driver protocol other than `tcp` or `unix`.
    #[error("MySQL DSN protocol {protocol} is not supported: use tcp(host:port) or unix(/path)")]
    UnsupportedProtocol {
        /// The protocol, if it is safe to show.
        protocol: Shown,
    },
    /// A go-sql-driver `tls=<name>` naming a TLS config registered in Go code, without the
    /// `root_ca_path` from which SPIRE (and Lanyard) builds it.
    #[error(
        "MySQL DSN tls={name} names a TLS config SPIRE builds from root_ca_path, which is not \
         set: set root_ca_path (and client_cert_path / client_key_path for a client \
         certificate) in the DataStore \"sql\" plugin config"
    )]
    NamedTlsConfig {
        /// The config name, if it is safe to show.
        name: Shown,
    },
    /// A TLS file is named both in the plugin config and in the connection string.
    #[error(
        "{setting} and the {engine} connection string's {param} both name a TLS file: give it \
         in one place"
    )]
    TlsFileTwice {
        /// Engine the string was read for.
        engine: ConnEngine,
        /// The plugin setting (`root_ca_path`, `client_cert_path`, `client_key_path`).
        setting: &'static str,
        /// The connection string parameter naming the same file.
        param: &'static str,
    },
    /// `root_ca_path` is set but the string's TLS mode does not verify the server, so the CA
    /// file would go unused.
    #[error(
        "root_ca_path is set but the {engine} connection string's TLS mode {mode} does not \
         verify the server: remove the mode (the CA then verifies the server and its name) or \
         remove root_ca_path"
    )]
    CaNotVerified {
        /// Engine the string was read for.
        engine: ConnEngine,
        /// The mode, as written in the translated URL.
        mode: &'static str,
    },
    /// A go-sql-driver parameter without `=`.
    #[error("MySQL DSN parameter at byte {at} has no '=': write key=value")]
    ParamWithoutValue {
        /// Byte offset of the parameter.
        at: usize,
    },
    /// A `%` escape that is not followed by two hex digits, or decodes to invalid UTF-8.
    #[error("invalid percent-encoding in {what}: '%' must be followed by two hex digits of UTF-8")]
    BadPercentEncoding {
        /// Which part of the string.
        what: &'static str,
    },
}

/// Text from the connection string as it appears in an error message.
///
/// Only short identifier-like text (ASCII letters, digits, `-`, `_`, `.`, at most 64 bytes) is
/// shown; anything else, and anything that might be the tail of an unquoted password, is
/// printed as `(not shown)`. This is what keeps passwords out of error messages even when a
/// mistyped string puts part of one where a key was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown(Option<String>);

impl Shown {
    /// Shows `s` if it looks like an identifier, hides it otherwise.
    pub(crate) fn new(s: &str) -> Self {
        let safe = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        Shown(safe.then(|| s.to_owned()))
    }

    /// Shows an unknown key only when it is a near miss (edit distance 1 or 2) of a key in
    /// `known`: that is the typo an operator needs to see, while a key far from every real
    /// one is more likely the tail of a mangled password.
    pub(crate) fn near_miss<'k>(key: &str, known: impl IntoIterator<Item = &'k str>) -> Self {
        let near = known.into_iter().any(|k| edit_distance(key, k) <= 2);
        if near {
            Shown::new(key)
        } else {
            Shown::hidden()
        }
    }

    /// Never shows the text.
    pub(crate) fn hidden() -> Self {
        Shown(None)
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(s) => write!(f, "\"{s}\""),
            None => f.write_str("(not shown)"),
        }
    }
}

/// Levenshtein distance over bytes, capped early: keys are short ASCII.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > 2 || a.len() > 64 {
        return usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Characters left as-is in user names, passwords and database names: RFC 3986 unreserved.
/// Everything else is percent-encoded, which both `url` and sqlx decode back.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one URL component (user, password, database name).
fn encode_component(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

/// Decodes `%XX` escapes strictly: a stray `%` or invalid UTF-8 is an error, not passed through.
fn decode_component(s: &str, what: &'static str) -> Result<String, ConnStringError> {
    let bytes = s.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return Err(ConnStringError::BadPercentEncoding { what });
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ConnStringError::BadPercentEncoding { what })
}

/// URL parsers drop `.` and `..` path segments (even percent-encoded), so such a database name
/// cannot travel in the path.
fn is_dot_segment(s: &str) -> bool {
    s == "." || s == ".."
}

/// Whether `s` is a host name sqlx can put in a URL authority unescaped.
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// Parses a URL-form string and refuses the shapes that usually mean a mangled password.
fn parse_url(engine: ConnEngine, s: &str) -> Result<url::Url, ConnStringError> {
    let url = url::Url::parse(s).map_err(|e| ConnStringError::InvalidUrl {
        engine,
        reason: e.to_string(),
    })?;

    // The URL parser ends the authority at the first '/', '?' or '#'. If the password held
    // one of those unescaped, the real '@' lands in the path or query, and the password's tail
    // would be read as a database name or a query key and could end up in an error message.
    let after_host = url.path().contains('@')
        || url.query().is_some_and(|q| q.contains('@'))
        || url.fragment().is_some_and(|f| f.contains('@'));
    if after_host {
        return Err(ConnStringError::AtAfterHost { engine });
    }
    if url.fragment().is_some() {
        return Err(ConnStringError::InvalidUrl {
            engine,
            reason: "a connection URL has no '#' fragment".to_owned(),
        });
    }
    Ok(url)
}
