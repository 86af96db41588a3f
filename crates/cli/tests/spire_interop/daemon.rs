//! Long-running processes of these tests that the testkit does not start: SPIRE's server and
//! agent, and a Lanyard agent pointed at a SPIRE server. Each is killed when dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lanyard_testkit::Lanyard;

use crate::common::TD;
use crate::spire::{Spire, free_port, poll};

/// A child process whose stdout and stderr go to one log file; killed and reaped on drop.
pub struct Daemon {
    child: Child,
    log: PathBuf,
    name: String,
}

impl Daemon {
    /// Starts `bin args`, logging to `log`.
    pub fn spawn(name: &str, bin: &Path, args: &[&str], log: PathBuf) -> Self {
        let out = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone the log file handle");
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", bin.display()));
        Self {
            child,
            log,
            name: name.to_owned(),
        }
    }

    /// Everything the process has written so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until a line of the log contains `needle`; fails early if the process exits.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) {
        let what = format!("{} to log {needle:?}", self.name);
        poll(timeout, &what, || {
            let logs = self.logs();
            if logs.contains(needle) {
                return Ok(());
            }
            self.assert_running();
            Err(logs)
        });
    }

    /// Panics with the logs if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}):\n{}", self.name, self.logs());
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `spire-server run` with a minimal configuration: SQLite in a temporary directory, an
/// in-memory key manager, the join_token node attestor, loopback only.
pub struct SpireServer {
    /// The process.
    pub daemon: Daemon,
    /// Admin API socket, for `-socketPath`.
    pub socket: PathBuf,
    /// Agent API address, `127.0.0.1:<port>`.
    pub addr: String,
}

impl SpireServer {
    /// Starts the server in `dir` and waits until its admin API answers.
    pub fn start(spire: &Spire, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("create the SPIRE server directory");
        let socket = dir.join("api.sock");
        let port = free_port();
        let config = dir.join("server.conf");
        std::fs::write(&config, spire_server_conf(port, &socket, dir))
            .expect("write the SPIRE server config");

        let config = config.to_str().unwrap();
        let mut daemon = Daemon::spawn(
            "spire-server",
            &spire.server_bin(),
            &["run", "-config", config],
            dir.join("server.log"),
        );
        let socket_str = socket.to_str().unwrap();
        poll(
            Duration::from_secs(60),
            "spire-server to be healthy",
            || {
                daemon.assert_running();
                let out = spire.server_cli(&["healthcheck", "-socketPath", socket_str]);
                if out.success {
                    Ok(())
                } else {
                    Err(format!("{}{}", out.stdout, out.stderr))
                }
            },
        );
        Self {
            daemon,
            socket,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    /// The admin socket as a string, for `-socketPath`.
    pub fn socket_str(&self) -> &str {
        self.socket.to_str().unwrap()
    }
}

/// `spire-agent run` with the join_token node attestor and the unix workload attestor,
/// pointed at an agent API (Lanyard's, in these tests).
pub struct SpireAgent {
    /// The process.
    pub daemon: Daemon,
    /// Workload API socket.
    pub socket: PathBuf,
}

impl SpireAgent {
    /// Starts the agent in `dir`, to attest to `server_addr` (`host:port`) with `join_token`,
    /// trusting the CA certificates in the PEM file `trust_bundle`. Returns at once: the
    /// caller waits for what it needs (attestation happens in the background).
    pub fn start(
        spire: &Spire,
        dir: &Path,
        server_addr: &str,
        trust_bundle: &Path,
        join_token: &str,
    ) -> Self {
        std::fs::create_dir_all(dir).expect("create the SPIRE agent directory");
        let socket = dir.join("api.sock");
        let (host, port) = server_addr
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("server address {server_addr:?} is not host:port"));
        let config = dir.join("agent.conf");
        std::fs::write(
            &config,
            spire_agent_conf(dir, (host, port), &socket, trust_bundle, join_token),
        )
        .expect("write the SPIRE agent config");

        let daemon = Daemon::spawn(
            "spire-agent",
            &spire.agent_bin(),
            &["run", "-config", config.to_str().unwrap()],
            dir.join("agent.log"),
        );
        Self { daemon, socket }
    }

    /// `spire-agent api fetch x509 -write dir` against this agent, retried until it serves an
    /// SVID to this process; fails at once, with the agent's logs, if the agent exits.
    pub fn fetch_x509(&mut self, spire: &Spire, dir: &Path, timeout: Duration) -> String {
        poll(timeout, "the SPIRE agent to serve an X509-SVID", || {
            self.daemon.assert_running();
            spire
                .fetch_x509(&self.socket, dir)
                .map_err(|e| format!("{e}\nspire-agent logs:\n{}", self.daemon.logs()))
        })
    }
}

/// `lanyard agent run` against a SPIRE server, waiting until it has attested.
pub fn start_lanyard_agent(
    l: &Lanyard,
    server: &SpireServer,
    trust_bundle: &Path,
    join_token: &str,
) -> (Daemon, PathBuf) {
    let socket = l.path("agent.sock");
    let data = l.path("agent-data");
    let mut daemon = Daemon::spawn(
        "lanyard agent",
        Path::new(env!("CARGO_BIN_EXE_lanyard")),
        &[
            "agent",
            "run",
            "--trust-domain",
            TD,
            "--data-dir",
            data.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
            "--server-address",
            &server.addr,
            "--trust-bundle",
            trust_bundle.to_str().unwrap(),
            "--join-token",
            join_token,
            "--sync-interval",
            "500ms",
            "--log-level",
            "debug",
        ],
        l.path("agent.log"),
    );
    // The socket is bound before attestation; only this line means it has its identity.
    daemon.wait_for_log("Agent started", Duration::from_secs(60));
    (daemon, socket)
}

/// A server.conf as SPIRE's docs write one: SQLite in `data`, keys in memory, join tokens.
/// The same file starts `spire-server` and, through the `spire-server` link, Lanyard.
pub fn spire_server_conf(port: u16, socket: &Path, data: &Path) -> String {
    format!(
        r#"server {{
    bind_address = "127.0.0.1"
    bind_port = "{port}"
    socket_path = "{socket}"
    trust_domain = "{TD}"
    data_dir = "{data}"
    log_level = "DEBUG"
}}

plugins {{
    DataStore "sql" {{
        plugin_data {{
            database_type = "sqlite3"
            connection_string = "{data}/datastore.sqlite3"
        }}
    }}
    KeyManager "memory" {{
        plugin_data {{}}
    }}
    NodeAttestor "join_token" {{
        plugin_data {{}}
    }}
}}
"#,
        socket = socket.display(),
        data = data.display(),
    )
}

/// An agent.conf as SPIRE's docs write one: join token, key in memory, the unix attestor,
/// for the server at `(host, port)`.
pub fn spire_agent_conf(
    data: &Path,
    (host, port): (&str, &str),
    socket: &Path,
    bundle: &Path,
    token: &str,
) -> String {
    format!(
        r#"agent {{
    data_dir = "{data}"
    log_level = "DEBUG"
    server_address = "{host}"
    server_port = "{port}"
    socket_path = "{socket}"
    trust_bundle_path = "{bundle}"
    trust_domain = "{TD}"
    join_token = "{token}"
}}

plugins {{
    NodeAttestor "join_token" {{
        plugin_data {{}}
    }}
    KeyManager "memory" {{
        plugin_data {{}}
    }}
    WorkloadAttestor "unix" {{
        plugin_data {{}}
    }}
}}
"#,
        data = data.display(),
        socket = socket.display(),
        bundle = bundle.display(),
    )
}
