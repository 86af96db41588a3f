//! Real `lanyard` processes for the benchmarks, and an admin client for them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use lanyard_proto::spire::api::server::agent::v1::{
    CreateJoinTokenRequest, agent_client::AgentClient,
};
use lanyard_proto::spire::api::server::bundle::v1::{
    GetBundleRequest, bundle_client::BundleClient,
};
use lanyard_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, entry_client::EntryClient,
};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::{TrustDomain, X509Bundle};
use rustls_pki_types::CertificateDer;
use tonic::transport::Channel;

/// The trust domain of every benchmark.
pub(crate) const TD: &str = "example.org";

/// A server process, its scratch directory and an admin channel.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) lanyard: PathBuf,
    server: Child,
    /// The agent API address.
    pub(crate) addr: String,
    pub(crate) admin: Channel,
    agents: Vec<Child>,
}

impl Env {
    /// Starts `lanyard server run` with SPIRE's default lifetimes on an ephemeral port.
    pub(crate) async fn start(lanyard: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("lanyard-bench-")
            .tempdir_in("/tmp")?;
        let socket = dir.path().join("server.sock");
        let mut server = lanyard_command(lanyard)
            .args([
                "server",
                "run",
                "--bind",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--log-level",
                "warn",
            ])
            .arg("--data-dir")
            .arg(dir.path().join("server"))
            .arg("--socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "warn,lanyard_server=info")
            .spawn()
            .context("cannot start the server")?;
        let stderr = server.stderr.take().context("server stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server started") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .context("the server did not start")?;
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let addr = v["fields"]["agent_api"]
            .as_str()
            .context("no agent_api in the start line")?
            .to_string();
        let admin = unix_channel(&socket).await?;
        Ok(Self {
            dir,
            lanyard: lanyard.to_path_buf(),
            server,
            addr,
            admin,
            agents: Vec::new(),
        })
    }

    /// A fresh join token.
    pub(crate) async fn token(&self) -> anyhow::Result<String> {
        Ok(AgentClient::new(self.admin.clone())
            .create_join_token(CreateJoinTokenRequest::default())
            .await?
            .into_inner()
            .value)
    }

    /// The server's bundle.
    pub(crate) async fn bundle(&self) -> anyhow::Result<X509Bundle> {
        x509_bundle(&self.admin).await
    }

    /// Creates entries through the admin API, 500 per request; fails on any refusal.
    pub(crate) async fn create_entries(&self, entries: Vec<types::Entry>) -> anyhow::Result<()> {
        let mut client = EntryClient::new(self.admin.clone());
        for chunk in entries.chunks(500) {
            let results = client
                .batch_create_entry(BatchCreateEntryRequest {
                    entries: chunk.to_vec(),
                    output_mask: None,
                })
                .await?
                .into_inner()
                .results;
            for r in results {
                let status = r.status.unwrap_or_default();
                anyhow::ensure!(status.code == 0, "entry refused: {}", status.message);
            }
        }
        Ok(())
    }

    /// Starts `lanyard agent run` with `token`; returns its Workload API socket and pid.
    pub(crate) async fn start_agent(
        &mut self,
        token: &str,
        name: &str,
    ) -> anyhow::Result<(PathBuf, u32)> {
        self.start_agent_with(token, name, &[]).await
    }

    /// [`Env::start_agent`] with `extra` flags for `lanyard agent run` (`--sync-interval 1h`).
    pub(crate) async fn start_agent_with(
        &mut self,
        token: &str,
        name: &str,
        extra: &[&str],
    ) -> anyhow::Result<(PathBuf, u32)> {
        let bundle_path = self.dir.path().join(format!("{name}-bootstrap.pem"));
        let bundle = self.bundle().await?;
        std::fs::write(&bundle_path, bundle.to_pem())?;
        let socket = self.dir.path().join(format!("{name}.sock"));
        let child = lanyard_command(&self.lanyard)
            .args([
                "agent",
                "run",
                "--log-level",
                "warn",
                "--server-address",
                &self.addr,
                "--join-token",
                token,
            ])
            .arg("--trust-bundle")
            .arg(&bundle_path)
            .arg("--data-dir")
            .arg(self.dir.path().join(name))
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the agent")?;
        let pid = child.id();
        self.agents.push(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !socket.exists() {
            anyhow::ensure!(Instant::now() < deadline, "the agent socket never appeared");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok((socket, pid))
    }

    pub(crate) async fn stop(mut self) {
        for mut a in self.agents.drain(..) {
            let _ = a.kill();
            let _ = a.wait();
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for a in &mut self.agents {
            let _ = a.kill();
        }
        let _ = self.server.kill();
    }
}

/// A command running `lanyard` that dies with this harness.
///
/// Drop guards cannot run when the harness itself is killed (SIGKILL, a crash in a signal
/// handler), which used to leave servers and agents behind. The kernel's parent-death signal
/// covers that, and `setpriv --pdeathsig KILL` (util-linux) sets it and then execs `lanyard`
/// under the same pid, so this crate stays free of `unsafe` (`pre_exec` would need it).
/// Without `setpriv` the command runs as before, guarded by `Drop` alone.
///
/// The signal follows the *thread* that spawned the child: spawn from the thread that runs
/// `block_on` or from a runtime worker, never from `spawn_blocking` (its threads exit when
/// idle and would take the child with them).
pub(crate) fn lanyard_command(lanyard: &Path) -> Command {
    match setpriv() {
        Some(setpriv) => {
            let mut command = Command::new(setpriv);
            command.args(["--pdeathsig", "KILL", "--"]).arg(lanyard);
            command
        }
        None => Command::new(lanyard),
    }
}

/// `setpriv` on the `PATH`, looked up once.
fn setpriv() -> Option<&'static Path> {
    static FOUND: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let path = std::env::var_os("PATH")?;
            let found = std::env::split_paths(&path)
                .map(|dir| dir.join("setpriv"))
                .find(|candidate| candidate.is_file());
            if found.is_none() {
                eprintln!(
                    "setpriv not found: lanyard processes outlive this harness if it is killed"
                );
            }
            found
        })
        .as_deref()
}

async fn unix_channel(path: &Path) -> anyhow::Result<Channel> {
    Ok(lanyard_workload::client::unix_channel(path).await?)
}

/// The X.509 authorities of the server answering on `admin`, as a bundle of [`TD`].
pub(crate) async fn x509_bundle(admin: &Channel) -> anyhow::Result<X509Bundle> {
    let bundle = BundleClient::new(admin.clone())
        .get_bundle(GetBundleRequest::default())
        .await?
        .into_inner();
    Ok(X509Bundle::new(
        TrustDomain::new(TD)?,
        bundle
            .x509_authorities
            .into_iter()
            .map(|a| CertificateDer::from(a.asn1))
            .collect(),
    ))
}

/// An entry for `spiffe://example.org/<path>` under `parent` with one `unix:uid:` selector.
pub(crate) fn entry(path: &str, parent: &str, uid: u32) -> types::Entry {
    types::Entry {
        spiffe_id: Some(types::Spiffeid {
            trust_domain: TD.into(),
            path: path.into(),
        }),
        parent_id: Some(types::Spiffeid {
            trust_domain: TD.into(),
            path: parent.into(),
        }),
        selectors: vec![types::Selector {
            r#type: "unix".into(),
            value: format!("uid:{uid}"),
        }],
        ..Default::default()
    }
}

/// Resident set size of a process, in bytes.
pub(crate) fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    status_bytes(pid, "VmRSS")
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, ...), in bytes.
pub(crate) fn status_bytes(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status_field_bytes(&status, field).with_context(|| format!("no {field} in /proc/{pid}/status"))
}

fn status_field_bytes(status: &str, field: &str) -> Option<u64> {
    let kb = status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()
    })?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::status_field_bytes;

    #[test]
    fn reads_kilobyte_fields_of_proc_status() {
        let status = "Name:\tlanyard\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(status_field_bytes(status, "VmRSS"), Some(102_400 * 1024));
        assert_eq!(status_field_bytes(status, "VmHWM"), Some(204_800 * 1024));
        assert_eq!(status_field_bytes(status, "VmSwap"), None);
        assert_eq!(status_field_bytes(status, "Name"), None, "not a size");
    }
}
