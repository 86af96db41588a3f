//! `agent {}` files: SPIRE-shaped samples load, and each kind of mistake is named with its line.

use std::path::Path;
use std::time::Duration;

use super::*;

fn load(text: &str) -> Result<AgentSettings, ConfigError> {
    AgentFlags::default().load_text(text, |_| None)
}

fn error(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

/// An agent file written from the keys SPIRE documents, in SPIRE's layout.
const SPIRE_STYLE: &str = r#"
agent {
    data_dir = "/var/lib/lanyard-agent"
    log_level = "info"
    server_address = "lanyard-server.internal"
    server_port = "8081"
    socket_path = "/run/lanyard/agent.sock"
    trust_bundle_path = "/etc/lanyard/bootstrap.pem"
    trust_bundle_format = "pem"
    trust_domain = "prod.example"
    join_token = "abc123"
    workload_x509_svid_key_type = "ec-p384"
    experimental {
        sync_interval = "10s"
    }
}

plugins {
    NodeAttestor "join_token" {
        plugin_data {}
    }
    KeyManager "disk" {
        plugin_data {
            directory = "/var/lib/lanyard-agent"
        }
    }
    WorkloadAttestor "unix" {
        plugin_data {
            discover_workload_path = false
        }
    }
}

telemetry {
    Prometheus {
        port = 9989
    }
}
"#;

#[test]
fn loads_a_spire_style_agent_file() {
    let s = load(SPIRE_STYLE).unwrap();
    let c = &s.config;
    assert_eq!(c.trust_domain.to_string(), "prod.example");
    assert_eq!(c.server_address, "lanyard-server.internal:8081");
    assert_eq!(c.socket_path, Path::new("/run/lanyard/agent.sock"));
    assert_eq!(
        c.trust_bundle,
        TrustBootstrap::Pem("/etc/lanyard/bootstrap.pem".into())
    );
    assert_eq!(c.join_token.as_deref(), Some("abc123"));
    assert_eq!(c.sync_interval, Duration::from_secs(10));
    assert_eq!(c.workload_key_type, KeyType::EcP384);
    assert_eq!(c.telemetry.prometheus.as_ref().unwrap().host, "localhost");
    c.validate().unwrap();
}

#[test]
fn the_sample_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/agent.conf");
    let flags = AgentFlags {
        config: Some(path),
        ..Default::default()
    };
    let s = flags.load().unwrap();
    assert_eq!(s.config.server_address, "127.0.0.1:8081");
    assert_eq!(
        s.config.trust_bundle,
        TrustBootstrap::Pem("./bootstrap.pem".into())
    );
    s.config.validate().unwrap();
}

#[test]
fn flags_override_the_file() {
    let flags = AgentFlags {
        server_address: Some("10.1.1.1:9000".into()),
        insecure_bootstrap: true,
        sync_interval: Some(Duration::from_millis(500)),
        ..Default::default()
    };
    let s = flags.load_text(SPIRE_STYLE, |_| None).unwrap();
    assert_eq!(s.config.server_address, "10.1.1.1:9000");
    assert_eq!(s.config.trust_bundle, TrustBootstrap::Insecure);
    assert_eq!(s.config.sync_interval, Duration::from_millis(500));
    // Not given on the command line: from the file.
    assert_eq!(s.config.join_token.as_deref(), Some("abc123"));
}

#[test]
fn server_port_flag_combines_with_the_file_host() {
    let flags = AgentFlags {
        server_port: Some(7000),
        insecure_bootstrap: true,
        ..Default::default()
    };
    let s = flags
        .load_text("agent {\n server_address = \"::1\"\n}\n", |_| None)
        .unwrap();
    assert_eq!(s.config.server_address, "[::1]:7000");
}

#[test]
fn a_trust_source_is_required_and_only_one() {
    let err = error("agent {\n trust_domain = \"example.org\"\n}\n");
    assert!(err.contains("set trust_bundle_path"), "{err}");
    let err = error("agent {\n trust_bundle_path = \"b.pem\"\n insecure_bootstrap = true\n}\n");
    assert!(err.contains("give exactly one"), "{err}");
}

#[test]
fn trust_bundle_url_and_format_come_from_the_file_or_the_flags() {
    let file = "agent {\n trust_bundle_url = \"https://bundles.example/td\"\n \
                trust_bundle_format = \"spiffe\"\n}\n";
    assert_eq!(
        load(file).unwrap().config.trust_bundle,
        TrustBootstrap::Url {
            url: "https://bundles.example/td".into(),
            format: BundleFormat::Spiffe,
        }
    );
    let file = "agent {\n trust_bundle_path = \"/b.json\"\n trust_bundle_format = \"spiffe\"\n}\n";
    assert_eq!(
        load(file).unwrap().config.trust_bundle,
        TrustBootstrap::Spiffe("/b.json".into())
    );

    let flags = AgentFlags {
        trust_bundle_url: Some("https://flag.example/b.pem".into()),
        ..Default::default()
    };
    let s = flags.load_text(SPIRE_STYLE, |_| None).unwrap();
    assert_eq!(
        s.config.trust_bundle,
        TrustBootstrap::Url {
            url: "https://flag.example/b.pem".into(),
            format: BundleFormat::Pem,
        },
        "the flag replaces the file's trust_bundle_path"
    );
    let flags = AgentFlags {
        trust_bundle: Some("/flag.json".into()),
        trust_bundle_format: Some("spiffe".into()),
        ..Default::default()
    };
    let s = flags.load_text(SPIRE_STYLE, |_| None).unwrap();
    assert_eq!(
        s.config.trust_bundle,
        TrustBootstrap::Spiffe("/flag.json".into())
    );
}

#[test]
fn trust_bundle_url_must_be_https_and_the_only_source() {
    let err = error("agent {\n trust_bundle_url = \"http://bundles.example/td\"\n}\n");
    assert!(
        err.contains("line 2") && err.contains("plain http is refused"),
        "{err}"
    );
    let err = error(
        "agent {\n trust_bundle_path = \"/b.pem\"\n trust_bundle_url = \"https://b.example\"\n}\n",
    );
    assert!(
        err.contains("trust_bundle_path and trust_bundle_url (line 3) are both set"),
        "{err}"
    );
    let err = error(
        "agent {\n trust_bundle_url = \"https://b.example\"\n insecure_bootstrap = true\n}\n",
    );
    assert!(err.contains("give exactly one"), "{err}");
    let err = error("agent {\n trust_bundle_format = \"der\"\n}\n");
    assert!(err.contains("the formats are pem and spiffe"), "{err}");

    // A flag URL is checked when the configuration is validated, before anything starts.
    let flags = AgentFlags {
        trust_bundle_url: Some("http://flag.example/b.pem".into()),
        ..Default::default()
    };
    let s = flags.load_text("agent {}\n", |_| None).unwrap();
    let err = s.config.validate().unwrap_err().to_string();
    assert!(err.contains("plain http is refused"), "{err}");
}

#[test]
fn rebootstrap_keys_are_read_with_spires_defaults() {
    let s = load("agent {\n trust_bundle_path = \"/b.pem\"\n}\n").unwrap();
    assert_eq!(s.config.rebootstrap_mode, RebootstrapMode::Never);
    assert_eq!(s.config.rebootstrap_delay, Duration::from_secs(600));

    let file = "agent {\n trust_bundle_path = \"/b.pem\"\n rebootstrap_mode = \"auto\"\n \
                rebootstrap_delay = \"5m\"\n}\n";
    let s = load(file).unwrap();
    assert_eq!(s.config.rebootstrap_mode, RebootstrapMode::Auto);
    assert_eq!(s.config.rebootstrap_delay, Duration::from_secs(300));
    s.config.validate().unwrap();

    let err =
        error("agent {\n trust_bundle_path = \"/b.pem\"\n rebootstrap_mode = \"sometimes\"\n}\n");
    assert!(
        err.contains("line 3") && err.contains("the modes are never, auto and always"),
        "{err}"
    );
}

#[test]
fn rebootstrapping_needs_a_bundle_and_for_always_an_attestor_that_attests_again() {
    let file = "agent {\n insecure_bootstrap = true\n rebootstrap_mode = \"auto\"\n}\n";
    let err = load(file)
        .unwrap()
        .config
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("insecure_bootstrap cannot be used"), "{err}");

    let file = "agent {\n trust_bundle_path = \"/b.pem\"\n rebootstrap_mode = \"always\"\n \
                join_token = \"t\"\n}\n";
    let err = load(file)
        .unwrap()
        .config
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("a join token is single-use"), "{err}");
}

#[test]
fn unknown_and_unimplemented_keys_are_named() {
    assert_eq!(
        error("agent {\n  server_adress = \"x\"\n}\n"),
        "unknown key \"server_adress\" at line 2 in agent {} (did you mean \"server_address\"?)"
    );
    assert_eq!(
        error("agent {\n  trust_bundle_unix_socket = \"/run/b.sock\"\n}\n"),
        "\"trust_bundle_unix_socket\" (line 2) is a SPIRE agent key that Lanyard does not \
         implement yet"
    );
    assert_eq!(
        error("agent {\n  experimental {\n    named_pipe_name = \"x\"\n  }\n}\n"),
        "\"experimental.named_pipe_name\" (line 3) is a SPIRE agent key that Lanyard does not \
         implement yet"
    );
}

#[test]
fn unimplemented_agent_plugins_say_so() {
    let err = error("plugins {\n  WorkloadAttestor \"k8s\" {\n    plugin_data {}\n  }\n}\n");
    assert_eq!(
        err,
        "WorkloadAttestor \"k8s\" (line 2) is a SPIRE plugin that Lanyard does not implement \
         yet: use WorkloadAttestor \"unix\""
    );
}

const UNIX_PATH: &str = "agent {\n insecure_bootstrap = true\n}\nplugins {\n WorkloadAttestor \
                         \"unix\" {\n  plugin_data {\n   discover_workload_path = true\n   \
                         workload_size_limit = LIMIT\n  }\n }\n}\n";

#[test]
fn the_unix_attestor_settings_are_mapped_with_spires_meaning() {
    let table = [
        ("0", lanyard_agent::WorkloadSizeLimit::Unlimited),
        (
            "1048576",
            lanyard_agent::WorkloadSizeLimit::Bytes(1_048_576),
        ),
        ("-1", lanyard_agent::WorkloadSizeLimit::NeverHash),
    ];
    for (limit, want) in table {
        let s = load(&UNIX_PATH.replace("LIMIT", limit)).unwrap();
        assert!(s.config.unix_attestor.discover_workload_path, "{limit}");
        assert_eq!(s.config.unix_attestor.workload_size_limit, want, "{limit}");
    }
}

#[test]
fn the_unix_attestor_defaults_to_no_path_discovery() {
    let s = load("agent {\n insecure_bootstrap = true\n}\n").unwrap();
    assert_eq!(
        s.config.unix_attestor,
        lanyard_agent::UnixAttestorConfig::default()
    );
    assert!(!s.config.unix_attestor.discover_workload_path);
}

#[test]
fn bad_unix_attestor_settings_are_named() {
    let err = error(&UNIX_PATH.replace("LIMIT", "\"1MB\""));
    assert!(err.contains("workload_size_limit"), "{err}");
    assert!(err.contains("line 8"), "{err}");
    let err = error(&UNIX_PATH.replace("workload_size_limit = LIMIT", "other_key = 1"));
    assert!(
        err.starts_with("unknown key \"other_key\" at line 8"),
        "{err}"
    );
    let text = UNIX_PATH.replace("LIMIT", "0").replace(
        "discover_workload_path = true",
        "discover_workload_path = 1",
    );
    let err = error(&text);
    assert!(err.contains("discover_workload_path"), "{err}");
}

#[test]
fn a_disabled_plugin_is_left_out() {
    load(
        "agent {\n insecure_bootstrap = true\n}\nplugins {\n WorkloadAttestor \"docker\" {\n  \
         enabled = false\n }\n}\n",
    )
    .unwrap();
}

#[test]
fn a_built_in_plugin_cannot_be_disabled() {
    let err = error(
        "agent {\n insecure_bootstrap = true\n}\nplugins {\n WorkloadAttestor \"unix\" {\n  \
         enabled = false\n }\n}\n",
    );
    assert_eq!(
        err,
        "WorkloadAttestor \"unix\" (line 5) cannot be disabled: it is built in"
    );
}

#[test]
fn an_empty_join_token_is_named_with_its_line() {
    assert_eq!(
        error("agent {\n insecure_bootstrap = true\n join_token = \"\"\n}\n"),
        "join_token = \"\" at line 3: the join token is empty: give one from `lanyard server \
         token generate`, or leave the key out"
    );
}

#[test]
fn workload_keys_are_the_types_spire_offers() {
    let err = error(
        "agent {\n insecure_bootstrap = true\n workload_x509_svid_key_type = \"rsa-4096\"\n}\n",
    );
    assert_eq!(
        err,
        "workload_x509_svid_key_type = \"rsa-4096\" at line 3: not a workload key type: use \
         ec-p256, ec-p384 or rsa-2048"
    );
}

#[test]
fn data_dir_flag_moves_the_key_directory_that_follows_the_files_data_dir() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/agent.conf");
    let flags = AgentFlags {
        config: Some(path),
        data_dir: Some("./mydata".into()),
        ..Default::default()
    };
    let config = flags.load().unwrap().config;
    assert_eq!(config.data_dir, Path::new("./mydata"));
    assert_eq!(
        config.key_manager,
        AgentKeyManager::Disk { directory: None },
        "the keys stay with the data"
    );
}

/// An agent file with `KeyManager BLOCK` as its only plugin.
fn with_key_manager(block: &str) -> String {
    format!(
        "agent {{\n data_dir = \"/var/lib/agent\"\n insecure_bootstrap = true\n}}\n\
         plugins {{\n KeyManager {block}\n}}\n"
    )
}

#[test]
fn key_manager_memory_keeps_the_agent_key_in_memory() {
    // The form of SPIRE's Kubernetes quickstart agent config.
    let s = load(&with_key_manager("\"memory\" {\n  plugin_data {}\n }")).unwrap();
    assert_eq!(s.config.key_manager, AgentKeyManager::Memory);
    let s = load(&with_key_manager("\"memory\" {}")).unwrap();
    assert_eq!(s.config.key_manager, AgentKeyManager::Memory);
    let s = load("agent {\n insecure_bootstrap = true\n}\n").unwrap();
    assert_eq!(
        s.config.key_manager,
        AgentKeyManager::Disk { directory: None }
    );
}

#[test]
fn key_manager_memory_takes_no_settings_and_excludes_disk() {
    let err = error(&with_key_manager(
        "\"memory\" {\n  plugin_data { directory = \"/x\" }\n }",
    ));
    assert!(err.contains("directory"), "{err}");
    assert!(err.contains("line 7"), "{err}");
    let err = error(&with_key_manager(
        "\"disk\" {\n  plugin_data {}\n }\n KeyManager \"memory\" {\n  plugin_data {}\n }",
    ));
    assert_eq!(
        err,
        "KeyManager \"memory\" at line 9 and KeyManager \"disk\" at line 6: an agent has \
         exactly one KeyManager; keep one of them"
    );
}

#[test]
fn a_key_directory_apart_from_data_dir_holds_the_keys_wherever_data_dir_goes() {
    let text =
        with_key_manager("\"disk\" {\n  plugin_data { directory = \"/srv/agent-keys\" }\n }");
    let want = AgentKeyManager::Disk {
        directory: Some("/srv/agent-keys".into()),
    };
    let s = load(&text).unwrap();
    assert_eq!(s.config.key_manager, want);
    assert_eq!(s.config.data_dir, Path::new("/var/lib/agent"));

    let flags = AgentFlags {
        data_dir: Some("/elsewhere".into()),
        ..Default::default()
    };
    let s = flags.load_text(&text, |_| None).unwrap();
    assert_eq!(s.config.data_dir, Path::new("/elsewhere"));
    assert_eq!(
        s.config.key_manager, want,
        "a key directory of its own stays put"
    );
}

#[test]
fn a_key_directory_that_is_data_dir_however_spelled_follows_data_dir() {
    for spelling in ["/var/lib/agent", "/var/lib/agent/", "/var/lib/./agent"] {
        let text = with_key_manager(&format!(
            "\"disk\" {{\n  plugin_data {{ directory = {spelling:?} }}\n }}"
        ));
        assert_eq!(
            load(&text).unwrap().config.key_manager,
            AgentKeyManager::Disk { directory: None },
            "{spelling}"
        );
    }
}

#[test]
fn join_token_file_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("token");
    std::fs::write(&path, "tok-123\n").unwrap();
    let text = format!(
        "agent {{\n insecure_bootstrap = true\n join_token_file = {:?}\n}}\n",
        path.display().to_string()
    );
    assert_eq!(
        load(&text).unwrap().config.join_token.as_deref(),
        Some("tok-123")
    );
    std::fs::remove_file(&path).unwrap();
    let err = load(&text).unwrap_err().to_string();
    assert!(err.starts_with("cannot read the join token file"), "{err}");
}

#[test]
fn an_empty_join_token_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("token");
    std::fs::write(&path, " \n").unwrap();
    let text = format!(
        "agent {{\n insecure_bootstrap = true\n join_token_file = {:?}\n}}\n",
        path.display().to_string()
    );
    assert_eq!(
        load(&text).unwrap_err().to_string(),
        format!(
            "join token file {} is empty: write the token printed by `lanyard server token \
             generate` into it",
            path.display()
        )
    );
}

#[test]
fn server_port_zero_and_too_large_give_the_same_range() {
    for port in ["0", "70000", "\"x\""] {
        let err = error(&format!(
            "agent {{\n insecure_bootstrap = true\n server_port = {port}\n}}\n"
        ));
        assert_eq!(
            err,
            format!(
                "server_port = {port} at line 3: the port of a server is a number from 1 to 65535"
            )
        );
    }
}

#[test]
fn a_join_token_file_that_is_a_device_is_refused_without_reading_it() {
    let err = load("agent {\n insecure_bootstrap = true\n join_token_file = \"/dev/zero\"\n}\n")
        .unwrap_err();
    assert_eq!(
        format!("{:#}", anyhow::Error::new(err)),
        "cannot read the join token file /dev/zero: it is a character device: only a regular \
         file is read"
    );
}

#[test]
fn x509_svid_cache_max_size_is_read_checked_and_overridden_by_its_flag() {
    let file = "agent {\n trust_bundle_path = \"/b.pem\"\n x509_svid_cache_max_size = 50\n}\n";
    assert_eq!(load(file).unwrap().config.x509_svid_cache_max_size, 50);
    let flags = AgentFlags {
        x509_svid_cache_max_size: Some(7),
        ..AgentFlags::default()
    };
    let s = flags.load_text(file, |_| None).unwrap();
    assert_eq!(s.config.x509_svid_cache_max_size, 7);

    let negative =
        error("agent {\n trust_bundle_path = \"/b.pem\"\n x509_svid_cache_max_size = -1\n}\n");
    assert!(negative.contains("x509_svid_cache_max_size"), "{negative}");
    assert!(negative.contains("line 3"), "{negative}");
    assert!(negative.contains("cannot be negative"), "{negative}");
    let text = error(
        "agent {\n trust_bundle_path = \"/b.pem\"\n x509_svid_cache_max_size = \"many\"\n}\n",
    );
    assert!(text.contains("whole number"), "{text}");
}
