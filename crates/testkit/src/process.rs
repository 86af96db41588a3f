//! Real `lanyard` processes for tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `lanyard` binary under test, and a scratch directory for everything it creates.
#[derive(Clone)]
pub struct Lanyard {
    bin: PathBuf,
    dir: Arc<tempfile::TempDir>,
}

/// What a CLI command printed and how it exited.
#[derive(Debug)]
pub struct CliOutput {
    /// Exit status was zero.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Lanyard {
    /// Uses the binary at `bin` (an integration test passes `env!("CARGO_BIN_EXE_lanyard")`).
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        // Unix socket paths are limited to ~107 bytes, so keep the scratch dir short.
        let dir = tempfile::Builder::new()
            .prefix("lanyard-e2e-")
            .tempdir_in("/tmp")
            .expect("create a scratch directory");
        Self {
            bin: bin.into(),
            dir: Arc::new(dir),
        }
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A fresh path inside the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `lanyard <args>` to completion.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        self.cli_with_env(args, &[])
    }

    /// Runs `lanyard <args>` with extra environment variables.
    pub fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run the lanyard binary");
        CliOutput {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts `lanyard server run` and waits until both of its listeners accept.
    pub fn start_server(&self, opts: ServerOptions) -> Server {
        let data_dir = opts
            .data_dir
            .clone()
            .unwrap_or_else(|| self.path("server-data"));
        let socket = opts
            .socket
            .clone()
            .unwrap_or_else(|| self.path("server.sock"));
        let mut args: Vec<String> = vec![
            "server".into(),
            "run".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--socket".into(),
            socket.display().to_string(),
            "--bind".into(),
            opts.bind.clone().unwrap_or_else(|| "127.0.0.1:0".into()),
            "--log-format".into(),
            "json".into(),
            "--log-level".into(),
            "debug".into(),
        ];
        args.extend(opts.extra_args.iter().cloned());
        let process = Process::spawn(&self.bin, &args, "server");
        let line = process.wait_for_log("Server started", Duration::from_secs(60));
        let addr = json_field(&line, "agent_api")
            .unwrap_or_else(|| panic!("server start line has no agent_api field: {line}"));
        Server {
            process,
            socket,
            data_dir,
            addr,
        }
    }

    /// Starts `lanyard agent run` against `server` and, with `wait_ready`, waits until it has
    /// its identity.
    pub fn start_agent(&self, server: &Server, opts: AgentOptions) -> Agent {
        let data_dir = opts
            .data_dir
            .clone()
            .unwrap_or_else(|| self.path("agent-data"));
        let socket = opts
            .socket
            .clone()
            .unwrap_or_else(|| self.path("agent.sock"));
        let bundle = self.path("bootstrap.pem");
        let shown = self.cli(&["server", "bundle", "show", "--socket", &server.socket_str()]);
        assert!(shown.success, "bundle show failed: {}", shown.stderr);
        std::fs::write(&bundle, shown.stdout).expect("write bootstrap bundle");

        let mut args: Vec<String> = vec![
            "agent".into(),
            "run".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--socket".into(),
            socket.display().to_string(),
            "--server-address".into(),
            server.addr.clone(),
            "--trust-bundle".into(),
            bundle.display().to_string(),
            "--sync-interval".into(),
            opts.sync_interval.clone(),
            "--log-format".into(),
            "json".into(),
            "--log-level".into(),
            "debug".into(),
        ];
        if let Some(token) = &opts.join_token {
            args.push("--join-token".into());
            args.push(token.clone());
        }
        args.extend(opts.extra_args.iter().cloned());
        let process = Process::spawn(&self.bin, &args, "agent");
        if opts.wait_ready {
            // The socket is bound before attestation, so only this line means the agent has
            // its identity (and has spent its join token).
            process.wait_for_log("Agent started", Duration::from_secs(60));
        }
        Agent {
            process,
            socket,
            data_dir,
        }
    }

    /// `server token generate` against `server`, returning the token.
    pub fn generate_token(&self, server: &Server, extra: &[&str]) -> String {
        let socket = server.socket_str();
        let mut args = vec!["server", "token", "generate", "--socket", &socket];
        args.extend_from_slice(extra);
        let out = self.cli(&args);
        assert!(out.success, "token generate failed: {}", out.stderr);
        // Without `--spiffe-id` a `Warning: Missing SPIFFE ID.` line follows, as in SPIRE.
        out.stdout
            .lines()
            .find_map(|line| line.strip_prefix("Token: "))
            .unwrap_or_else(|| panic!("unexpected token output: {}", out.stdout))
            .trim()
            .to_string()
    }
}

/// How to start a server.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Data directory; a fresh one when `None`.
    pub data_dir: Option<PathBuf>,
    /// Admin socket; a fresh one when `None`.
    pub socket: Option<PathBuf>,
    /// `--bind`; `127.0.0.1:0` when `None`.
    pub bind: Option<String>,
    /// More flags, such as `--default-x509-svid-ttl 5s`.
    pub extra_args: Vec<String>,
}

/// How to start an agent.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// Join token for the first attestation.
    pub join_token: Option<String>,
    /// Data directory; a fresh one when `None`.
    pub data_dir: Option<PathBuf>,
    /// Workload API socket; a fresh one when `None`.
    pub socket: Option<PathBuf>,
    /// `--sync-interval`.
    pub sync_interval: String,
    /// Wait until the agent has attested (or restored its identity) before returning.
    pub wait_ready: bool,
    /// More flags.
    pub extra_args: Vec<String>,
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            join_token: None,
            data_dir: None,
            socket: None,
            sync_interval: "500ms".into(),
            wait_ready: true,
            extra_args: Vec::new(),
        }
    }
}

/// A running server process; killed on drop.
pub struct Server {
    process: Process,
    /// Admin socket.
    pub socket: PathBuf,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Agent API address, `host:port`.
    pub addr: String,
}

impl Server {
    /// The admin socket as a string, for CLI arguments.
    pub fn socket_str(&self) -> String {
        self.socket.display().to_string()
    }

    /// Everything the server has logged so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// Stops the process with SIGKILL and waits for it.
    pub fn kill(self) {}

    /// Sends SIGTERM and waits up to `timeout` for the process to exit; returns its exit
    /// code (`None` when a signal ended it) and its logs.
    pub fn terminate(self, timeout: Duration) -> (Option<i32>, String) {
        self.process.terminate(timeout)
    }

    /// Sends `signal` to the process without waiting for anything.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        self.process.signal(signal);
    }

    /// Whether the process has exited.
    pub fn exited(&self) -> bool {
        self.process.exited()
    }
}

/// A running agent process; killed on drop.
pub struct Agent {
    process: Process,
    /// Workload API socket.
    pub socket: PathBuf,
    /// Data directory.
    pub data_dir: PathBuf,
}

impl Agent {
    /// `unix://` URI of the Workload API, for `SPIFFE_ENDPOINT_SOCKET`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Everything the agent has logged so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// Whether the process has exited.
    pub fn exited(&self) -> bool {
        self.process.exited()
    }

    /// Waits for the process to exit on its own, returning its logs.
    pub fn wait_exit(self, timeout: Duration) -> String {
        wait_until(timeout, "agent to exit", || self.process.exited());
        self.process.logs()
    }

    /// Waits until a log line contains `needle`, returning that line.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        self.process.wait_for_log(needle, timeout)
    }

    /// Stops the process with SIGKILL and waits for it.
    pub fn kill(self) {}

    /// Sends SIGTERM and waits up to `timeout` for the process to exit; returns its exit
    /// code (`None` when a signal ended it) and its logs.
    pub fn terminate(self, timeout: Duration) -> (Option<i32>, String) {
        self.process.terminate(timeout)
    }

    /// Sends `signal` to the process without waiting for anything.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        self.process.signal(signal);
    }
}

/// A child process whose stderr and stdout are collected line by line.
struct Process {
    child: Mutex<Child>,
    lines: Arc<Mutex<Vec<String>>>,
    seen: Mutex<mpsc::Receiver<()>>,
    name: &'static str,
}

impl Process {
    fn spawn(bin: &Path, args: &[String], name: &'static str) -> Self {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        for reader in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let lines = lines.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(reader).lines().map_while(Result::ok) {
                    lines.lock().expect("log lock").push(line);
                    let _ = tx.send(());
                }
            });
        }
        Self {
            child: Mutex::new(child),
            lines,
            seen: Mutex::new(rx),
            name,
        }
    }

    fn logs(&self) -> String {
        self.lines.lock().expect("log lock").join("\n")
    }

    fn exited(&self) -> bool {
        matches!(
            self.child.lock().expect("child lock").try_wait(),
            Ok(Some(_))
        )
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = self.child.lock().expect("child lock").id();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid fits i32"));
        nix::sys::signal::kill(pid, signal).unwrap_or_else(|e| panic!("send {signal}: {e}"));
    }

    fn terminate(&self, timeout: Duration) -> (Option<i32>, String) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .lock()
                .expect("child lock")
                .try_wait()
                .expect("wait")
            {
                // Let the reader threads drain what the process wrote last.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?} of SIGTERM:\n{}",
                self.name,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let rx = self.seen.lock().expect("seen lock");
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .expect("log lock")
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            if self.exited() {
                // Give the reader threads a moment to drain what the process wrote last.
                let _ = rx.recv_timeout(Duration::from_millis(200));
                if let Some(line) = self
                    .lines
                    .lock()
                    .expect("log lock")
                    .iter()
                    .find(|l| l.contains(needle))
                {
                    return line.clone();
                }
                panic!(
                    "{} exited before logging {needle:?}:\n{}",
                    self.name,
                    self.logs()
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "{} did not log {needle:?} within {timeout:?}:\n{}",
                    self.name,
                    self.logs()
                );
            }
            let _ = rx.recv_timeout(left.min(Duration::from_millis(200)));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `condition` every 20 ms until it holds, panicking with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a string field from a JSON log line (top level or under `fields`).
fn json_field(line: &str, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let field = v
        .get(key)
        .or_else(|| v.get("fields").and_then(|f| f.get(key)))?;
    Some(match field {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}
