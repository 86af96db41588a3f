//! SPIRE's `DataStore "sql"` plugin block: which database the server uses and how it reaches
//! it (engine, connection string, pool size, migrations, TLS files).

use std::path::PathBuf;

use lanyard_server::{DatabaseConfig, Engine};

use super::hcl::{Entry, Value};
use super::plugins::data_scope;
use super::{ConfigError, Key, walk};

const SQL_KEYS: &[(&str, Key)] = &[
    ("database_type", Key::Mapped),
    ("connection_string", Key::Mapped),
    ("ro_connection_string", Key::Unimplemented),
    ("root_ca_path", Key::Mapped),
    ("client_cert_path", Key::Mapped),
    ("client_key_path", Key::Mapped),
    ("conn_max_lifetime", Key::Unimplemented),
    ("max_open_conns", Key::Mapped),
    ("max_idle_conns", Key::Unimplemented),
    ("disable_migration", Key::Mapped),
    ("log_sql", Key::FalseOnly),
];

/// SPIRE's `DataStore "sql"`: `database_type` and `connection_string` are required; an SQLite
/// connection string is the database file's path, used as given (relative to the working
/// directory, as SPIRE does), so several servers can name one file. The TLS file settings
/// (`root_ca_path`, `client_cert_path`, `client_key_path`) are for postgres and mysql and must
/// name existing files; the client certificate and key come together.
pub(super) fn sql(data: &[Entry], line: usize) -> Result<DatabaseConfig, ConfigError> {
    let mut engine = None;
    let mut connection: Option<(String, &Entry)> = None;
    let mut max_open_conns = 0;
    let mut disable_migration = false;
    let mut tls = TlsFileSettings::default();
    walk(data, &data_scope("DataStore \"sql\"", SQL_KEYS), |e| {
        match e.key.as_str() {
            "database_type" => engine = Some(database_type(e)?),
            "max_open_conns" => max_open_conns = open_conns(e)?,
            "disable_migration" => disable_migration = e.bool()?,
            "root_ca_path" => tls.root_ca = Some((tls_file(e)?, e.line)),
            "client_cert_path" => tls.client_cert = Some((tls_file(e)?, e.line)),
            "client_key_path" => tls.client_key = Some((tls_file(e)?, e.line)),
            _ => connection = Some((e.str()?.to_owned(), e)),
        }
        Ok(())
    })?;
    let Some(engine) = engine else {
        return Err(ConfigError::Conflict(format!(
            "DataStore \"sql\" at line {line} has no plugin_data.database_type: set it to \
             \"sqlite3\", \"postgres\" or \"mysql\""
        )));
    };
    let Some((given, entry)) = connection else {
        return Err(ConfigError::Conflict(format!(
            "DataStore \"sql\" at line {line} has no plugin_data.connection_string: give the \
             {engine} database to use"
        )));
    };
    let connection_string = match engine {
        Engine::Sqlite => sqlite_path(entry)?.display().to_string(),
        Engine::Postgres | Engine::Mysql => {
            if given.trim().is_empty() {
                return Err(entry.invalid(format!("give the {engine} connection string")));
            }
            given
        }
    };
    tls.check(engine)?;
    // Through the constructor: settings SPIRE has no key for keep the datastore's defaults.
    let mut config = DatabaseConfig::new(engine, connection_string);
    config.max_open_conns = max_open_conns;
    config.disable_migration = disable_migration;
    config.root_ca_path = tls.root_ca.map(|(path, _)| path);
    config.client_cert_path = tls.client_cert.map(|(path, _)| path);
    config.client_key_path = tls.client_key.map(|(path, _)| path);
    // The same translation connecting does, so `validate` refuses what `run` would. The
    // connection string is never echoed: it may hold a password.
    config.check().map_err(|e| {
        ConfigError::Conflict(format!(
            "DataStore \"sql\" connection_string at line {}: {e}",
            entry.line
        ))
    })?;
    Ok(config)
}

/// The `DataStore "sql"` TLS file settings, each with its line.
#[derive(Default)]
struct TlsFileSettings {
    root_ca: Option<(PathBuf, usize)>,
    client_cert: Option<(PathBuf, usize)>,
    client_key: Option<(PathBuf, usize)>,
}

impl TlsFileSettings {
    /// Refuses TLS files for SQLite (they would go unused) and half a client certificate.
    fn check(&self, engine: Engine) -> Result<(), ConfigError> {
        let given = [
            ("root_ca_path", &self.root_ca),
            ("client_cert_path", &self.client_cert),
            ("client_key_path", &self.client_key),
        ];
        if engine == Engine::Sqlite
            && let Some((key, Some((_, line)))) = given.iter().find(|(_, v)| v.is_some())
        {
            return Err(ConfigError::Conflict(format!(
                "DataStore \"sql\" {key} at line {line} is set for database_type \"sqlite3\": \
                 TLS settings apply to postgres and mysql only"
            )));
        }
        let half = match (&self.client_cert, &self.client_key) {
            (Some((_, line)), None) => Some(("client_cert_path", line, "client_key_path")),
            (None, Some((_, line))) => Some(("client_key_path", line, "client_cert_path")),
            _ => None,
        };
        if let Some((key, line, missing)) = half {
            return Err(ConfigError::Conflict(format!(
                "DataStore \"sql\" {key} at line {line} is set without {missing}: a client \
                 certificate needs both files"
            )));
        }
        Ok(())
    }
}

/// A TLS file setting: the path of an existing file, checked now so that a typo is reported
/// with its key and line rather than as a TLS failure when the server connects.
fn tls_file(e: &Entry) -> Result<PathBuf, ConfigError> {
    let path = e.path()?;
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        Ok(_) => Err(e.invalid(format!(
            "{} is not a regular file: give the path of a PEM file",
            path.display()
        ))),
        Err(err) => Err(e.invalid(format!(
            "cannot read {}: {err}: give the path of an existing PEM file",
            path.display()
        ))),
    }
}

fn database_type(e: &Entry) -> Result<Engine, ConfigError> {
    match e.str()? {
        "sqlite3" => Ok(Engine::Sqlite),
        "postgres" => Ok(Engine::Postgres),
        "mysql" => Ok(Engine::Mysql),
        kind @ ("aws_postgres" | "aws_mysql") => Err(ConfigError::Unsupported {
            what: format!("database_type {kind:?}"),
            line: e.line,
            rule: "RDS IAM authentication is not implemented yet; use \"postgres\" or \
                   \"mysql\" with a password in the connection string"
                .into(),
        }),
        _ => Err(e.invalid("SPIRE's database types are sqlite3, postgres and mysql")),
    }
}

/// `max_open_conns`: a positive number of connections (SPIRE's default is 100; Lanyard's pool
/// default applies when unset).
fn open_conns(e: &Entry) -> Result<u32, ConfigError> {
    match e.value {
        Value::Int(n) if n > 0 => {
            u32::try_from(n).map_err(|_| e.invalid("max_open_conns is at most 4294967295"))
        }
        _ => Err(e.invalid("max_open_conns is a positive whole number of connections")),
    }
}

/// A SQLite connection string: a path, or `file:` and a path, without URI parameters.
fn sqlite_path(e: &Entry) -> Result<PathBuf, ConfigError> {
    let s = e.str()?;
    let path = s.strip_prefix("file:").unwrap_or(s);
    if path.contains('?') {
        return Err(ConfigError::Unsupported {
            what: "connection_string parameters".into(),
            line: e.line,
            // The string is not echoed: its parameters may hold a password.
            rule: "Lanyard opens SQLite with its own settings; give only the file's path".into(),
        });
    }
    if path.is_empty() || path == ":memory:" {
        return Err(
            e.invalid("give the path of the SQLite file, such as \"./.data/datastore.sqlite3\"")
        );
    }
    Ok(PathBuf::from(path))
}
