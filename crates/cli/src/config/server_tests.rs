//! `server {}` files: SPIRE-shaped samples load, and each kind of mistake is named with its line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::logging::{LogFormat, LogLevel};

fn load(text: &str) -> Result<ServerSettings, ConfigError> {
    ServerFlags::default().load_text(text, |_| None)
}

fn error(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

/// A server file written from the keys SPIRE documents, in SPIRE's layout.
const SPIRE_STYLE: &str = r#"
server {
    bind_address = "0.0.0.0"
    bind_port = "8081"
    socket_path = "/run/lanyard/server.sock"
    trust_domain = "prod.example"
    data_dir = "/var/lib/lanyard"
    log_level = "WARN"
    log_format = "json"
    log_file = "/var/log/lanyard-server.log"
    ca_key_type = "ec-p384"
    ca_ttl = 172800
    default_x509_svid_ttl = "2h"
    agent_ttl = "4h"
    default_jwt_svid_ttl = "10m"
    jwt_issuer = "https://oidc.prod.example"
    jwt_key_type = "rsa-2048"
    audit_log_enabled = true
    log_source_location = false
}

plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "sqlite3"
            connection_string = "/var/lib/lanyard/datastore.sqlite3"
        }
    }
    NodeAttestor "join_token" {
        plugin_data {}
    }
    KeyManager "disk" {
        plugin_data = {
            keys_path = "/var/lib/lanyard/keys"
        }
    }
}

telemetry {
    Prometheus {
        host = "127.0.0.1"
        port = 9988
    }
}

health_checks {
    listener_enabled = true
    bind_address = "127.0.0.1"
    bind_port = "8080"
    live_path = "/live"
    ready_path = "/ready"
}
"#;

#[test]
fn loads_a_spire_style_server_file() {
    let s = load(SPIRE_STYLE).unwrap();
    let c = &s.config;
    assert_eq!(c.trust_domain.to_string(), "prod.example");
    assert_eq!(c.bind, "0.0.0.0:8081".parse::<SocketAddr>().unwrap());
    assert_eq!(c.socket_path, Path::new("/run/lanyard/server.sock"));
    assert_eq!(c.data_dir, Path::new("/var/lib/lanyard"));
    assert_eq!(c.ca_key_type, lanyard_ca::KeyType::EcP384);
    assert_eq!(c.ca_ttl, Duration::from_secs(48 * 3600));
    assert_eq!(c.default_x509_svid_ttl, Duration::from_secs(2 * 3600));
    assert_eq!(c.agent_ttl, Duration::from_secs(4 * 3600));
    assert_eq!(c.default_jwt_svid_ttl, Duration::from_secs(600));
    assert_eq!(c.jwt_issuer.as_deref(), Some("https://oidc.prod.example"));
    assert_eq!(c.jwt_key_type, lanyard_ca::KeyType::Rsa2048);
    assert!(c.audit_log_enabled);
    assert_eq!(c.telemetry.prometheus.as_ref().unwrap().port, 9988);
    assert!(c.health_checks.listener_enabled);
    assert_eq!(c.health_checks.bind_port, 8080);
    assert_eq!(s.log.level, LogLevel::Warn);
    assert_eq!(s.log.format, LogFormat::Json);
    assert_eq!(
        s.log.file.as_deref(),
        Some(Path::new("/var/log/lanyard-server.log"))
    );
    c.validate().unwrap();
}

#[test]
fn no_file_means_lanyard_defaults() {
    let s = ServerFlags::default().load().unwrap();
    assert_eq!(
        s.config.bind,
        "127.0.0.1:8081".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(s.config.data_dir, Path::new(DEFAULT_DATA_DIR));
    assert_eq!(s.config.agent_ttl, s.config.default_x509_svid_ttl);
    assert_eq!(s.config.join_token_ttl, Duration::from_secs(600));
    assert_eq!(s.log, LogSettings::default());
}

#[test]
fn the_sample_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/server.conf");
    let flags = ServerFlags {
        config: Some(path),
        ..Default::default()
    };
    let s = flags.load().unwrap();
    assert_eq!(s.config.trust_domain.to_string(), "example.org");
    assert_eq!(s.config.data_dir, Path::new("./.data/server"));
    assert_eq!(s.log.level, LogLevel::Debug);
    s.config.validate().unwrap();
}

#[test]
fn jwt_flags_override_the_file() {
    let flags = ServerFlags {
        jwt_key_type: Some(lanyard_ca::KeyType::EcP384),
        jwt_issuer: Some("https://flag.example".into()),
        ..Default::default()
    };
    let s = flags
        .load_text(
            "server {\n jwt_key_type = \"rsa-4096\"\n jwt_issuer = \"https://file.example\"\n \
             default_jwt_svid_ttl = 120\n}\n",
            |_| None,
        )
        .unwrap();
    assert_eq!(s.config.jwt_key_type, lanyard_ca::KeyType::EcP384);
    assert_eq!(s.config.jwt_issuer.as_deref(), Some("https://flag.example"));
    assert_eq!(s.config.default_jwt_svid_ttl, Duration::from_secs(120));

    let err = flags
        .load_text("server {\n jwt_key_type = \"ed25519\"\n}\n", |_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("jwt_key_type"), "{err}");
}

#[test]
fn flags_override_the_file_and_the_file_overrides_defaults() {
    let flags = ServerFlags {
        trust_domain: Some(parse_trust_domain("flag.example").unwrap()),
        bind_port: Some(0),
        audit_log_enabled: Some(false),
        log: LogFlags {
            log_level: Some(LogLevel::Error),
            ..Default::default()
        },
        ..Default::default()
    };
    let s = flags
        .load_text(
            "server {\n trust_domain = \"file.example\"\n bind_address = \"10.0.0.1\"\n \
             bind_port = 9000\n log_level = \"DEBUG\"\n audit_log_enabled = true\n \
             default_x509_svid_ttl = \"30m\"\n}\n",
            |_| None,
        )
        .unwrap();
    assert_eq!(s.config.trust_domain.to_string(), "flag.example");
    assert_eq!(s.config.bind, "10.0.0.1:0".parse::<SocketAddr>().unwrap());
    assert_eq!(s.log.level, LogLevel::Error);
    assert!(!s.config.audit_log_enabled);
    // From the file, over the default; agent_ttl follows it as in SPIRE.
    assert_eq!(s.config.default_x509_svid_ttl, Duration::from_secs(1800));
    assert_eq!(s.config.agent_ttl, Duration::from_secs(1800));
}

#[test]
fn unknown_key_is_named_with_its_line_and_a_suggestion() {
    assert_eq!(
        error("server {\n  trust_domain = \"example.org\"\n  trust_domian = \"x\"\n}\n"),
        "unknown key \"trust_domian\" at line 3 in server {} (did you mean \"trust_domain\"?)"
    );
    assert_eq!(
        error("server {\n  colour = \"blue\"\n}\n"),
        "unknown key \"colour\" at line 2 in server {}"
    );
}

#[test]
fn unimplemented_spire_key_says_so() {
    assert_eq!(
        error("server {\n\n  ca_subject {}\n}\n"),
        "\"ca_subject\" (line 3) is a SPIRE server key that Lanyard does not implement yet"
    );
    assert_eq!(
        error("server {\n  federation {\n    bundle_endpoint {}\n  }\n}\n"),
        "\"federation\" (line 2) is a SPIRE server key that Lanyard does not implement yet"
    );
    assert_eq!(
        error("server {\n  profiling_enabled = true\n}\n"),
        "\"profiling_enabled\" (line 2) is a SPIRE server key that Lanyard does not implement yet"
    );
}

#[test]
fn unimplemented_plugins_say_so() {
    assert_eq!(
        error("plugins {\n  NodeAttestor \"sshpop\" {\n    plugin_data {}\n  }\n}\n"),
        "NodeAttestor \"sshpop\" (line 2) is a SPIRE plugin that Lanyard does not implement \
         yet: use NodeAttestor \"join_token\" or \"x509pop\""
    );
    let err = error("plugins {\n UpstreamAuthority \"vault\" {\n  plugin_data {}\n }\n}\n");
    assert!(
        err.starts_with("UpstreamAuthority \"vault\" (line 2) is a SPIRE plugin"),
        "{err}"
    );
    let err = error(
        "plugins {\n DataStore \"sql\" {\n  plugin_data {\n   database_type = \"aws_postgres\"\n  \
         }\n }\n}\n",
    );
    assert!(
        err.starts_with("database_type \"aws_postgres\" (line 4) is not supported yet"),
        "{err}"
    );
    let err = error(
        "plugins {\n DataStore \"sql\" {\n  plugin_data {\n   database_type = \"postgres\"\n   \
         connection_string = \"postgres://db/spire\"\n   max_idle_conns = 5\n  }\n }\n}\n",
    );
    assert!(err.contains("max_idle_conns"), "{err}");
}

#[test]
fn key_manager_memory_keeps_the_ca_keys_in_memory() {
    let s = load("plugins {\n KeyManager \"memory\" {\n  plugin_data = {}\n }\n}\n").unwrap();
    assert_eq!(s.config.key_manager, lanyard_server::KeyManagerKind::Memory);
    let s = load("plugins {\n KeyManager \"memory\" {}\n}\n").unwrap();
    assert_eq!(s.config.key_manager, lanyard_server::KeyManagerKind::Memory);
    let s = load("server {}\n").unwrap();
    assert_eq!(s.config.key_manager, lanyard_server::KeyManagerKind::Disk);

    let err =
        error("plugins {\n KeyManager \"memory\" {\n  plugin_data { directory = \"/x\" }\n }\n}\n");
    assert!(err.contains("directory"), "{err}");
    let err = error(
        "plugins {\n KeyManager \"disk\" {\n  plugin_data {}\n }\n KeyManager \"memory\" \
         {\n  plugin_data {}\n }\n}\n",
    );
    assert_eq!(
        err,
        "KeyManager \"memory\" at line 5 and KeyManager \"disk\" at line 2: a server has \
         exactly one KeyManager; keep one of them"
    );
}

#[test]
fn unknown_plugins_are_named() {
    let err = error("plugins {\n NodeAttestor \"magic\" {}\n}\n");
    assert!(
        err.starts_with("unknown plugin NodeAttestor \"magic\" at line 2"),
        "{err}"
    );
    let err = error("plugins {\n Datastore \"sql\" {}\n}\n");
    assert_eq!(
        err,
        "unknown key \"Datastore\" at line 2 in plugins {} (did you mean \"DataStore\"?)"
    );
}

#[test]
fn keys_path_puts_the_key_directory_beside_spire_s_key_file() {
    let keys = |keys_path: &str| {
        load(&format!(
            "server {{\n data_dir = \"/var/lib/spire\"\n}}\nplugins {{\n KeyManager \"disk\" \
             {{\n  plugin_data {{\n   keys_path = \"{keys_path}\"\n  }}\n }}\n}}\n"
        ))
        .unwrap()
        .config
        .keys_dir
    };
    // SPIRE's usual file in data_dir, and Lanyard's own directory: the default place.
    assert_eq!(keys("/var/lib/spire/keys.json"), None);
    assert_eq!(keys("/var/lib/spire/keys"), None);
    // Elsewhere: beside the file, on the volume the operator chose.
    assert_eq!(
        keys("/secrets/spire/keys.json"),
        Some(PathBuf::from("/secrets/spire/keys"))
    );
}

#[test]
fn datastore_block_is_used_as_spire_writes_it() {
    use lanyard_server::Engine;

    // SQLite: the path is used as given, so servers sharing one file can name it.
    let s = load(
        "server {\n data_dir = \"./d\"\n}\nplugins {\n DataStore \"sql\" {\n  plugin_data {\n   \
         database_type = \"sqlite3\"\n   connection_string = \"/shared/db.sqlite3\"\n   \
         max_open_conns = 4\n   disable_migration = true\n  }\n }\n}\n",
    )
    .unwrap();
    let db = s.config.datastore.unwrap();
    assert_eq!(db.engine, Engine::Sqlite);
    assert_eq!(db.connection_string, "/shared/db.sqlite3");
    assert_eq!(db.max_open_conns, 4);
    assert!(db.disable_migration);

    let s = load(
        "plugins {\n DataStore \"sql\" {\n  plugin_data {\n   database_type = \"postgres\"\n   \
         connection_string = \"dbname=spire host=db\"\n  }\n }\n}\n",
    )
    .unwrap();
    let db = s.config.datastore.unwrap();
    assert_eq!(db.engine, Engine::Postgres);
    assert_eq!(db.connection_string, "dbname=spire host=db");
    assert_eq!(db.max_open_conns, 0, "unset: the pool default");

    // Without a DataStore block the server uses <data_dir>/datastore.sqlite3.
    assert!(load("server {}\n").unwrap().config.datastore.is_none());

    let err = error(
        "plugins {\n DataStore \"sql\" {\n  plugin_data {\n   database_type = \"mysql\"\n  }\n \
         }\n}\n",
    );
    assert!(
        err.contains("has no plugin_data.connection_string"),
        "{err}"
    );
    let err = error(
        "plugins {\n DataStore \"sql\" {\n  plugin_data {\n   database_type = \"sqlite3\"\n   \
         connection_string = \"db\"\n   max_open_conns = 0\n  }\n }\n}\n",
    );
    assert!(err.contains("max_open_conns"), "{err}");
}

/// A `DataStore "sql"` block for `database_type` with `settings` (one `key = value` a line)
/// in its `plugin_data`.
fn sql_block(database_type: &str, connection_string: &str, settings: &[String]) -> String {
    let mut text = format!(
        "plugins {{\n DataStore \"sql\" {{\n  plugin_data {{\n   database_type = \
         \"{database_type}\"\n   connection_string = \"{connection_string}\"\n"
    );
    for setting in settings {
        text.push_str(&format!("   {setting}\n"));
    }
    text.push_str("  }\n }\n}\n");
    text
}

#[test]
fn datastore_tls_files_are_read_for_postgres_and_mysql() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, "PEM").unwrap();
        path.display().to_string()
    };
    let (ca, cert, key) = (file("ca.pem"), file("client.pem"), file("client.key"));
    let settings = [
        format!("root_ca_path = \"{ca}\""),
        format!("client_cert_path = \"{cert}\""),
        format!("client_key_path = \"{key}\""),
    ];
    for (engine, conn) in [
        ("postgres", "host=db"),
        ("mysql", "spire@tcp(db)/spire?tls=custom"),
    ] {
        let db = load(&sql_block(engine, conn, &settings))
            .unwrap()
            .config
            .datastore
            .unwrap();
        assert_eq!(db.root_ca_path.as_deref(), Some(Path::new(&ca)));
        assert_eq!(db.client_cert_path.as_deref(), Some(Path::new(&cert)));
        assert_eq!(db.client_key_path.as_deref(), Some(Path::new(&key)));
    }
    let db = load(&sql_block("postgres", "host=db", &settings[..1]))
        .unwrap()
        .config
        .datastore
        .unwrap();
    assert_eq!(db.client_cert_path, None);
}

#[test]
fn datastore_tls_files_are_refused_when_missing_halved_or_for_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem").display().to_string();
    let err = error(&sql_block(
        "postgres",
        "host=db",
        &[format!("root_ca_path = \"{missing}\"")],
    ));
    assert!(
        err.starts_with(&format!(
            "root_ca_path = \"{missing}\" at line 6: cannot read {missing}: "
        )),
        "{err}"
    );
    let dir_path = dir.path().display().to_string();
    let err = error(&sql_block(
        "mysql",
        "db/x",
        &[format!("client_key_path = \"{dir_path}\"")],
    ));
    assert!(
        err.contains(&format!("{dir_path} is not a regular file")),
        "{err}"
    );

    let cert = dir.path().join("client.pem");
    std::fs::write(&cert, "PEM").unwrap();
    let cert_setting = format!("client_cert_path = \"{}\"", cert.display());
    assert_eq!(
        error(&sql_block(
            "mysql",
            "db/x",
            std::slice::from_ref(&cert_setting)
        )),
        "DataStore \"sql\" client_cert_path at line 6 is set without client_key_path: a client \
         certificate needs both files"
    );
    assert_eq!(
        error(&sql_block("sqlite3", "./db.sqlite3", &[cert_setting])),
        "DataStore \"sql\" client_cert_path at line 6 is set for database_type \"sqlite3\": \
         TLS settings apply to postgres and mysql only"
    );
}

#[test]
fn admin_ids_and_cache_reload_interval_are_read() {
    let s = load(
        "server {\n trust_domain = \"example.org\"\n admin_ids = [\"spiffe://example.org/ops\"]\n \
         cache_reload_interval = \"2s\"\n}\n",
    )
    .unwrap();
    assert_eq!(s.config.admin_ids.len(), 1);
    assert_eq!(s.config.admin_ids[0].as_str(), "spiffe://example.org/ops");
    assert_eq!(s.config.cache_reload_interval, Duration::from_secs(2));
    let err = error("server {\n admin_ids = [\"not an id\"]\n}\n");
    assert!(err.contains("admin_ids \"not an id\""), "{err}");
    let err = error("server {\n admin_ids = \"spiffe://example.org/ops\"\n}\n");
    assert!(err.contains("is a list of SPIFFE IDs"), "{err}");
}

#[test]
fn wrong_type_is_named() {
    assert_eq!(
        error("server {\n  audit_log_enabled = \"yes\"\n}\n"),
        "\"audit_log_enabled\" at line 2 must be true or false, not a string"
    );
    assert_eq!(
        error("server {\n  data_dir = 5\n}\n"),
        "\"data_dir\" at line 2 must be a string, not a whole number"
    );
}

#[test]
fn bad_duration_is_named() {
    let err = error("server {\n  ca_ttl = \"1x\"\n}\n");
    assert_eq!(
        err,
        "ca_ttl \"1x\" (line 2) is not a duration: use whole seconds (3600) or numbers with \
         units: ns, us (or µs), ms, s, m, h, d (1h30m, 500ms)"
    );
}

#[test]
fn a_ca_ttl_no_certificate_can_hold_is_refused_before_anything_is_created() {
    let s = load("server {\n  ca_ttl = \"99999999999999h\"\n}\n").unwrap();
    let err = s.config.validate().unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid configuration: ca_ttl 359999999999996400s is too long: at most 3153600000s \
         (100 years) is accepted"
    );
}

#[test]
fn data_dir_flag_moves_plugin_paths_that_follow_the_files_data_dir() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/server.conf");
    let flags = ServerFlags {
        config: Some(path),
        data_dir: Some(PathBuf::from("./mydata")),
        ..Default::default()
    };
    let s = flags.load().unwrap();
    assert_eq!(s.config.data_dir, Path::new("./mydata"));
}

#[test]
fn a_built_in_plugin_cannot_be_disabled() {
    let err = error("plugins {\n  NodeAttestor \"join_token\" {\n    enabled = false\n  }\n}\n");
    assert_eq!(
        err,
        "NodeAttestor \"join_token\" (line 2) cannot be disabled: it is built in"
    );
}

#[test]
fn a_huge_value_is_clipped_in_its_message() {
    let text = format!(
        "server {{\n  trust_domain = \"{}\"\n}}\n",
        "A".repeat(1_000_000)
    );
    let err = error(&text);
    assert!(err.len() < 400, "{} bytes: {}", err.len(), &err[..400]);
    assert!(err.starts_with(&format!(
        "trust_domain = \"{}\"… at line 2: ",
        "A".repeat(64)
    )));
}

#[test]
fn health_and_prometheus_on_one_port_under_two_spellings_are_refused() {
    let s = load(
        "health_checks {\n  listener_enabled = true\n  bind_address = \"localhost\"\n  \
         bind_port = 9000\n}\ntelemetry {\n  Prometheus {\n    host = \"127.0.0.1\"\n    \
         port = 9000\n  }\n}\n",
    )
    .unwrap();
    let err = s.config.validate().unwrap_err().to_string();
    assert_eq!(
        err,
        "health_checks bind_port localhost:9000 and telemetry Prometheus port 127.0.0.1:9000 \
         cannot both listen: give them different ports, or the same host written the same way \
         to share one listener"
    );
}

#[test]
fn validate_refuses_one_path_for_both_probes() {
    let s = load(
        "health_checks {\n  listener_enabled = true\n  bind_port = 0\n  live_path = \"/x\"\n  \
         ready_path = \"/x\"\n}\n",
    )
    .unwrap();
    let problems = super::super::validate::server(&s).problems;
    assert!(
        problems
            .contains(&"health_checks ready_path \"/x\": must differ from live_path".to_owned()),
        "{problems:?}"
    );
}

#[test]
fn health_on_the_servers_port_is_refused() {
    let s = load(
        "server {\n  bind_address = \"0.0.0.0\"\n  bind_port = 8081\n}\nhealth_checks {\n  \
         listener_enabled = true\n  bind_port = 8081\n}\n",
    )
    .unwrap();
    let err = s.config.validate().unwrap_err().to_string();
    assert!(
        err.starts_with("bind_port 0.0.0.0:8081 and health_checks bind_port localhost:8081"),
        "{err}"
    );
}

#[test]
fn bad_trust_domain_is_named() {
    let err = error("server {\n  trust_domain = \"Example.org\"\n}\n");
    assert!(
        err.starts_with("trust_domain = \"Example.org\" at line 2: "),
        "{err}"
    );
    assert!(err.contains("upper case is not allowed"), "{err}");
    let err = error("server {\n  trust_domain = \"spiffe://example.org\"\n}\n");
    assert!(err.contains("give the bare trust domain name"), "{err}");
}

#[test]
fn bad_log_level_is_named() {
    let err = error("server {\n  log_level = \"LOUD\"\n}\n");
    assert!(
        err.starts_with("log_level = \"LOUD\" at line 2: not a log level"),
        "{err}"
    );
}

#[test]
fn unset_variable_under_expand_env_is_named() {
    let flags = ServerFlags {
        expand_env: true,
        ..Default::default()
    };
    let text = "server {\n  trust_domain = \"${TD}\"\n  data_dir = \"${DATA}\"\n}\n";
    let err = flags
        .load_text(text, |n| (n == "TD").then(|| "env.example".into()))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("environment variable DATA (line 3) is not set"),
        "{err}"
    );
    let s = flags
        .load_text(text, |n| {
            Some(if n == "TD" { "env.example" } else { "/srv/d" }.into())
        })
        .unwrap();
    assert_eq!(s.config.trust_domain.to_string(), "env.example");
    assert_eq!(s.config.data_dir, PathBuf::from("/srv/d"));
}

#[test]
fn duplicate_blocks_are_merged_and_duplicate_keys_refused() {
    // SPIRE (HCL 1) merges repeated top-level blocks; a key set twice, in one block or across
    // two, is refused with both lines (SPIRE silently keeps the last value).
    assert_eq!(
        error("server {\n ca_ttl = \"1h\"\n}\n\nserver {\n ca_ttl = \"2h\"\n}\n"),
        "duplicate key \"ca_ttl\" at line 6 in server {}: it was already set at line 2"
    );
    assert_eq!(
        error("server {\n ca_ttl = 60\n ca_ttl = 90\n}\n"),
        "duplicate key \"ca_ttl\" at line 3 in server {}: it was already set at line 2"
    );
    assert_eq!(
        error("server {\n ratelimit {}\n ratelimit {}\n}\n"),
        "duplicate key \"ratelimit\" at line 3 in server {}: it was already set at line 2"
    );
    let err = error("plugins {\n KeyManager \"disk\" {}\n KeyManager \"disk\" {}\n}\n");
    assert_eq!(
        err,
        "duplicate block KeyManager \"disk\" at line 3: it was already given at line 2"
    );
}

#[test]
fn syntax_error_has_its_line() {
    let err = error("server {\n  trust_domain = \"example.org\"\n  ca_ttl = = 5\n}\n");
    assert!(err.starts_with("HCL syntax error at line 3"), "{err}");
}

#[test]
fn agent_block_in_a_server_file_is_unknown() {
    assert_eq!(
        error("agent {}\n"),
        "unknown key \"agent\" at line 1 in the server config file"
    );
}

#[test]
fn upstream_authority_disk_maps_spire_keys() {
    let s = load(
        "plugins {\n UpstreamAuthority \"disk\" {\n  plugin_data {\n   cert_file_path = \
         \"/etc/ca/intermediate.crt\"\n   key_file_path = \"/etc/ca/intermediate.key\"\n   \
         bundle_file_path = \"/etc/ca/root.crt\"\n  }\n }\n}\n",
    )
    .unwrap();
    assert_eq!(
        s.config.upstream,
        Some(lanyard_server::UpstreamDisk {
            cert_path: "/etc/ca/intermediate.crt".into(),
            key_path: "/etc/ca/intermediate.key".into(),
            bundle_path: Some("/etc/ca/root.crt".into()),
        })
    );

    let s = load(
        "plugins {\n UpstreamAuthority \"disk\" {\n  plugin_data {\n   cert_file_path = \
         \"root.crt\"\n   key_file_path = \"root.key\"\n  }\n }\n}\n",
    )
    .unwrap();
    assert_eq!(s.config.upstream.unwrap().bundle_path, None);
    assert_eq!(load("server {}\n").unwrap().config.upstream, None);
}

#[test]
fn upstream_authority_disk_needs_cert_and_key() {
    let err = error(
        "plugins {\n UpstreamAuthority \"disk\" {\n  plugin_data {\n   cert_file_path = \
         \"root.crt\"\n  }\n }\n}\n",
    );
    assert!(
        err.contains("UpstreamAuthority \"disk\" at line 2 has no plugin_data.key_file_path"),
        "{err}"
    );
    let err = error(
        "plugins {\n UpstreamAuthority \"disk\" {\n  plugin_data {\n   cert_file = \
         \"root.crt\"\n  }\n }\n}\n",
    );
    assert!(err.contains("cert_file"), "{err}");
}

#[test]
fn connection_strings_that_run_would_refuse_are_refused_without_echoing_the_password() {
    for (database_type, connection_string, expected) in [
        // Only a password: redaction could not recognise it, so nothing is echoed.
        ("postgres", "SECRETPW", "connection string cannot be used"),
        ("postgres", "port=abc password=SECRETPW", "port"),
        (
            "mysql",
            "u:SECRETPW@tcp(127.0.0.1:1/db",
            "connection string cannot be used",
        ),
        // A server URL given as an SQLite file.
        (
            "sqlite3",
            "postgres://u:SECRETPW@127.0.0.1:1/db",
            "database_type sqlite3 takes a file path",
        ),
        (
            "sqlite3",
            "file:/tmp/x.db?password=SECRETPW",
            "give only the file's path",
        ),
    ] {
        let err = error(&sql_block(database_type, connection_string, &[]));
        assert!(err.contains(expected), "{connection_string}: {err}");
        assert!(!err.contains("SECRETPW"), "{connection_string}: {err}");
    }
}
