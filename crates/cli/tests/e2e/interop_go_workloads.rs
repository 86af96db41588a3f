//! Building the go-spiffe program of `tests/interop/go` and running copies of it as separate
//! workloads, for `interop_go`.
//!
//! One build, several copies: the agent's unix attestor, with `discover_workload_path`, gives
//! each copy a `unix:path:` selector of its own, so the copies are distinct workloads to the
//! agent even though they share a uid and a binary hash.

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::Duration;

use lanyard_testkit::wait_until;
use serde_json::Value;

use crate::interop_python::{repo_root, skip};

/// Builds `tests/interop/go` into `target/interop-go/interop`, or says why it cannot.
pub fn build_go_client() -> Option<PathBuf> {
    let module = repo_root().join("tests/interop/go");
    let program = repo_root().join("target/interop-go/interop");
    let go = |args: &[&str]| {
        // -mod=mod lets go resolve from go.sum without a vendor directory; the machine's own
        // GOFLAGS (e.g. -buildvcs=false) still apply.
        let flags = match std::env::var("GOFLAGS") {
            Ok(existing) if !existing.is_empty() => format!("{existing} -mod=mod"),
            _ => "-mod=mod".to_owned(),
        };
        Command::new("go")
            .args(args)
            .current_dir(&module)
            .env("GOFLAGS", flags)
            .output()
    };

    match go(&["version"]) {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            skip(&format!(
                "`go version` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        Err(e) => {
            skip(&format!("go is not installed: {e}"));
            return None;
        }
    }
    // Missing modules are an environment matter (no proxy reachable), unlike a build error.
    let download = go(&["mod", "download"]).expect("run go mod download");
    if !download.status.success() {
        skip(&format!(
            "go-spiffe modules are not available: {}",
            String::from_utf8_lossy(&download.stderr).trim()
        ));
        return None;
    }

    let out = go(&["build", "-o", program.to_str().unwrap(), "."]).expect("run go build");
    assert!(
        out.status.success(),
        "go build of {} failed:\n{}",
        module.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(program)
}

/// Copies `program` to `dir/name` and returns the path the kernel will report for it once it
/// runs (symlinks resolved), which is what the agent puts in `unix:path:`.
pub fn install_copy(program: &Path, dir: &Path, name: &str) -> PathBuf {
    let copy = dir.join(name);
    std::fs::copy(program, &copy).unwrap_or_else(|e| panic!("copy to {}: {e}", copy.display()));
    std::fs::canonicalize(&copy).unwrap()
}

/// A copy of the program running `serve`; killed on drop if the test fails before
/// [`GoServer::finish`].
pub struct GoServer {
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: PathBuf,
    /// Where it listens, as it printed.
    pub addr: String,
}

impl GoServer {
    /// Starts `binary serve out_dir client_id audience` against the agent at `endpoint` and
    /// waits for the address line, which it prints only once its sources have an identity.
    pub fn start(
        binary: &Path,
        endpoint: &str,
        out_dir: &Path,
        client_id: &str,
        audience: &str,
    ) -> Self {
        let stderr = out_dir.with_extension("stderr");
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg(out_dir)
            .args([client_id, audience])
            .env("SPIFFE_ENDPOINT_SOCKET", endpoint)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let mut child = spawn(&mut command);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());

        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read the Go server's address");
        let addr = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v["addr"].as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                panic!(
                    "the Go server printed no address: {line:?}\n{}",
                    read(&stderr)
                )
            });
        Self {
            child,
            stdout,
            stderr,
            addr,
        }
    }

    /// Closes the server's stdin, which tells it to stop, and returns the report it prints.
    pub fn finish(mut self) -> Value {
        drop(self.child.stdin.take());
        wait_until(Duration::from_secs(30), "the Go server to exit", || {
            self.child.try_wait().unwrap().is_some()
        });
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        assert!(
            status.success(),
            "the Go server failed ({status}):\n{rest}\n{}",
            read(&self.stderr)
        );
        serde_json::from_str(&rest).unwrap_or_else(|e| panic!("{e}: {rest}"))
    }
}

impl Drop for GoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `binary args` against the agent at `endpoint` to completion and parses its report.
pub fn run_to_report(
    binary: &Path,
    endpoint: &str,
    args: &[&str],
    agent_logs: &dyn Fn() -> String,
) -> Value {
    let mut command = Command::new(binary);
    command
        .args(args)
        .env("SPIFFE_ENDPOINT_SOCKET", endpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let Output {
        status,
        stdout,
        stderr,
    } = spawn(&mut command).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&stdout);
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(
        status.success(),
        "{} {args:?} failed ({status}):\n{stdout}\n{stderr}\nagent logs:\n{}",
        binary.display(),
        agent_logs()
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}

/// Spawns `command`, retrying while the binary is busy: a copy made moments ago can still be
/// open for writing in a child another test thread forked before the copy's descriptor closed.
fn spawn(command: &mut Command) -> Child {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(e) if e.kind() == ErrorKind::ExecutableFileBusy && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.expect("start a Go workload"),
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
