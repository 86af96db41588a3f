//! Opening connection pools: SQLite files and memory, PostgreSQL and MySQL servers, each with
//! the per-connection settings the datastore relies on.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

use super::config::{DatabaseConfig, Engine};
use super::redact::scrub;
use crate::connstr::{self, ConnEngine, TlsFiles, redact};
use crate::error::DatastoreError;

/// How long a SQLite write waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections to a SQLite file. SQLite allows one writer at a time; the rest serve reads.
const FILE_POOL_SIZE: u32 = 8;

/// Connections to a database server unless the configuration says otherwise.
const DEFAULT_SERVER_POOL_SIZE: u32 = 8;

static DRIVERS: Once = Once::new();

/// Registers sqlx's drivers with its `Any` layer; the first call does it, later ones nothing.
fn install_drivers() {
    DRIVERS.call_once(sqlx::any::install_default_drivers);
}

/// A pool on the SQLite file at `path` (created if missing): WAL journal, `synchronous=FULL` so
/// a committed write is on disk, foreign keys enforced, and a busy timeout for writers.
pub(crate) async fn sqlite_file(path: &Path) -> Result<AnyPool, DatastoreError> {
    install_drivers();
    let open_error = |source| DatastoreError::Open {
        path: path.to_owned(),
        source,
    };
    let url = sqlite_url(path).map_err(open_error)?;
    let options = AnyConnectOptions::from_str(&url).map_err(open_error)?;
    // One connection first: the pool would retry a file it cannot use (a malformed database)
    // until its 30 s acquire timeout and then report only that it timed out.
    let mut probe = AnyConnection::connect_with(&options)
        .await
        .map_err(open_error)?;
    let probed = sqlite_pragmas(&mut probe).await;
    let _ = probe.close().await;
    probed.map_err(open_error)?;
    AnyPoolOptions::new()
        .max_connections(FILE_POOL_SIZE)
        .after_connect(|conn, _| Box::pin(async move { sqlite_pragmas(conn).await }))
        .connect_with(options)
        .await
        .map_err(open_error)
}

/// The settings every connection to a SQLite file gets.
async fn sqlite_pragmas(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    for pragma in [
        // Before anything that may wait on another connection's lock.
        busy_timeout_pragma(),
        "PRAGMA foreign_keys = ON".to_owned(),
        "PRAGMA journal_mode = WAL".to_owned(),
        "PRAGMA synchronous = FULL".to_owned(),
    ] {
        conn.execute(sqlx::AssertSqlSafe(pragma)).await?;
    }
    Ok(())
}

/// A pool on a fresh in-memory SQLite database.
pub(crate) async fn sqlite_memory() -> Result<AnyPool, DatastoreError> {
    install_drivers();
    let options = AnyConnectOptions::from_str("sqlite::memory:")?;
    // Each connection to `:memory:` is its own database, so the pool holds exactly one
    // connection and never closes it for idleness or age.
    Ok(AnyPoolOptions::new()
        .min_connections(1)
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(sqlx::AssertSqlSafe(busy_timeout_pragma()))
                    .await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?)
}

/// A pool on the PostgreSQL or MySQL server at `url` (already a URL), for `config`.
pub(crate) async fn server(config: &DatabaseConfig, url: &str) -> Result<AnyPool, DatastoreError> {
    install_drivers();
    let connect_error = |e: sqlx::Error| DatastoreError::Connect {
        engine: config.engine.name().to_owned(),
        target: redact(url),
        reason: scrub(&e.to_string(), url),
    };
    let options = AnyConnectOptions::from_str(url).map_err(connect_error)?;
    let size = match config.max_open_conns {
        0 => DEFAULT_SERVER_POOL_SIZE,
        n => n,
    };
    let mut pool = AnyPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(config.connect_timeout);
    if config.engine == Engine::Mysql {
        // Writers serialize on the write_lock row and then must see every earlier commit;
        // readers ask for REPEATABLE READ per transaction (see Dialect::before_read).
        pool = pool.after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    .await?;
                Ok(())
            })
        });
    }
    match pool.connect_with(options.clone()).await {
        Ok(pool) => Ok(pool),
        // The pool retries unreachable servers until the timeout and then reports only that it
        // timed out; one direct attempt recovers the reason (refused, unknown host, TLS).
        Err(sqlx::Error::PoolTimedOut) => match AnyConnection::connect_with(&options).await {
            Ok(conn) => {
                let _ = conn.close().await;
                Err(connect_error(sqlx::Error::PoolTimedOut))
            }
            Err(e) => Err(connect_error(e)),
        },
        Err(e) => Err(connect_error(e)),
    }
}

/// The SQLite file `config` names. TLS files are refused: they would be silently unused.
pub(crate) fn sqlite_path(config: &DatabaseConfig) -> Result<&Path, DatastoreError> {
    if let Some(key) = tls_keys(config).find_map(|(key, path)| path.map(|_| key)) {
        return Err(DatastoreError::InvalidInput(format!(
            "{key} is set for a sqlite3 datastore: TLS settings apply to postgres and mysql only"
        )));
    }
    let path = &config.connection_string;
    // A server URL given with the wrong database_type would otherwise become a file name, and
    // its password part of every "cannot open" message.
    if let Some((scheme, _)) = path.split_once("://") {
        return Err(DatastoreError::InvalidInput(format!(
            "database_type sqlite3 takes a file path, but connection_string is a {scheme}:// \
             URL: set database_type to the server's engine, or give the SQLite file's path"
        )));
    }
    if path.contains('?') {
        return Err(DatastoreError::InvalidInput(
            "a sqlite3 connection_string is the database file's path: URI parameters ('?...') \
             are not accepted (Lanyard opens SQLite with its own settings)"
                .to_owned(),
        ));
    }
    Ok(Path::new(path))
}

/// The sqlx URL for a server connection string (a URL, or a SPIRE-style string: libpq
/// `key=value` list, go-sql-driver DSN, translated to one), with `config`'s TLS files added
/// as the engine's parameters.
pub(crate) fn server_url(config: &DatabaseConfig) -> Result<String, DatastoreError> {
    let engine = config.engine;
    let conn_engine = match engine {
        Engine::Postgres => ConnEngine::Postgres,
        Engine::Mysql => ConnEngine::Mysql,
        Engine::Sqlite => {
            return Err(DatastoreError::InvalidInput(
                "sqlite takes a file path, not a server connection string".to_owned(),
            ));
        }
    };
    let tls = tls_files(config)?;
    let connection_string = &config.connection_string;
    // The string is not echoed: one that does not parse may be nothing but a password, which
    // redaction cannot recognise. The parse error names the offending key or byte offset.
    connstr::to_url_with_tls(conn_engine, connection_string, &tls).map_err(|e| {
        DatastoreError::InvalidInput(format!("{engine} connection string cannot be used: {e}"))
    })
}

/// The TLS file settings with SPIRE's names.
fn tls_keys(config: &DatabaseConfig) -> impl Iterator<Item = (&'static str, Option<&PathBuf>)> {
    [
        ("root_ca_path", config.root_ca_path.as_ref()),
        ("client_cert_path", config.client_cert_path.as_ref()),
        ("client_key_path", config.client_key_path.as_ref()),
    ]
    .into_iter()
}

/// `config`'s TLS files as URL parameter values: UTF-8 paths, the client certificate and its
/// key given together.
fn tls_files(config: &DatabaseConfig) -> Result<TlsFiles, DatastoreError> {
    match (&config.client_cert_path, &config.client_key_path) {
        (Some(_), None) => return Err(half_pair("client_cert_path", "client_key_path")),
        (None, Some(_)) => return Err(half_pair("client_key_path", "client_cert_path")),
        _ => {}
    }
    Ok(TlsFiles {
        root_ca: utf8("root_ca_path", config.root_ca_path.as_ref())?,
        client_cert: utf8("client_cert_path", config.client_cert_path.as_ref())?,
        client_key: utf8("client_key_path", config.client_key_path.as_ref())?,
    })
}

fn utf8(key: &str, path: Option<&PathBuf>) -> Result<Option<String>, DatastoreError> {
    let Some(path) = path else {
        return Ok(None);
    };
    match path.to_str() {
        Some(text) => Ok(Some(text.to_owned())),
        None => Err(DatastoreError::InvalidInput(format!(
            "{key} '{}' is not valid UTF-8: the path travels in a connection URL",
            path.display()
        ))),
    }
}

fn half_pair(given: &str, missing: &str) -> DatastoreError {
    DatastoreError::InvalidInput(format!(
        "{given} is set without {missing}: a client certificate needs both files"
    ))
}

fn busy_timeout_pragma() -> String {
    format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis())
}

/// `sqlite://` URL of a file. sqlx percent-decodes the path part, so every byte outside a
/// small safe set is percent-encoded (a `%`, `?` or `#` in a file name stays itself).
fn sqlite_url(path: &Path) -> Result<String, sqlx::Error> {
    let Some(text) = path.to_str() else {
        return Err(sqlx::Error::Configuration(
            format!(
                "datastore path '{}' is not valid UTF-8: sqlite paths must be UTF-8",
                path.display()
            )
            .into(),
        ));
    };
    let mut url = String::from("sqlite://");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url.push_str("?mode=rwc");
    Ok(url)
}

#[cfg(test)]
#[path = "connect_tls_tests.rs"]
mod tls_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_encode_characters_sqlx_would_decode() {
        assert_eq!(
            sqlite_url(Path::new("/var/lib/lanyard/data.sqlite3")).unwrap(),
            "sqlite:///var/lib/lanyard/data.sqlite3?mode=rwc"
        );
        assert_eq!(
            sqlite_url(Path::new("/tmp/a %41?b#c")).unwrap(),
            "sqlite:///tmp/a%20%2541%3Fb%23c?mode=rwc"
        );
    }

    #[test]
    fn spire_connection_strings_become_urls_and_refusals_hide_passwords() {
        let url = server_url_of(
            Engine::Postgres,
            "host=db user=spire password=hunter2 dbname=spire",
        )
        .unwrap();
        assert!(url.starts_with("postgres://"), "{url}");
        let mysql = server_url_of(Engine::Mysql, "spire:hunter2@tcp(db:3306)/spire").unwrap();
        assert!(mysql.starts_with("mysql://"), "{mysql}");
        let err = server_url_of(
            Engine::Mysql,
            "spire:hunter2@tcp(db:3306)/spire?bogus_knob=1",
        )
        .unwrap_err();
        assert!(matches!(err, DatastoreError::InvalidInput(_)), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    fn server_url_of(engine: Engine, connection_string: &str) -> Result<String, DatastoreError> {
        server_url(&DatabaseConfig::new(engine, connection_string))
    }
}
