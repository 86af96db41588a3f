//! A gRPC channel to the server's admin socket.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tonic::transport::Channel;

/// Connects to the admin API on `socket`.
pub(crate) async fn connect(socket: &Path) -> anyhow::Result<Channel> {
    let path: PathBuf = socket.to_path_buf();
    if !path.exists() {
        anyhow::bail!(
            "admin socket {} does not exist: is `lanyard server run` running, and is --socket right?",
            path.display()
        );
    }
    let channel = lanyard_workload::client::unix_channel(&path)
        .await
        .with_context(|| format!("cannot connect to the admin socket {}", socket.display()))?;
    Ok(channel)
}

/// Turns an RPC failure into a message that keeps the server's words.
pub(crate) fn rpc_error(what: &str, status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{what}: {} ({:?})", status.message(), status.code())
}
