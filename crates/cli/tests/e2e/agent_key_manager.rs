//! The agent's `KeyManager` block in a config file, as SPIRE's agent reads it: `"memory"` keeps
//! the key in the process only, so a restarted agent must attest again; `"disk"` with a
//! `directory` keeps the key files there, and a restarted agent reuses its SVID.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lanyard_testkit::{Agent, AgentOptions, Lanyard, Server};

use crate::common::*;

const PROMPT: Duration = Duration::from_secs(30);

/// An agent config file with SPIRE's plugin blocks and `key_manager` as its `KeyManager`.
fn write_config(l: &Lanyard, name: &str, key_manager: &str) -> PathBuf {
    let path = l.path(name);
    let text = format!(
        "agent {{\n    trust_domain = \"{TD}\"\n}}\n\nplugins {{\n    NodeAttestor \
         \"join_token\" {{\n        plugin_data {{}}\n    }}\n    KeyManager {key_manager}\n    \
         WorkloadAttestor \"unix\" {{\n        plugin_data {{}}\n    }}\n}}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts the agent on `config` with the same data directory and socket every time.
fn start(l: &Lanyard, server: &Server, config: &Path, token: Option<String>) -> Agent {
    l.start_agent(
        server,
        AgentOptions {
            join_token: token,
            data_dir: Some(l.path("km-agent-data")),
            socket: Some(l.path("km-agent.sock")),
            extra_args: vec!["--config".into(), config.display().to_string()],
            ..Default::default()
        },
    )
}

/// Runs the agent as [`start`] does, without a token, until it exits (killed after
/// [`PROMPT`]); its exit code and everything it wrote.
fn run_to_exit(l: &Lanyard, server: &Server, config: &Path) -> (Option<i32>, String) {
    let out_path = l.path("km-agent-exit.log");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lanyard"))
        .args(["agent", "run", "--data-dir"])
        .arg(l.path("km-agent-data"))
        .arg("--socket")
        .arg(l.path("km-agent.sock"))
        .args(["--server-address", &server.addr, "--trust-bundle"])
        .arg(l.path("bootstrap.pem"))
        .arg("--config")
        .arg(config)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + PROMPT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "the agent did not exit: {}",
                std::fs::read_to_string(&out_path).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), std::fs::read_to_string(&out_path).unwrap())
}

/// Registers a workload for this uid under the agent of `token` and fetches its SVID.
async fn serves_a_workload(l: &Lanyard, server: &Server, agent: &Agent, token: &str, name: &str) {
    let id = format!("spiffe://{TD}/{name}");
    register(l, server, &id, &agent_id(token));
    let deadline = std::time::Instant::now() + PROMPT;
    loop {
        let ctx = fetch_with_spiffe_crate(agent, PROMPT).await;
        let ids: Vec<String> = ctx
            .svids()
            .iter()
            .map(|s| s.spiffe_id().to_string())
            .collect();
        if ids.contains(&id) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id} not served: {ids:?}\n{}",
            agent.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The files directly in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_key_manager_makes_a_restarted_agent_attest_again() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    // The block as SPIRE's Kubernetes quickstart agent config writes it.
    let config = write_config(
        &l,
        "memory.conf",
        "\"memory\" {\n        plugin_data {}\n    }",
    );

    let token = l.generate_token(&server, &[]);
    let agent = start(&l, &server, &config, Some(token.clone()));
    serves_a_workload(&l, &server, &agent, &token, "memory-first").await;
    let data_dir = agent.data_dir.clone();
    let files = names(&data_dir);
    assert!(
        !files.iter().any(|f| f.contains("key")),
        "no key file in the data directory: {files:?}"
    );
    let (code, logs) = agent.terminate(PROMPT);
    assert_eq!(code, Some(0), "{logs}");

    // Restarted with the same config and no new token: the key is gone, so is the identity.
    let (code, logs) = run_to_exit(&l, &server, &config);
    assert!(matches!(code, Some(c) if c != 0), "exit {code:?}: {logs}");
    for part in [
        "kept in memory only",
        "KeyManager",
        "memory",
        "must attest again, with a new join token",
    ] {
        assert!(logs.contains(part), "{part:?} missing from {logs}");
    }

    // With a new token it attests afresh, as another agent, and serves again.
    let fresh = l.generate_token(&server, &[]);
    let third = start(&l, &server, &config, Some(fresh.clone()));
    assert!(third.logs().contains(&agent_id(&fresh)), "{}", third.logs());
    serves_a_workload(&l, &server, &third, &fresh, "memory-again").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn disk_key_manager_directory_holds_the_keys_and_a_restart_reuses_the_svid() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let key_dir = l.path("km-agent-keys");
    let config = write_config(
        &l,
        "disk.conf",
        &format!(
            "\"disk\" {{\n        plugin_data {{\n            directory = {:?}\n        }}\n    }}",
            key_dir.display().to_string()
        ),
    );

    let token = l.generate_token(&server, &[]);
    let agent = start(&l, &server, &config, Some(token.clone()));
    serves_a_workload(&l, &server, &agent, &token, "disk-first").await;
    assert!(
        names(&key_dir).contains(&"agent-svid.key.der".to_string()),
        "{:?}",
        names(&key_dir)
    );
    let mode = std::fs::metadata(&key_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let data_files = names(&agent.data_dir);
    assert!(
        !data_files.iter().any(|f| f.contains("key")),
        "no key file in the data directory: {data_files:?}"
    );
    assert!(
        data_files.contains(&"agent_svid.der".to_string()),
        "{data_files:?}"
    );
    let (code, logs) = agent.terminate(PROMPT);
    assert_eq!(code, Some(0), "{logs}");

    // No token: the key in the key directory matches the stored SVID.
    let again = start(&l, &server, &config, None);
    assert!(
        again.logs().contains("Reusing the stored agent SVID"),
        "{}",
        again.logs()
    );
    serves_a_workload(&l, &server, &again, &token, "disk-again").await;
}
