//! SPIRE-style config files through the real binary: `server validate` accepts a good file and
//! names the problems of a bad one, and `server run --config` starts from a file alone.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use lanyard_testkit::Lanyard;

use crate::common::*;

/// A server file in SPIRE's layout whose state lives in `dir`, on a random loopback port.
fn server_file(dir: &Path, extra_server_keys: &str) -> String {
    let data = dir.join("data");
    format!(
        r#"
server {{
    bind_address = "127.0.0.1"
    bind_port = 0
    socket_path = "{socket}"
    trust_domain = "example.org"
    data_dir = "{data}"
    log_level = "DEBUG"
    log_format = "json"
    {extra_server_keys}
}}

plugins {{
    DataStore "sql" {{
        plugin_data {{
            database_type = "sqlite3"
            connection_string = "{data}/datastore.sqlite3"
        }}
    }}
    NodeAttestor "join_token" {{
        plugin_data {{}}
    }}
    KeyManager "disk" {{
        plugin_data {{
            keys_path = "{data}/keys"
        }}
    }}
}}
"#,
        socket = dir.join("admin.sock").display(),
        data = data.display(),
    )
}

fn write(l: &Lanyard, name: &str, text: &str) -> String {
    let path = l.path(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn validate_accepts_a_good_file() {
    let l = lanyard();
    let conf = write(&l, "server.conf", &server_file(l.dir(), ""));
    let out = l.cli(&["server", "validate", "--config", &conf]);
    assert!(out.success, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout.trim(), "configuration is valid");
    assert!(
        !l.dir().join("data").exists(),
        "validate must not create the data directory"
    );
}

#[test]
fn validate_names_an_unknown_key_and_its_line() {
    let l = lanyard();
    let conf = write(
        &l,
        "bad.conf",
        "server {\n  trust_domain = \"example.org\"\n  trust_domian = \"x\"\n}\n",
    );
    let out = l.cli(&["server", "validate", "--config", &conf]);
    assert!(!out.success);
    assert!(
        out.stderr.contains(
            "unknown key \"trust_domian\" at line 3 in server {} (did you mean \"trust_domain\"?)"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn validate_warns_about_ttls_the_ca_would_cut_short_as_spire_does() {
    let l = lanyard();
    let conf = write(
        &l,
        "ttl.conf",
        &server_file(l.dir(), "default_x509_svid_ttl = \"5h\""),
    );
    let out = l.cli(&["server", "validate", "--config", &conf]);
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "note: default_x509_svid_ttl 18000s is longer than ca_ttl 86400s lets it run"
        ) && out
            .stderr
            .contains("set default_x509_svid_ttl to 14400s or less"),
        "{}",
        out.stderr
    );
    // A flag overrides the file, and then there is nothing to say.
    let out = l.cli(&[
        "server",
        "validate",
        "--config",
        &conf,
        "--default-x509-svid-ttl",
        "1h",
    ]);
    assert!(out.success, "{}", out.stderr);
    assert!(!out.stderr.contains("note:"), "{}", out.stderr);
}

#[test]
fn validate_refuses_an_unset_variable_under_expand_env() {
    let l = lanyard();
    let conf = write(
        &l,
        "env.conf",
        "server {\n  trust_domain = \"${LANYARD_TEST_UNSET_TD}\"\n}\n",
    );
    let out = l.cli(&["server", "validate", "--config", &conf, "--expand-env"]);
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("environment variable LANYARD_TEST_UNSET_TD (line 2) is not set"),
        "{}",
        out.stderr
    );
    let out = l.cli_with_env(
        &["server", "validate", "--config", &conf, "--expand-env"],
        &[("LANYARD_TEST_UNSET_TD", "env.example")],
    );
    assert!(out.success, "{}", out.stderr);
}

#[test]
fn validate_notes_a_running_daemon_without_failing() {
    let l = lanyard();
    let conf = write(&l, "server.conf", &server_file(l.dir(), ""));
    let _daemon = std::os::unix::net::UnixListener::bind(l.dir().join("admin.sock")).unwrap();
    let out = l.cli(&["server", "validate", "--config", &conf]);
    assert!(out.success, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "note: socket_path {}: a process is listening on this socket now (the running \
             daemon?)"
                .replace("{}", &l.dir().join("admin.sock").display().to_string())
                .as_str()
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn run_and_validate_refuse_a_log_file_in_a_missing_directory() {
    let l = lanyard();
    let log = l.dir().join("nonexistent/dir/x.log");
    let conf = write(
        &l,
        "server.conf",
        &server_file(l.dir(), &format!("log_file = \"{}\"", log.display())),
    );
    let expected = format!(
        "log_file {}: directory {} does not exist: create it or choose another path",
        log.display(),
        l.dir().join("nonexistent/dir").display()
    );
    for command in ["validate", "run"] {
        let out = l.cli(&["server", command, "--config", &conf]);
        assert!(!out.success, "{command}");
        assert!(out.stderr.contains(&expected), "{command}: {}", out.stderr);
    }
}

#[test]
fn validate_refuses_a_health_port_already_in_use() {
    let l = lanyard();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let conf = format!(
        "{}\nhealth_checks {{\n    listener_enabled = true\n    bind_address = \"127.0.0.1\"\n    \
         bind_port = \"{port}\"\n}}\n",
        server_file(l.dir(), "")
    );
    let conf = write(&l, "server.conf", &conf);
    let out = l.cli(&["server", "validate", "--config", &conf]);
    assert!(!out.success, "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!(
            "health_checks bind_address/bind_port 127.0.0.1:{port}: the address is already in \
             use: stop what listens there or choose another port"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn run_and_validate_say_the_same_of_a_data_dir_that_is_a_file() {
    let l = lanyard();
    let conf = write(&l, "server.conf", &server_file(l.dir(), ""));
    std::fs::write(l.dir().join("data"), "").unwrap();
    let data = l.dir().join("data").display().to_string();
    let expected = format!("data_dir {data}: {data} is not a directory");
    for command in ["validate", "run"] {
        let out = l.cli(&["server", command, "--config", &conf]);
        assert!(!out.success, "{command}");
        assert!(out.stderr.contains(&expected), "{command}: {}", out.stderr);
    }
}

#[test]
fn run_refuses_a_ca_ttl_no_certificate_can_hold_and_creates_nothing() {
    let l = lanyard();
    let conf = write(
        &l,
        "server.conf",
        &server_file(l.dir(), "ca_ttl = \"99999999999999h\""),
    );
    for command in ["validate", "run"] {
        let out = l.cli(&["server", command, "--config", &conf]);
        assert!(!out.success, "{command}");
        assert!(
            out.stderr.contains(
                "ca_ttl 359999999999996400s is too long: at most 3153600000s (100 years)"
            ),
            "{command}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("SystemTime"), "{}", out.stderr);
    }
    assert!(!l.dir().join("data").exists());
}

#[test]
fn a_config_that_is_not_a_regular_file_is_refused() {
    let l = lanyard();
    let out = l.cli(&["server", "validate", "--config", "/dev/zero"]);
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("config file /dev/zero is not a regular file"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_data_dir_flag_overrides_the_shipped_sample() {
    let l = lanyard();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/server.conf");
    let mydata = l.dir().join("mydata").display().to_string();
    let out = l.cli(&[
        "server",
        "validate",
        "--config",
        &sample.display().to_string(),
        "--data-dir",
        &mydata,
        "--socket",
        &l.dir().join("admin.sock").display().to_string(),
    ]);
    assert!(out.success, "{}\n{}", out.stdout, out.stderr);
}

#[test]
fn join_token_ttl_is_capped_like_token_generate() {
    let l = lanyard();
    let out = l.cli(&["server", "validate", "--join-token-ttl", "3651d"]);
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("\"3651d\" is too long: at most 315360000 seconds (ten years)"),
        "{}",
        out.stderr
    );
}

#[test]
fn server_runs_from_a_config_file() {
    let l = lanyard();
    let conf = write(&l, "server.conf", &server_file(l.dir(), ""));
    let mut child = Command::new(env!("CARGO_BIN_EXE_lanyard"))
        .args(["server", "run", "--config", &conf])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let started = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains("Server started") => break line,
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("no \"Server started\" line:\n{}", seen.join("\n"));
            }
        }
    };
    // JSON lines, as the file asks.
    assert!(started.starts_with('{'), "{started}");

    // The admin socket is where the file put it.
    let socket = l.dir().join("admin.sock").display().to_string();
    let out = l.cli(&["server", "bundle", "show", "--socket", &socket]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.success, "{}", out.stderr);
    assert!(out.stdout.contains("BEGIN CERTIFICATE"), "{}", out.stdout);
    assert!(l.dir().join("data/datastore.sqlite3").exists());
}
