//! Signals an operator sends a running daemon: SIGHUP, SIGUSR1 and SIGUSR2 never stop it,
//! SIGUSR2 (and SIGHUP) reopen the log file for logrotate; and the healthcheck commands tell a
//! server's socket from an agent's.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lanyard_testkit::wait_until;
use nix::sys::signal::Signal;

use crate::common::*;

const SIGNALS: [Signal; 3] = [Signal::SIGHUP, Signal::SIGUSR1, Signal::SIGUSR2];

#[test]
fn hup_usr1_and_usr2_leave_server_and_agent_serving_until_sigterm() {
    let l = lanyard();
    let (server, agent, _token) = server_and_agent(&l, &[]);

    for signal in SIGNALS {
        server.signal(signal);
        agent.signal(signal);
    }
    for signal in SIGNALS {
        let field = format!("\"signal\":\"{signal}\"");
        wait_until(Duration::from_secs(10), "server to log the signal", || {
            server.logs().contains(&field)
        });
        wait_until(Duration::from_secs(10), "agent to log the signal", || {
            agent.logs().contains(&field)
        });
    }
    assert!(!server.exited() && !agent.exited());

    let ok = l.cli(&["server", "healthcheck", "--socket", &server.socket_str()]);
    assert!(ok.success, "{}", ok.stderr);
    let ok = l.cli(&["agent", "healthcheck", "--socket", &agent.endpoint()]);
    assert!(ok.success, "{}", ok.stderr);

    let (code, logs) = agent.terminate(Duration::from_secs(15));
    assert_eq!(code, Some(0), "agent exit code; logs:\n{logs}");
    let (code, logs) = server.terminate(Duration::from_secs(15));
    assert_eq!(code, Some(0), "server exit code; logs:\n{logs}");
    assert!(logs.contains("Server stopped"), "{logs}");
}

#[test]
fn healthchecks_pointed_at_the_other_daemons_socket_are_unhealthy() {
    let l = lanyard();
    let (server, agent, _token) = server_and_agent(&l, &[]);

    // The reason is printed with --verbose only, as SPIRE's healthcheck does.
    let wrong = l.cli(&[
        "agent",
        "healthcheck",
        "--verbose",
        "--socket",
        &server.socket_str(),
    ]);
    assert!(!wrong.success, "{}", wrong.stdout);
    assert!(
        wrong.stderr.contains("this socket is not a Lanyard agent"),
        "{}",
        wrong.stderr
    );
    let shallow = l.cli(&[
        "agent",
        "healthcheck",
        "--shallow",
        "--socket",
        &format!("unix://{}", server.socket_str()),
    ]);
    assert!(!shallow.success, "{}", shallow.stdout);

    let wrong = l.cli(&[
        "server",
        "healthcheck",
        "--verbose",
        "--socket",
        agent.socket.to_str().unwrap(),
    ]);
    assert!(!wrong.success, "{}", wrong.stdout);
    assert!(
        wrong.stderr.contains("this socket is not a Lanyard server"),
        "{}",
        wrong.stderr
    );

    let ok = l.cli(&[
        "agent",
        "healthcheck",
        "--shallow",
        "--socket",
        agent.socket.to_str().unwrap(),
    ]);
    assert!(ok.success, "{}", ok.stderr);
}

/// A `lanyard` process logging to a file; killed on drop.
struct Logging(Child);

impl Drop for Logging {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn usr2_reopens_the_log_file_after_logrotate_moved_it() {
    let l = lanyard();
    let log = l.path("server.log");
    let rotated = l.path("server.log.1");
    let child = Command::new(env!("CARGO_BIN_EXE_lanyard"))
        .args([
            "server",
            "run",
            "--bind",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .arg("--data-dir")
        .arg(l.path("server-data"))
        .arg("--socket")
        .arg(l.path("server.sock"))
        .arg("--log-file")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Logging(child);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.0.id()).unwrap());
    wait_until(Duration::from_secs(60), "server to start", || {
        read(&log).contains("Server started")
    });

    std::fs::rename(&log, &rotated).unwrap();
    nix::sys::signal::kill(pid, Signal::SIGUSR2).unwrap();
    wait_until(Duration::from_secs(10), "a fresh log file", || {
        read(&log).contains("reopened log file")
    });
    assert!(!read(&rotated).contains("reopened log file"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    nix::sys::signal::kill(pid, Signal::SIGTERM).unwrap();
    let mut code = None;
    wait_until(Duration::from_secs(15), "server to exit", || {
        code = server.0.try_wait().unwrap().map(|s| s.code());
        code.is_some()
    });
    assert_eq!(code, Some(Some(0)));
    let fresh = read(&log);
    assert!(fresh.contains("Server stopped"), "{fresh}");
    assert!(!read(&rotated).contains("Server stopped"));
}
