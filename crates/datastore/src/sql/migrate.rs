//! Schema migrations: one embedded set per engine, applied at open, or checked when an operator
//! applies them separately.

use sqlx::AnyPool;
use sqlx::migrate::Migrator;

use super::dialect::Dialect;
use crate::error::DatastoreError;

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
    migrator.run(pool).await?;
    tracing::debug!(
        migrations = migrator.iter().count(),
        "Datastore schema up to date"
    );
    Ok(())
}

/// Fails unless every migration this build knows has been applied, for databases whose
/// migrations an operator runs separately.
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
