//! The files `agent api helper` and `agent api fetch x509 --write` write, in a directory
//! another local user can write to, and what the watching commands say when the Workload API
//! is not there.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lanyard_testkit::wait_until;

use crate::common::*;
use crate::helper::ready;

/// A file an attacker wants overwritten, with its content and mode.
struct Victim {
    path: PathBuf,
}

impl Victim {
    fn new(dir: &Path, name: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, b"precious").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Self { path }
    }

    fn assert_untouched(&self) {
        assert_eq!(
            std::fs::read(&self.path).unwrap(),
            b"precious",
            "{} was written through a symlink",
            self.path.display()
        );
        let mode = std::fs::metadata(&self.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "{} was chmodded", self.path.display());
    }
}

fn plant(link: &Path, victim: &Victim) {
    std::os::unix::fs::symlink(&victim.path, link).unwrap();
}

fn assert_regular(path: &Path, mode: u32) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    assert!(meta.is_file(), "{} is a regular file", path.display());
    assert_eq!(
        meta.permissions().mode() & 0o777,
        mode,
        "{}",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn helper_never_writes_through_symlinks_planted_in_its_directory() {
    let l = lanyard();
    let (_server, agent) = ready(&l, &[]).await;
    let dir = l.path("shared-certs");
    std::fs::create_dir_all(&dir).unwrap();
    let victim = Victim::new(&l.path("elsewhere"), "victim");
    // The temporary names older versions used, and a symlink at a final name.
    for name in [".svid_key.pem.tmp", ".svid.pem.tmp", ".svid_bundle.pem.tmp"] {
        plant(&dir.join(name), &victim);
    }
    plant(&dir.join("svid_key.pem"), &victim);

    let out = l.cli(&[
        "agent",
        "api",
        "helper",
        "--socket",
        &agent.endpoint(),
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

    victim.assert_untouched();
    assert_regular(&dir.join("svid_key.pem"), 0o600);
    assert_regular(&dir.join("svid.pem"), 0o644);
    assert_regular(&dir.join("svid_bundle.pem"), 0o644);
    let key = std::fs::read_to_string(dir.join("svid_key.pem")).unwrap();
    assert!(key.contains("PRIVATE KEY"), "{key}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_write_never_writes_through_symlinks_planted_in_its_directory() {
    let l = lanyard();
    let (_server, agent) = ready(&l, &[]).await;
    let dir = l.path("shared-fetch");
    std::fs::create_dir_all(&dir).unwrap();
    let victim = Victim::new(&l.path("elsewhere"), "victim");
    for name in ["svid.0.tmp", "bundle.0.tmp", ".svid.0.key.tmp"] {
        plant(&dir.join(name), &victim);
    }
    plant(&dir.join("svid.0.key"), &victim);

    let out = fetch_x509(&l, &agent, &dir);
    assert!(out.success, "fetch failed:\n{}\n{}", out.stdout, out.stderr);

    victim.assert_untouched();
    assert_regular(&dir.join("svid.0.key"), 0o600);
    assert_regular(&dir.join("svid.0.pem"), 0o644);
}

/// A `lanyard` process killed when the test ends, with its stderr lines collected.
struct Stderr {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Stderr {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lanyard"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Stderr {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `args` against a socket that does not exist and checks that the failure is reported
/// once on stderr, with its reason and the retry, although the attempts repeat.
fn reports_a_missing_socket_once(args: &[&str], socket: &Path) {
    let running = Stderr::start(args);
    wait_until(Duration::from_secs(10), "a failure on stderr", || {
        !running.lines().is_empty()
    });
    // Attempts at 100, 200, 400 and 800 ms (jittered): several fail in two seconds.
    std::thread::sleep(Duration::from_secs(2));

    let lines = running.lines();
    assert_eq!(lines.len(), 1, "one line per distinct failure: {lines:#?}");
    let line = &lines[0];
    assert!(line.contains(socket.to_str().unwrap()), "{line}");
    assert!(line.contains("cannot connect"), "{line}");
    assert!(line.contains("retrying in"), "{line}");
}

#[test]
fn watch_reports_a_missing_socket_on_stderr_once() {
    let l = lanyard();
    let socket = l.path("absent.sock");
    reports_a_missing_socket_once(
        &[
            "agent",
            "api",
            "watch",
            "--socket",
            socket.to_str().unwrap(),
        ],
        &socket,
    );
}

#[test]
fn helper_reports_a_missing_socket_on_stderr_once() {
    let l = lanyard();
    let socket = l.path("absent.sock");
    let dir = l.path("certs");
    reports_a_missing_socket_once(
        &[
            "agent",
            "api",
            "helper",
            "--socket",
            socket.to_str().unwrap(),
            "--cert-dir",
            dir.to_str().unwrap(),
        ],
        &socket,
    );
}
