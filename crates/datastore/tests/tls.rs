//! TLS to PostgreSQL and MySQL through `SqlDatastore::connect`, against real servers.
//!
//! Needs `LANYARD_TEST_POSTGRES` / `LANYARD_TEST_MYSQL` (as for the engines suite) and
//! `LANYARD_TEST_DB_CA`, the PEM file of the CA that signed both servers' certificates (for
//! 127.0.0.1, ::1 and localhost); `.ci/databases.sh` sets all three. Each test creates its own
//! database over a plain connection, connects to it over TLS in the form under test, writes and
//! reads a join token, and drops the database. A second CA, made here with rcgen, stands for a
//! server certificate the client must not trust. When a variable is unset the test passes after
//! a `SKIPPED:` line, unless `LANYARD_CI=1`, where it fails.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test helpers assert by panicking"
)]

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use lanyard_datastore::{
    DatabaseConfig, Datastore, DatastoreError, Engine, SqlDatastore, TokenUse,
};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Connection};
use url::form_urlencoded::byte_serialize;

const NOW: i64 = 1_700_000_000;

// --- PostgreSQL -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_url_verify_full_with_the_servers_ca_round_trips_over_tls() {
    with_database(Engine::Postgres, |db| async move {
        let url = db.url(&format!(
            "sslmode=verify-full&sslrootcert={}",
            query_value(&db.ca)
        ));
        round_trip(&db, &url).await;
        assert_session_encrypted(Engine::Postgres, &url).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_libpq_verify_ca_with_the_servers_ca_round_trips() {
    with_database(Engine::Postgres, |db| async move {
        // The SPIRE (lib/pq) spelling of the same connection.
        let conn = db.libpq(&format!(
            "sslmode=verify-ca sslrootcert='{}'",
            db.ca.display()
        ));
        round_trip(&db, &conn).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_a_server_certificate_from_another_ca() {
    with_database(Engine::Postgres, |db| async move {
        let wrong = db.wrong_ca.display();
        let url = db.url(&format!(
            "sslmode=verify-full&sslrootcert={}",
            query_value(&db.wrong_ca)
        ));
        refused_for_the_certificate(&db, &url).await;
        let libpq = db.libpq(&format!("sslmode=verify-ca sslrootcert='{wrong}'"));
        refused_for_the_certificate(&db, &libpq).await;
        // lib/pq's `require` with a root certificate verifies the chain, and so does Lanyard.
        let libpq = db.libpq(&format!("sslmode=require sslrootcert='{wrong}'"));
        refused_for_the_certificate(&db, &libpq).await;
    })
    .await;
}

/// SPIRE's `root_ca_path` on a URL that sets no `sslmode`: the server is verified against it
/// (verify-full), so the right CA connects and another CA is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_root_ca_path_on_a_plain_url_verifies_the_server() {
    with_database(Engine::Postgres, |db| async move {
        let url = db.url("application_name=lanyard-tls-test");
        round_trip_with(db.config_with_ca(&url, &db.ca)).await;
        refused_with(&db, db.config_with_ca(&url, &db.wrong_ca)).await;
        let libpq = db.libpq("");
        refused_with(&db, db.config_with_ca(&libpq, &db.wrong_ca)).await;
    })
    .await;
}

// --- MySQL / MariaDB ------------------------------------------------------------------------

/// SPIRE's `root_ca_path` on a URL and a DSN that set no TLS mode: VERIFY_IDENTITY against it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_root_ca_path_on_a_plain_url_or_dsn_verifies_the_server() {
    with_database(Engine::Mysql, |db| async move {
        let url = db.url("charset=utf8mb4");
        round_trip_with(db.config_with_ca(&url, &db.ca)).await;
        refused_with(&db, db.config_with_ca(&url, &db.wrong_ca)).await;
        let dsn = db.go_dsn("parseTime=true");
        refused_with(&db, db.config_with_ca(&dsn, &db.wrong_ca)).await;
    })
    .await;
}

/// go-sql-driver's `tls=custom` names the TLS config SPIRE registers from `root_ca_path`; with
/// that setting the DSN connects, verified against the CA file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_dsn_tls_custom_with_root_ca_path_verifies_against_that_ca() {
    with_database(Engine::Mysql, |db| async move {
        let dsn = db.go_dsn("tls=custom&parseTime=true");
        round_trip_with(db.config_with_ca(&dsn, &db.ca)).await;
        refused_with(&db, db.config_with_ca(&dsn, &db.wrong_ca)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_url_verify_identity_with_the_servers_ca_round_trips_over_tls() {
    with_database(Engine::Mysql, |db| async move {
        // VERIFY_IDENTITY: the certificate names 127.0.0.1, the address connected to.
        let url = db.url(&format!(
            "ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
            query_value(&db.ca)
        ));
        round_trip(&db, &url).await;
        assert_session_encrypted(Engine::Mysql, &url).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_refuses_a_server_certificate_from_another_ca() {
    with_database(Engine::Mysql, |db| async move {
        for mode in ["VERIFY_IDENTITY", "VERIFY_CA"] {
            let url = db.url(&format!(
                "ssl-mode={mode}&ssl-ca={}",
                query_value(&db.wrong_ca)
            ));
            refused_for_the_certificate(&db, &url).await;
        }
    })
    .await;
}

/// go-sql-driver's `tls=true` means "verify the chain and the host name against the system's
/// roots"; Lanyard translates it to `ssl-mode=VERIFY_IDENTITY` with no `ssl-ca`, and the DSN
/// grammar has no parameter naming a CA file. sqlx then trusts only its built-in public roots,
/// so a server whose certificate comes from a private CA (as here) is refused: such a server
/// needs the `mysql://` URL form with `ssl-ca=`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_dsn_tls_true_verifies_and_so_refuses_a_private_ca_without_ssl_ca() {
    with_database(Engine::Mysql, |db| async move {
        refused_for_the_certificate(&db, &db.go_dsn("tls=true")).await;
    })
    .await;
}

/// `tls=skip-verify` (SPIRE's way to encrypt without verifying) becomes `ssl-mode=REQUIRED`:
/// it connects to the same server `tls=true` refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_dsn_tls_skip_verify_connects_without_verifying() {
    with_database(Engine::Mysql, |db| async move {
        round_trip(&db, &db.go_dsn("tls=skip-verify&parseTime=true")).await;
    })
    .await;
}

// --- Helpers --------------------------------------------------------------------------------

/// A fresh database on one of the test servers, and the material to reach it.
struct Db {
    engine: Engine,
    user: String,
    password: String,
    host: String,
    port: u16,
    name: String,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    /// A CA the server's certificate does not chain to.
    wrong_ca: PathBuf,
}

impl Db {
    /// `postgres://` or `mysql://` URL of this database with `query` appended.
    fn url(&self, query: &str) -> String {
        let scheme = match self.engine {
            Engine::Postgres => "postgres",
            _ => "mysql",
        };
        format!(
            "{scheme}://{}:{}@{}:{}/{}?{query}",
            self.user, self.password, self.host, self.port, self.name
        )
    }

    /// libpq `key=value` list for this database, with `extra` appended.
    fn libpq(&self, extra: &str) -> String {
        format!(
            "host={} port={} user={} password={} dbname={} {extra}",
            self.host, self.port, self.user, self.password, self.name
        )
    }

    /// go-sql-driver DSN for this database with `params` as its query.
    fn go_dsn(&self, params: &str) -> String {
        format!(
            "{}:{}@tcp({}:{})/{}?{params}",
            self.user, self.password, self.host, self.port, self.name
        )
    }

    fn config(&self, connection_string: &str) -> DatabaseConfig {
        DatabaseConfig::new(self.engine, connection_string)
    }

    /// `connection_string` with SPIRE's `root_ca_path` set to `ca`.
    fn config_with_ca(&self, connection_string: &str, ca: &Path) -> DatabaseConfig {
        DatabaseConfig {
            root_ca_path: Some(ca.to_owned()),
            ..self.config(connection_string)
        }
    }
}

/// Connects with `conn` (migrations run), writes a join token and reads it back by consuming it.
async fn round_trip(db: &Db, conn: &str) {
    round_trip_with(db.config(conn)).await;
}

/// As [`round_trip`], for a whole configuration.
async fn round_trip_with(config: DatabaseConfig) {
    let store = SqlDatastore::connect(&config)
        .await
        .unwrap_or_else(|e| panic!("cannot connect over TLS: {e}"));
    let token = format!("tls-{}", uuid::Uuid::new_v4().simple());
    store.create_join_token(&token, NOW + 600).await.unwrap();
    assert_eq!(
        store.consume_join_token(&token, NOW).await.unwrap(),
        TokenUse::Accepted
    );
    store.close().await;
}

/// Connecting with `conn` fails at the TLS handshake: the error names the certificate problem,
/// is not a login failure, and does not contain the password.
async fn refused_for_the_certificate(db: &Db, conn: &str) {
    refused_with(db, db.config(conn)).await;
}

/// As [`refused_for_the_certificate`], for a whole configuration.
async fn refused_with(db: &Db, mut config: DatabaseConfig) {
    // The pool retries until this timeout, then reports the reason of one direct attempt.
    config.connect_timeout = Duration::from_secs(5);
    let err = match SqlDatastore::connect(&config).await {
        Ok(store) => {
            store.close().await;
            panic!("connected although the server's certificate is not trusted: {config:?}");
        }
        Err(e) => e,
    };
    assert!(matches!(err, DatastoreError::Connect { .. }), "{err:?}");
    let message = err.to_string();
    let lower = message.to_ascii_lowercase();
    assert!(
        lower.contains("certificate") && lower.contains("unknownissuer"),
        "the error does not name the certificate problem: {message}"
    );
    assert!(
        !lower.contains("password authentication") && !lower.contains("access denied"),
        "refused at login, not at the certificate: {message}"
    );
    assert!(
        !message.contains(&db.password),
        "the error shows the password: {message}"
    );
}

/// The server reports this very session as encrypted.
async fn assert_session_encrypted(engine: Engine, url: &str) {
    let mut conn = AnyConnection::connect(url).await.unwrap();
    let encrypted = match engine {
        Engine::Postgres => sqlx::query_scalar::<_, bool>(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap(),
        _ => {
            let (_, cipher): (String, String) =
                sqlx::query_as("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            !cipher.is_empty()
        }
    };
    conn.close().await.unwrap();
    assert!(
        encrypted,
        "the {engine} server reports the session as unencrypted"
    );
}

/// Runs `test` against a fresh database of `engine`, or skips (see the module docs).
async fn with_database<F, Fut>(engine: Engine, test: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    sqlx::any::install_default_drivers();
    let var = match engine {
        Engine::Postgres => "LANYARD_TEST_POSTGRES",
        _ => "LANYARD_TEST_MYSQL",
    };
    let (Some(base), Some(ca)) = (env(var), env("LANYARD_TEST_DB_CA")) else {
        skip(engine, var);
        return;
    };
    let base = url::Url::parse(&base).unwrap_or_else(|e| panic!("{var} is not a URL: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let wrong_ca = dir.path().join("wrong-ca.pem");
    std::fs::write(&wrong_ca, throwaway_ca_pem()).unwrap();

    let name = format!("lanyard_tls_{}", uuid::Uuid::new_v4().simple());
    let admin = admin_pool(base.as_str()).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));

    let db = Db {
        engine,
        user: base.username().to_owned(),
        password: base.password().unwrap_or_default().to_owned(),
        host: base.host_str().unwrap_or("127.0.0.1").to_owned(),
        port: base.port().unwrap_or(match engine {
            Engine::Postgres => 5432,
            _ => 3306,
        }),
        name: name.clone(),
        ca: PathBuf::from(ca),
        wrong_ca,
    };
    let outcome = tokio::spawn(test(db)).await;

    let drop_sql = match engine {
        Engine::Postgres => format!("DROP DATABASE {name} WITH (FORCE)"),
        _ => format!("DROP DATABASE {name}"),
    };
    let dropped = sqlx::raw_sql(sqlx::AssertSqlSafe(drop_sql))
        .execute(&admin)
        .await;
    admin.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    dropped.unwrap_or_else(|e| panic!("cannot drop test database {name}: {e}"));
}

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

fn skip(engine: Engine, var: &str) {
    if std::env::var("LANYARD_CI").as_deref() == Ok("1") {
        panic!(
            "{var} or LANYARD_TEST_DB_CA is not set: with LANYARD_CI=1 the {engine} TLS tests \
             must run"
        );
    }
    static POSTGRES_SKIP: Once = Once::new();
    static MYSQL_SKIP: Once = Once::new();
    let once = match engine {
        Engine::Postgres => &POSTGRES_SKIP,
        _ => &MYSQL_SKIP,
    };
    once.call_once(|| {
        // Straight to the process's stderr: the test harness captures print macros.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {engine} TLS tests: {var} or LANYARD_TEST_DB_CA is not set"
        );
    });
}

async fn admin_pool(url: &str) -> AnyPool {
    AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect the admin pool: {e}"))
}

/// PEM of a self-signed CA that signed nothing the servers present.
fn throwaway_ca_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "Lanyard test: a CA the server does not use",
    );
    params.self_signed(&key).unwrap().pem()
}

/// `path` percent-encoded for a URL query value.
fn query_value(path: &Path) -> String {
    byte_serialize(path.to_str().unwrap().as_bytes()).collect()
}
