//! One deployment of either system under test: a server on its own data directory and admin
//! socket, and agents attested to it with join tokens, each a real process started from its
//! release binary with the configuration an operator would write (SQLite, keys on disk, the
//! default log level, every other setting at its default).
//!
//! Both systems speak the same admin API (SPIRE's `entry.v1`, `agent.v1`, `bundle.v1`,
//! `svid.v1` over the admin unix socket), so everything after the start goes through the same
//! client code: the figures differ only by the process answering.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use lanyard_proto::spire::api::server::agent::v1::{
    CreateJoinTokenRequest, agent_client::AgentClient,
};
use lanyard_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, entry_client::EntryClient,
};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::X509Bundle;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tonic::transport::Channel;

use crate::procs::{TD, lanyard_command, x509_bundle};
use crate::serverproc::{log_tail, ready};

/// How long a server may take to answer its health check after spawn.
const START_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a clean stop may take before the process is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// Entries per `BatchCreateEntry` call, and calls in flight while filling a server.
const BATCH: usize = 500;
const BATCHES_IN_FLIGHT: usize = 4;

/// Which system a process belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Lanyard,
    Spire,
}

impl Kind {
    /// Both, in the order every table lists them.
    pub(crate) const BOTH: [Kind; 2] = [Kind::Lanyard, Kind::Spire];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Lanyard => "lanyard",
            Kind::Spire => "spire",
        }
    }
}

/// The release binaries under test.
#[derive(Clone, Debug)]
pub(crate) struct Binaries {
    pub(crate) lanyard: PathBuf,
    /// The directory holding `spire-server` and `spire-agent`.
    pub(crate) spire: PathBuf,
}

/// A running server of either kind.
pub(crate) struct Server {
    pub(crate) kind: Kind,
    bins: Binaries,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// The admin API over the unix socket.
    pub(crate) admin: Channel,
    /// From spawn to the first `SERVING` answer on the admin socket.
    pub(crate) ready_after: Duration,
}

impl Server {
    /// Writes the configuration into `dir` (created) and starts the server on it.
    pub(crate) async fn start(bins: &Binaries, kind: Kind, dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        if kind == Kind::Spire {
            std::fs::write(dir.join("server.conf"), spire_server_conf(dir, port))?;
        }
        let (child, admin, ready_after) = spawn_server(bins, kind, dir, port).await?;
        Ok(Self {
            kind,
            bins: bins.clone(),
            dir: dir.to_path_buf(),
            port,
            child: Some(child),
            admin,
            ready_after,
        })
    }

    /// Stops the server with SIGTERM and starts it again on the same data; the new
    /// [`Server::ready_after`] is the start on a full datastore.
    pub(crate) async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        let (child, admin, ready_after) =
            spawn_server(&self.bins, self.kind, &self.dir, self.port).await?;
        self.child = Some(child);
        self.admin = admin;
        self.ready_after = ready_after;
        Ok(())
    }

    /// Stops the server with SIGTERM, as an operator would; kills it after [`STOP_GRACE`].
    pub(crate) async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.take() {
            terminate(child, &self.dir.join("server.log")).await?;
        }
        Ok(())
    }

    /// The process ID.
    pub(crate) fn pid(&self) -> anyhow::Result<u32> {
        Ok(self.child.as_ref().context("the server is stopped")?.id())
    }

    /// The agent API address.
    pub(crate) fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A fresh join token.
    pub(crate) async fn token(&self) -> anyhow::Result<String> {
        Ok(AgentClient::new(self.admin.clone())
            .create_join_token(CreateJoinTokenRequest {
                ttl: 3600,
                ..Default::default()
            })
            .await?
            .into_inner()
            .value)
    }

    /// The server's X.509 authorities.
    pub(crate) async fn bundle(&self) -> anyhow::Result<X509Bundle> {
        x509_bundle(&self.admin).await
    }

    /// Creates `entries` through `BatchCreateEntry`, [`BATCH`] per call and
    /// [`BATCHES_IN_FLIGHT`] calls at a time; fails on any refusal.
    pub(crate) async fn create_entries(&self, entries: Vec<types::Entry>) -> anyhow::Result<()> {
        let client = EntryClient::new(self.admin.clone());
        let calls = entries.chunks(BATCH).map(|chunk| {
            let mut client = client.clone();
            let request = BatchCreateEntryRequest {
                entries: chunk.to_vec(),
                output_mask: None,
            };
            async move {
                let results = client.batch_create_entry(request).await?.into_inner();
                for r in results.results {
                    let status = r.status.unwrap_or_default();
                    anyhow::ensure!(status.code == 0, "entry refused: {}", status.message);
                }
                anyhow::Ok(())
            }
        });
        let mut calls = futures::stream::iter(calls).buffer_unordered(BATCHES_IN_FLIGHT);
        while let Some(done) = calls.next().await {
            done?;
        }
        Ok(())
    }

    /// Starts an agent of the same kind in `dir`, attesting with `token`; returns once its
    /// Workload API socket exists (it may still be syncing).
    pub(crate) async fn start_agent(&self, token: &str, dir: &Path) -> anyhow::Result<Agent> {
        std::fs::create_dir_all(dir)?;
        let bundle = dir.join("bootstrap.pem");
        std::fs::write(&bundle, self.bundle().await?.to_pem())?;
        let socket = dir.join("workload.sock");
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        let log = dir.join("agent.log");
        let mut command = match self.kind {
            Kind::Lanyard => {
                let mut c = lanyard_command(&self.bins.lanyard);
                c.args(["agent", "run", "--server-address", &self.addr()])
                    .args(["--join-token", token])
                    .arg("--trust-bundle")
                    .arg(&bundle)
                    .arg("--data-dir")
                    .arg(&data)
                    .arg("--socket")
                    .arg(&socket);
                c
            }
            Kind::Spire => {
                let conf = dir.join("agent.conf");
                std::fs::write(
                    &conf,
                    spire_agent_conf(&data, &socket, &bundle, self.port, token),
                )?;
                let mut c = lanyard_command(&self.bins.spire.join("spire-agent"));
                c.args(["run", "-config"]).arg(&conf);
                c
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(File::create(&log)?)
            .stderr(File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot start the {} agent", self.kind.name()))?;
        let mut agent = Agent {
            child: Some(child),
            socket,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !agent.socket.exists() {
            if let Some(status) = agent.child_mut()?.try_wait()? {
                anyhow::bail!(
                    "the {} agent exited ({status}):\n{}",
                    self.kind.name(),
                    log_tail(&agent.log)
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the {} agent's socket never appeared:\n{}",
                self.kind.name(),
                log_tail(&agent.log)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(agent)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            end(child);
        }
    }
}

/// A running agent of either kind.
pub(crate) struct Agent {
    child: Option<Child>,
    /// The Workload API socket.
    pub(crate) socket: PathBuf,
    log: PathBuf,
}

impl Agent {
    /// The process ID.
    pub(crate) fn pid(&self) -> anyhow::Result<u32> {
        Ok(self.child.as_ref().context("the agent is stopped")?.id())
    }

    fn child_mut(&mut self) -> anyhow::Result<&mut Child> {
        self.child.as_mut().context("the agent is stopped")
    }

    /// Stops the agent with SIGTERM; kills it after [`STOP_GRACE`].
    pub(crate) async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.take() {
            terminate(child, &self.log).await?;
        }
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            end(child);
        }
    }
}

/// Spawns the server on `dir` and waits for its health service to answer `SERVING` on the
/// admin socket: what `spire-server healthcheck` and `lanyard server healthcheck` ask.
async fn spawn_server(
    bins: &Binaries,
    kind: Kind,
    dir: &Path,
    port: u16,
) -> anyhow::Result<(Child, Channel, Duration)> {
    let socket = admin_socket(dir);
    let _ = std::fs::remove_file(&socket);
    let log = dir.join("server.log");
    let mut command = match kind {
        Kind::Lanyard => {
            let mut c = lanyard_command(&bins.lanyard);
            c.args(["server", "run", "--bind", &format!("127.0.0.1:{port}")])
                .arg("--data-dir")
                .arg(dir.join("data"))
                .arg("--socket")
                .arg(&socket);
            c
        }
        Kind::Spire => {
            let mut c = lanyard_command(&bins.spire.join("spire-server"));
            c.args(["run", "-config"]).arg(dir.join("server.conf"));
            c
        }
    };
    let log_file = File::options().create(true).append(true).open(&log)?;
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("cannot start the {} server", kind.name()))?;
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!(
                "the {} server exited ({status}) before it was ready:\n{}",
                kind.name(),
                log_tail(&log)
            );
        }
        if socket.exists()
            && let Some(admin) = ready(&socket).await
        {
            return Ok((child, admin, started.elapsed()));
        }
        if started.elapsed() > START_TIMEOUT {
            end(&mut child);
            anyhow::bail!(
                "the {} server was not ready within {} s:\n{}",
                kind.name(),
                START_TIMEOUT.as_secs(),
                log_tail(&log)
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn admin_socket(dir: &Path) -> PathBuf {
    dir.join("admin.sock")
}

/// SIGTERM, then a wait of at most [`STOP_GRACE`] before SIGKILL.
async fn terminate(mut child: Child, log: &Path) -> anyhow::Result<()> {
    kill(Pid::from_raw(i32::try_from(child.id())?), Signal::SIGTERM)?;
    let deadline = Instant::now() + STOP_GRACE;
    while child.try_wait()?.is_none() {
        if Instant::now() >= deadline {
            end(&mut child);
            anyhow::bail!(
                "{} ignored SIGTERM for {} s:\n{}",
                log.display(),
                STOP_GRACE.as_secs(),
                log_tail(log)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Kills `child` if it still runs, and reaps it.
fn end(child: &mut Child) {
    if matches!(child.try_wait(), Ok(None)) {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// SPIRE server: SQLite in `dir`, CA keys on disk (Lanyard keeps its CA keys in its data
/// directory too, so a restart keeps the CA for both), join token attestation.
fn spire_server_conf(dir: &Path, port: u16) -> String {
    format!(
        r#"server {{
    bind_address = "127.0.0.1"
    bind_port = "{port}"
    socket_path = "{socket}"
    trust_domain = "{TD}"
    data_dir = "{data}"
}}

plugins {{
    DataStore "sql" {{
        plugin_data {{
            database_type = "sqlite3"
            connection_string = "{data}/datastore.sqlite3"
        }}
    }}
    KeyManager "disk" {{
        plugin_data {{
            keys_path = "{data}/keys.json"
        }}
    }}
    NodeAttestor "join_token" {{
        plugin_data {{}}
    }}
}}
"#,
        socket = admin_socket(dir).display(),
        data = dir.join("data").display(),
    )
}

/// SPIRE agent: join token, key on disk, the unix workload attestor.
fn spire_agent_conf(data: &Path, socket: &Path, bundle: &Path, port: u16, token: &str) -> String {
    format!(
        r#"agent {{
    data_dir = "{data}"
    server_address = "127.0.0.1"
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
    KeyManager "disk" {{
        plugin_data {{
            directory = "{data}"
        }}
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
