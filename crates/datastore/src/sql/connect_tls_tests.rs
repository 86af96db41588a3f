//! The plugin config's TLS files (`root_ca_path`, `client_cert_path`, `client_key_path`) in the
//! URLs [`server_url`] builds, and the settings refused with them.

use std::path::{Path, PathBuf};

use super::{server_url, sqlite_path};
use crate::error::DatastoreError;
use crate::sql::config::{DatabaseConfig, Engine};

fn translate(engine: Engine, connection_string: &str) -> Result<String, DatastoreError> {
    server_url(&DatabaseConfig::new(engine, connection_string))
}

/// `config` with the three TLS files set to `ca`, `cert` and `key` where given.
fn with_files(
    engine: Engine,
    connection_string: &str,
    [ca, cert, key]: [Option<&str>; 3],
) -> DatabaseConfig {
    DatabaseConfig {
        root_ca_path: ca.map(PathBuf::from),
        client_cert_path: cert.map(PathBuf::from),
        client_key_path: key.map(PathBuf::from),
        ..DatabaseConfig::new(engine, connection_string)
    }
}

fn query(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn a_root_ca_on_a_postgres_string_without_sslmode_verifies_the_full_name() {
    let files = [Some("/etc/ca.pem"), Some("/etc/c.pem"), Some("/etc/k.pem")];
    for given in [
        "postgres://spire@db/spire",
        "host=db user=spire dbname=spire",
    ] {
        let url = server_url(&with_files(Engine::Postgres, given, files)).unwrap();
        assert_eq!(
            query(&url),
            pairs(&[
                ("sslmode", "verify-full"),
                ("sslrootcert", "/etc/ca.pem"),
                ("sslcert", "/etc/c.pem"),
                ("sslkey", "/etc/k.pem"),
            ]),
            "{given}"
        );
    }
}

#[test]
fn a_root_ca_keeps_a_verifying_postgres_sslmode_and_makes_require_verify_the_chain() {
    let ca = [Some("/etc/ca.pem"), None, None];
    for (mode, effective) in [
        ("verify-ca", "verify-ca"),
        ("verify-full", "verify-full"),
        ("require", "verify-ca"),
    ] {
        let given = format!("postgres://db/spire?sslmode={mode}");
        let url = server_url(&with_files(Engine::Postgres, &given, ca)).unwrap();
        assert_eq!(
            query(&url),
            pairs(&[("sslmode", effective), ("sslrootcert", "/etc/ca.pem")])
        );
    }
    for mode in ["disable", "allow", "prefer"] {
        let given = format!("host=db sslmode={mode}");
        let err = server_url(&with_files(Engine::Postgres, &given, ca)).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("root_ca_path is set but the PostgreSQL connection string's TLS mode {mode} does not verify")),
            "{err}"
        );
    }
}

#[test]
fn a_file_named_in_the_string_and_the_config_is_refused_naming_both() {
    let cases = [
        (
            Engine::Postgres,
            "host=db sslrootcert=/a.pem",
            0,
            "root_ca_path",
            "sslrootcert",
        ),
        (
            Engine::Postgres,
            "postgres://db/x?sslcert=/c&sslkey=/k",
            1,
            "client_cert_path",
            "sslcert",
        ),
        (
            Engine::Mysql,
            "mysql://db/x?ssl-ca=/a.pem",
            0,
            "root_ca_path",
            "ssl-ca",
        ),
        (
            Engine::Mysql,
            "mysql://db/x?sslkey=/k",
            2,
            "client_key_path",
            "ssl-key",
        ),
    ];
    for (engine, given, slot, setting, param) in cases {
        let mut files = [None; 3];
        files[slot] = Some("/etc/x.pem");
        if slot > 0 {
            files[1] = Some("/etc/c.pem");
            files[2] = Some("/etc/k.pem");
        }
        let err = server_url(&with_files(engine, given, files)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("{setting} and the"))
                && text.contains(&format!("'s {param} both name a TLS file")),
            "{given}: {text}"
        );
    }
}

#[test]
fn a_root_ca_on_a_mysql_string_without_a_mode_verifies_the_identity() {
    let files = [Some("/etc/ca.pem"), Some("/etc/c.pem"), Some("/etc/k.pem")];
    for given in ["mysql://spire@db/spire", "spire@tcp(db:3306)/spire"] {
        let url = server_url(&with_files(Engine::Mysql, given, files)).unwrap();
        assert_eq!(
            query(&url),
            pairs(&[
                ("ssl-mode", "VERIFY_IDENTITY"),
                ("ssl-ca", "/etc/ca.pem"),
                ("ssl-cert", "/etc/c.pem"),
                ("ssl-key", "/etc/k.pem"),
            ]),
            "{given}"
        );
    }
    let ca = [Some("/etc/ca.pem"), None, None];
    let url = server_url(&with_files(
        Engine::Mysql,
        "mysql://db/x?ssl-mode=VERIFY_CA",
        ca,
    ))
    .unwrap();
    assert_eq!(
        query(&url),
        pairs(&[("ssl-mode", "VERIFY_CA"), ("ssl-ca", "/etc/ca.pem")])
    );
    for given in [
        "db@tcp(db)/x?tls=skip-verify",
        "mysql://db/x?ssl-mode=PREFERRED",
    ] {
        let err = server_url(&with_files(Engine::Mysql, given, ca)).unwrap_err();
        assert!(
            err.to_string().contains("does not verify the server"),
            "{err}"
        );
    }
}

#[test]
fn a_named_go_tls_config_needs_root_ca_path_and_then_verifies_the_identity() {
    let dsn = "spire:hunter2@tcp(db:3306)/spire?tls=custom&parseTime=true";
    let err = translate(Engine::Mysql, dsn).unwrap_err();
    assert!(
        err.to_string().contains(
            "tls=\"custom\" names a TLS config SPIRE builds from root_ca_path, which is not set"
        ),
        "{err}"
    );
    let config = with_files(Engine::Mysql, dsn, [Some("/etc/ca.pem"), None, None]);
    let url = server_url(&config).unwrap();
    assert_eq!(
        query(&url),
        pairs(&[("ssl-mode", "VERIFY_IDENTITY"), ("ssl-ca", "/etc/ca.pem")])
    );
}

#[test]
fn half_a_client_certificate_is_refused_naming_the_missing_file() {
    let err = server_url(&with_files(
        Engine::Postgres,
        "host=db",
        [None, Some("/c"), None],
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "client_cert_path is set without client_key_path: a client certificate needs both files"
    );
    let err = server_url(&with_files(
        Engine::Mysql,
        "mysql://db/x",
        [None, None, Some("/k")],
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("client_key_path is set without client_cert_path"),
        "{err}"
    );
}

#[test]
fn tls_files_for_sqlite_are_refused() {
    let config = with_files(Engine::Sqlite, "/tmp/db.sqlite3", [None, None, Some("/k")]);
    let err = sqlite_path(&config).unwrap_err();
    assert!(
        err.to_string().contains(
            "client_key_path is set for a sqlite3 datastore: TLS settings apply to postgres and mysql only"
        ),
        "{err}"
    );
    let plain = DatabaseConfig::new(Engine::Sqlite, "/tmp/db.sqlite3");
    assert_eq!(sqlite_path(&plain).unwrap(), Path::new("/tmp/db.sqlite3"));
}
