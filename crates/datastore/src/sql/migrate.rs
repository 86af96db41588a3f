//! Schema migrations: one embedded set per engine, applied at open, or checked when an operator
//! applies them separately.

use std::time::{Duration, Instant};

use sqlx::AnyPool;
use sqlx::migrate::{MigrateError, Migrator};

use super::dialect::Dialect;
use crate::error::DatastoreError;

/// How long a server keeps retrying migrations that failed because another server was
/// applying them, and how long it pauses between attempts.
const RACE_WAIT: Duration = Duration::from_secs(20);
const RACE_PAUSE: Duration = Duration::from_millis(500);

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");
static MYSQL: Migrator = sqlx::migrate!("migrations/mysql");

fn migrator(dialect: Dialect) -> &'static Migrator {
    match dialect {
        Dialect::Sqlite => &SQLITE,
        Dialect::Postgres => &POSTGRES,
        Dialect::Mysql => &MYSQL,
    }
}

/// Brings the schema up to date.
pub(crate) async fn run(pool: &AnyPool, dialect: Dialect) -> Result<(), DatastoreError> {
    let migrator = migrator(dialect);
    let deadline = Instant::now() + RACE_WAIT;
    loop {
        match migrator.run(pool).await {
            Ok(()) => break,
            // Servers sharing a database may start together and apply the same migrations at
            // once: SQLite has no migration lock, and MariaDB's DDL is not transactional, so
            // the loser fails ("already exists", a duplicate bookkeeping row, a migration the
            // other is still applying). What matters is that the schema ends up complete:
            // wait for the other server, then accept its work or try again.
            // A database written by another Lanyard version is no race: report it at once.
            Err(e @ (MigrateError::VersionMissing(_) | MigrateError::VersionMismatch(_))) => {
                return Err(e.into());
            }
            Err(e) => {
                tokio::time::sleep(RACE_PAUSE).await;
                if check(pool, dialect).await.is_ok() {
                    tracing::info!(
                        error = %e,
                        "Another server applied the datastore migrations at the same time"
                    );
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(e.into());
                }
                tracing::info!(error = %e, "Datastore migration failed; retrying");
            }
        }
    }
    tracing::debug!(
        migrations = migrator.iter().count(),
        "Datastore schema up to date"
    );
    Ok(())
}

pub(crate) async fn check(pool: &AnyPool, dialect: Dialect) -> Result<(), DatastoreError> {
    let required = migrator(dialect)
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    // A database never migrated has no bookkeeping table at all; that is version 0, not an
    // error of its own.
    let applied: Vec<i64> =
        match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
        {
            Ok(versions) => versions,
            Err(sqlx::Error::Database(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
    let missing = migrator(dialect)
        .iter()
        .any(|m| !applied.contains(&m.version));
    if missing {
        return Err(DatastoreError::SchemaBehind {
            applied: applied.iter().copied().max().unwrap_or(0),
            required,
        });
    }
    Ok(())
}
