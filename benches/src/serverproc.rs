//! One `lanyard server run` process on a data directory the benchmark prepared, timed from
//! spawn until its admin socket reports it ready.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use lanyard_proto::grpc::health::v1::health_check_response::ServingStatus;
use lanyard_proto::grpc::health::v1::{HealthCheckRequest, health_client::HealthClient};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tonic::transport::Channel;

use crate::procs::status_bytes;

/// How often readiness is polled while the server starts.
const POLL: Duration = Duration::from_millis(5);
/// How long a clean stop may take before the process is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// A running server.
pub(crate) struct ServerProc {
    child: Child,
    log: PathBuf,
    /// The admin API, over the unix socket.
    pub(crate) admin: Channel,
    /// From spawn to the first `SERVING` answer of the gRPC health service.
    pub(crate) ready_after: Duration,
}

/// Resident memory of a process.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Memory {
    /// `VmRSS`: resident now, bytes.
    pub(crate) rss: u64,
    /// `VmHWM`: the most ever resident, bytes.
    pub(crate) peak: u64,
}

impl ServerProc {
    /// Starts the server on `data_dir` with its admin socket and log in `scratch`, and waits
    /// (at most `timeout`) until the health service on the admin socket answers `SERVING`.
    pub(crate) async fn start(
        lanyard: &Path,
        data_dir: &Path,
        scratch: &Path,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let socket = scratch.join("admin.sock");
        let log = scratch.join("server.log");
        let stderr = File::create(&log).with_context(|| format!("{}", log.display()))?;
        let started = Instant::now();
        let child = Command::new(lanyard)
            .args([
                "server",
                "run",
                "--bind",
                "127.0.0.1:0",
                "--log-level",
                "warn",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("cannot start the server")?;
        let mut starting = Starting(Some(child));
        let deadline = started + timeout;
        loop {
            if let Some(status) = starting.child()?.try_wait()? {
                anyhow::bail!(
                    "the server exited ({status}) before it was ready:\n{}",
                    log_tail(&log)
                );
            }
            if let Some(admin) = ready(&socket).await {
                let ready_after = started.elapsed();
                return Ok(Self {
                    child: starting.take()?,
                    log,
                    admin,
                    ready_after,
                });
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the server was not ready within {}s:\n{}",
                timeout.as_secs(),
                log_tail(&log)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The process ID.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory now and at its peak.
    pub(crate) fn memory(&self) -> anyhow::Result<Memory> {
        Ok(Memory {
            rss: status_bytes(self.pid(), "VmRSS")?,
            peak: status_bytes(self.pid(), "VmHWM")?,
        })
    }

    /// Stops the server with SIGTERM, as an operator would, so it closes its datastore
    /// cleanly; kills it if it has not exited after [`STOP_GRACE`].
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let pid = Pid::from_raw(i32::try_from(self.pid())?);
        kill(pid, Signal::SIGTERM)?;
        let deadline = Instant::now() + STOP_GRACE;
        while self.child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                anyhow::bail!(
                    "the server ignored SIGTERM for {}s:\n{}",
                    STOP_GRACE.as_secs(),
                    log_tail(&self.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        // Only reached without `stop` when a benchmark failed half-way.
        end(&mut self.child);
    }
}

/// A server process that is not ready yet; killed if the start fails.
struct Starting(Option<Child>);

impl Starting {
    fn child(&mut self) -> anyhow::Result<&mut Child> {
        self.0
            .as_mut()
            .context("the server process was already handed on")
    }

    /// Hands the process on, no longer to be killed here.
    fn take(mut self) -> anyhow::Result<Child> {
        self.0
            .take()
            .context("the server process was already handed on")
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            end(child);
        }
    }
}

/// Kills `child` if it still runs, and reaps it.
fn end(child: &mut Child) {
    if matches!(child.try_wait(), Ok(None)) {
        let _ = child.kill();
        let _ = child.wait();
    }
}

pub(crate) fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The admin channel, once the socket accepts and the health service says `SERVING`.
pub(crate) async fn ready(socket: &Path) -> Option<Channel> {
    let channel = lanyard_workload::client::unix_channel(socket).await.ok()?;
    let answer = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok()?;
    (answer.into_inner().status == ServingStatus::Serving as i32).then_some(channel)
}
