//! The harness: runs one test body against a fresh database of one engine.
//!
//! SQLite always runs, on a file in a temporary directory. PostgreSQL and MySQL run when
//! `LANYARD_TEST_POSTGRES` / `LANYARD_TEST_MYSQL` hold a URL of a server where the user may
//! create databases (`postgres://user:password@127.0.0.1:55432/postgres`,
//! `mysql://user:password@127.0.0.1:53306/mysql`): each test creates its own database with a
//! random name and drops it afterwards, also when the test fails. When a variable is unset the
//! engine's tests pass after one `SKIPPED:` line, unless `LANYARD_CI=1`, where they fail.

use std::future::Future;
use std::io::Write;
use std::sync::Once;

use lanyard_datastore::{DatabaseConfig, Engine, SqlDatastore};
use lanyard_spiffe::{Selector, SpiffeId};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

/// What a test gets: the datastore, and a separate pool on the same database for checking
/// rows the API does not show.
pub struct Ctx {
    pub store: SqlDatastore,
    pub raw: AnyPool,
    pub config: DatabaseConfig,
}

/// Runs `test` against a fresh database of `engine`, or skips (see the module docs).
pub async fn run<F, Fut>(engine: Engine, test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    sqlx::any::install_default_drivers();
    match engine {
        Engine::Sqlite => run_sqlite(test).await,
        Engine::Postgres => run_server(engine, "LANYARD_TEST_POSTGRES", test).await,
        Engine::Mysql => run_server(engine, "LANYARD_TEST_MYSQL", test).await,
    }
}

async fn run_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("datastore.sqlite3");
    let config = DatabaseConfig::new(Engine::Sqlite, path.to_str().unwrap());
    let store = SqlDatastore::connect(&config).await.unwrap();
    let raw = raw_pool(&format!("sqlite://{}", path.display())).await;
    let outcome = tokio::spawn(test(Ctx {
        store: store.clone(),
        raw: raw.clone(),
        config,
    }))
    .await;
    store.close().await;
    raw.close().await;
    drop(dir);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn run_server<F, Fut>(engine: Engine, var: &str, test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(base) = server_url(engine, var) else {
        return;
    };
    let name = format!("lanyard_test_{}", uuid::Uuid::new_v4().simple());
    let admin = raw_pool(&base).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let url = with_database(&base, &name);
    let config = DatabaseConfig::new(engine, url.clone());

    let outcome = match SqlDatastore::connect(&config).await {
        Ok(store) => {
            let raw = raw_pool(&url).await;
            let outcome = tokio::spawn(test(Ctx {
                store: store.clone(),
                raw: raw.clone(),
                config,
            }))
            .await;
            store.close().await;
            raw.close().await;
            outcome.map_err(|e| e.into_panic())
        }
        Err(e) => {
            let message = format!("cannot connect to {name}: {e}");
            Err(Box::new(message) as Box<dyn std::any::Any + Send>)
        }
    };

    let drop_sql = match engine {
        Engine::Postgres => format!("DROP DATABASE {name} WITH (FORCE)"),
        _ => format!("DROP DATABASE {name}"),
    };
    let dropped = sqlx::raw_sql(sqlx::AssertSqlSafe(drop_sql))
        .execute(&admin)
        .await;
    admin.close().await;
    if let Err(panic) = outcome {
        // A message of our own has not been printed by a panic hook yet.
        if let Some(message) = panic.downcast_ref::<String>() {
            panic!("{message}");
        }
        std::panic::resume_unwind(panic);
    }
    dropped.unwrap_or_else(|e| panic!("cannot drop test database {name}: {e}"));
}

/// The server URL from `var`, or `None` after reporting the skip once per engine.
fn server_url(engine: Engine, var: &str) -> Option<String> {
    static POSTGRES_SKIP: Once = Once::new();
    static MYSQL_SKIP: Once = Once::new();
    if let Ok(url) = std::env::var(var)
        && !url.is_empty()
    {
        return Some(url);
    }
    if std::env::var("LANYARD_CI").as_deref() == Ok("1") {
        panic!("{var} is not set: with LANYARD_CI=1 the {engine} datastore tests must run");
    }
    let (once, label) = match engine {
        Engine::Postgres => (&POSTGRES_SKIP, "postgres"),
        _ => (&MYSQL_SKIP, "mysql"),
    };
    once.call_once(|| {
        // Straight to the process's stderr: the test harness captures print macros.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {label} datastore tests: {var} is not set"
        );
    });
    None
}

/// `url` with its database (path) replaced by `name`, query parameters kept.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let host = before_query.split('/').next().unwrap_or_default();
    let mut out = format!("{scheme}://{host}/{name}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn raw_pool(url: &str) -> AnyPool {
    AnyPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect test pool: {e}"))
}

pub fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

pub fn sels(list: &[&str]) -> Vec<Selector> {
    list.iter().map(|s| Selector::parse(s).unwrap()).collect()
}

/// A workload entry `spiffe://example.org/<name>` under the agent `.../agent/<parent>`.
pub fn entry(name: &str, parent: &str, selectors: &[&str]) -> lanyard_datastore::NewEntry {
    lanyard_datastore::NewEntry::new(
        id(&format!("spiffe://example.org/{name}")),
        id(&format!("spiffe://example.org/agent/{parent}")),
        sels(selectors),
    )
}

/// Defines, for each named test body `async fn name(ctx: Ctx)`, a module with one test per
/// engine: `name::sqlite`, `name::postgres`, `name::mysql`.
#[macro_export]
macro_rules! engine_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $crate::support::run(lanyard_datastore::Engine::Sqlite, super::$name).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $crate::support::run(lanyard_datastore::Engine::Postgres, super::$name).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mysql() {
                    $crate::support::run(lanyard_datastore::Engine::Mysql, super::$name).await
                }
            }
        )*
    };
}
