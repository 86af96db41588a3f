//! `agent api helper` and `agent api watch` against a real server and agent: the files the
//! helper keeps, its command, and the updates both follow across SVID rotations.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lanyard_testkit::{Agent, Lanyard, Server, wait_until};

use crate::common::*;

/// Short lifetimes, so that an SVID rotates within seconds.
pub(crate) const SHORT_TTLS: &[&str] = &[
    "--ca-ttl",
    "120s",
    "--default-x509-svid-ttl",
    "4s",
    "--agent-ttl",
    "20s",
    "--default-jwt-svid-ttl",
    "4s",
];

/// A server and an agent that serve an identity to this process.
pub(crate) async fn ready(l: &Lanyard, server_args: &[&str]) -> (Server, Agent) {
    let (server, agent, token) = server_and_agent(l, server_args);
    register(
        l,
        &server,
        &format!("spiffe://{TD}/helped"),
        &agent_id(&token),
    );
    fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;
    (server, agent)
}

/// A `lanyard` process that is killed when the test ends, with its stdout lines collected.
pub(crate) struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Running {
    pub(crate) fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lanyard"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        if wait_exit(&mut self.child, Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn serial(path: &Path) -> Option<String> {
    let pem = std::fs::read(path).ok()?;
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&block.contents).ok()?;
    Some(cert.tbs_certificate.raw_serial_as_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn helper_once_writes_files_that_openssl_verifies() {
    let l = lanyard();
    let (_server, agent) = ready(&l, &[]).await;
    let dir = l.path("certs");
    let endpoint = agent.endpoint();

    let out = l.cli(&[
        "agent",
        "api",
        "helper",
        "--socket",
        &endpoint,
        "--cert-dir",
        dir.to_str().unwrap(),
        "--daemon-mode",
        "false",
    ]);
    assert!(
        out.success,
        "helper failed:\n{}\n{}",
        out.stdout, out.stderr
    );

    for name in ["svid.pem", "svid_key.pem", "svid_bundle.pem"] {
        assert!(dir.join(name).is_file(), "{name} is written");
    }
    let mode = std::fs::metadata(dir.join("svid_key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the key is readable by its owner only");
    if openssl_available() {
        openssl_verify(&dir.join("svid_bundle.pem"), &dir.join("svid.pem"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn helper_daemon_rewrites_files_on_rotation_and_signals_its_command() {
    let l = lanyard();
    let (_server, agent) = ready(&l, SHORT_TTLS).await;
    let dir = l.path("certs");
    let marker = l.path("renewed.txt");
    let config = l.path("helper.hcl");
    std::fs::write(
        &config,
        format!(
            "agent_address = \"{}\"\ncert_dir = \"{}\"\ncmd = \"/bin/sh\"\n\
             cmd_args = \"-c 'trap \\\"echo renewed >> {}\\\" HUP; while true; do sleep 0.1; done'\"\n\
             renew_signal = \"SIGHUP\"\n",
            agent.endpoint(),
            dir.display(),
            marker.display()
        ),
    )
    .unwrap();

    let helper = Running::start(&[
        "agent",
        "api",
        "helper",
        "--config",
        config.to_str().unwrap(),
    ]);
    let svid = dir.join("svid.pem");
    wait_until(Duration::from_secs(20), "the first files", || {
        serial(&svid).is_some()
    });
    let first = serial(&svid).unwrap();

    wait_until(Duration::from_secs(20), "a rotated SVID", || {
        serial(&svid).is_some_and(|s| s != first)
    });
    wait_until(
        Duration::from_secs(20),
        "the command to be signalled",
        || std::fs::read_to_string(&marker).is_ok_and(|m| m.lines().count() >= 1),
    );
    if openssl_available() {
        openssl_verify(&dir.join("svid_bundle.pem"), &svid);
    }
    assert!(helper.lines().len() >= 2, "{:?}", helper.lines());
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_prints_an_update_per_rotation_as_json() {
    let l = lanyard();
    let (_server, agent) = ready(&l, SHORT_TTLS).await;
    let endpoint = agent.endpoint();

    let watch = Running::start(&[
        "agent", "api", "watch", "--socket", &endpoint, "--output", "json",
    ]);
    wait_until(Duration::from_secs(30), "two updates", || {
        watch.lines().len() >= 2
    });

    let serials: Vec<String> = watch.lines()[..2]
        .iter()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["svids"][0]["spiffe_id"], format!("spiffe://{TD}/helped"));
            assert_eq!(v["bundles"][0], TD);
            v["svids"][0]["serial"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_ne!(
        serials[0], serials[1],
        "the second update carries a new SVID"
    );
}
