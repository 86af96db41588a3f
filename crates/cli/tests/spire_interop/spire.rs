//! SPIRE's own binaries for these tests: where they are, their CLI, and what it prints.
//!
//! The binaries come from `.ci/spire.sh`, which builds `spire-server` and `spire-agent` from
//! the Go module proxy into a cache outside the repository and exports
//! `LANYARD_TEST_SPIRE_BIN`. Without that variable the default cache directory is tried.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lanyard_testkit::CliOutput;

use crate::common::TD;

/// The SPIRE release these tests pin, as `.ci/spire.sh` builds it.
pub const SPIRE_VERSION: &str = "v1.13.3";

/// The directory holding `spire-server` and `spire-agent`.
#[derive(Clone, Debug)]
pub struct Spire {
    bin: PathBuf,
}

impl Spire {
    /// `LANYARD_TEST_SPIRE_BIN`, or `.ci/spire.sh`'s default cache; `None` after printing
    /// `SKIPPED:` when neither holds both binaries (a failure under `LANYARD_CI`).
    pub fn find() -> Option<Self> {
        let bin = match std::env::var_os("LANYARD_TEST_SPIRE_BIN") {
            Some(dir) => PathBuf::from(dir),
            None => default_cache(),
        };
        for name in ["spire-server", "spire-agent"] {
            if !bin.join(name).is_file() {
                skip(&format!(
                    "SPIRE {SPIRE_VERSION} is not built: no {name} in {} \
                     (run .ci/spire.sh or set LANYARD_TEST_SPIRE_BIN)",
                    bin.display()
                ));
                return None;
            }
        }
        Some(Self { bin })
    }

    /// Path of `spire-server`.
    pub fn server_bin(&self) -> PathBuf {
        self.bin.join("spire-server")
    }

    /// Path of `spire-agent`.
    pub fn agent_bin(&self) -> PathBuf {
        self.bin.join("spire-agent")
    }

    /// Runs `spire-server <args>` to completion.
    pub fn server_cli(&self, args: &[&str]) -> CliOutput {
        run(&self.server_bin(), args)
    }

    /// Runs `spire-agent <args>` to completion.
    pub fn agent_cli(&self, args: &[&str]) -> CliOutput {
        run(&self.agent_bin(), args)
    }

    /// `spire-server <args>` must succeed; what it printed on stdout.
    pub fn server_ok(&self, args: &[&str]) -> String {
        let out = self.server_cli(args);
        assert!(
            out.success,
            "spire-server {args:?} failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// `spire-agent <args>` must succeed; what it printed on stdout.
    pub fn agent_ok(&self, args: &[&str]) -> String {
        let out = self.agent_cli(args);
        assert!(
            out.success,
            "spire-agent {args:?} failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// `spire-agent api fetch x509 -write dir`, retried until the agent at `socket` serves
    /// an SVID for this process (it may still be attesting or syncing); its stdout.
    pub fn fetch_x509_until_served(&self, socket: &Path, dir: &Path, timeout: Duration) -> String {
        poll(timeout, "spire-agent api fetch x509 to succeed", || {
            self.fetch_x509(socket, dir)
        })
    }

    /// One `spire-agent api fetch x509 -write dir` against `socket`: its stdout, or what it
    /// printed when it failed. Creates `dir`, which SPIRE's `-write` expects to exist.
    pub fn fetch_x509(&self, socket: &Path, dir: &Path) -> Result<String, String> {
        std::fs::create_dir_all(dir).expect("create the -write directory");
        let out = self.agent_cli(&[
            "api",
            "fetch",
            "x509",
            "-socketPath",
            socket.to_str().unwrap(),
            "-write",
            dir.to_str().unwrap(),
            "-timeout",
            "5s",
        ]);
        if out.success {
            Ok(out.stdout)
        } else {
            Err(format!("{}{}", out.stdout, out.stderr))
        }
    }
}

/// The value of a `Name : value` line in SPIRE's text output (the first such line).
pub fn text_field<'a>(output: &'a str, name: &str) -> Option<&'a str> {
    output.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim())
    })
}

/// The stdout of a command that must have succeeded.
pub fn ok(out: CliOutput) -> String {
    assert!(out.success, "{out:?}");
    out.stdout
}

/// The ID in the `Entry ID` line of an entry block.
pub fn entry_id(text: &str) -> String {
    text_field(text, "Entry ID")
        .unwrap_or_else(|| panic!("no Entry ID in {text:?}"))
        .to_owned()
}

/// The token of the `Token: <uuid>` line both `token generate` commands print (SPIRE's adds a
/// `Warning: Missing SPIFFE ID.` line when no `-spiffeID` is given).
pub fn token_of(output: &str) -> String {
    output
        .lines()
        .find_map(|line| line.strip_prefix("Token: "))
        .unwrap_or_else(|| panic!("no `Token: ` line in {output:?}"))
        .trim()
        .to_owned()
}

/// `spiffe://example.org/spire/agent/join_token/<token>`, as SPIRE's join_token attestor names
/// the agent.
pub fn join_token_agent_id(token: &str) -> String {
    format!("spiffe://{TD}/spire/agent/join_token/{token}")
}

/// Calls `attempt` every 100 ms until it returns `Ok`, panicking with `what` and the last
/// error after `timeout`.
pub fn poll<T>(timeout: Duration, what: &str, mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match attempt() {
            Ok(value) => return value,
            Err(e) => e,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; last error:\n{last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A loopback port nobody listens on right now, for daemons that need one in their config.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Prints `SKIPPED: <reason>` past libtest's capture, or fails under `LANYARD_CI`, where the
/// SPIRE binaries must be present.
fn skip(reason: &str) {
    assert!(
        std::env::var_os("LANYARD_CI").is_none(),
        "LANYARD_CI is set but {reason}"
    );
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}

/// `.ci/spire.sh`'s cache: `${LANYARD_SPIRE_CACHE:-$HOME/.cache/lanyard-spire}/<version>/bin`.
fn default_cache() -> PathBuf {
    let root = match std::env::var_os("LANYARD_SPIRE_CACHE") {
        Some(root) => PathBuf::from(root),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/lanyard-spire")
        }
    };
    root.join(SPIRE_VERSION).join("bin")
}

fn run(bin: &Path, args: &[&str]) -> CliOutput {
    // SPIRE's CLI prints times in the local zone and Lanyard's in UTC; TZ=UTC lets the tests
    // compare the two outputs on any machine.
    let out = Command::new(bin)
        .args(args)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    CliOutput {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
