//! `lanyard agent api watch`: follows the X509-SVID stream and prints every update, and to
//! stderr why it is retrying.

use lanyard_workload::X509Context;

use super::OutputFormat;
use super::retry_report::ReportingWatcher;
use crate::output::out;

/// Flags of `lanyard agent api watch`.
#[derive(clap::Args, Debug)]
pub(crate) struct WatchArgs {
    /// Workload API socket: a path, `unix:///path` or `tcp://IP:PORT`; defaults to
    /// $SPIFFE_ENDPOINT_SOCKET, then to the agent's default socket.
    #[arg(long, visible_alias = "socket-path")]
    socket: Option<String>,
    /// Output format: one line, or one JSON object per line, per update.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

impl WatchArgs {
    /// Prints updates until SIGINT or SIGTERM, reconnecting when the agent goes away; each
    /// distinct failure, and the recovery, is printed to stderr.
    ///
    /// # Errors
    ///
    /// A bad address, or a refusal that retrying cannot fix (`InvalidArgument`,
    /// `Unimplemented`).
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let addr = super::agent::endpoint(self.socket.as_deref())?;
        let mut watcher = ReportingWatcher::x509(addr);
        let shutdown = super::shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                next = watcher.next() => print(&next?, self.output)?,
            }
        }
    }
}

fn print(context: &X509Context, format: OutputFormat) -> anyhow::Result<()> {
    let bundles: Vec<String> = context
        .bundles
        .iter()
        .map(|b| b.trust_domain().to_string())
        .collect();
    match format {
        OutputFormat::Json => {
            let svids: Vec<_> = context
                .svids
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "spiffe_id": s.spiffe_id().to_string(),
                        "serial": lanyard_spiffe::x509::serial_of(s.leaf()).unwrap_or_default(),
                        "expires_at": unix(s.not_after()),
                    })
                })
                .collect();
            let line = serde_json::to_string(&serde_json::json!({
                "svids": svids,
                "bundles": bundles,
            }))?;
            out!("{line}");
        }
        OutputFormat::Pretty => {
            let svids: Vec<String> = context
                .svids
                .iter()
                .map(|s| {
                    format!(
                        "{} (until {})",
                        s.spiffe_id(),
                        humantime::format_rfc3339_seconds(s.not_after())
                    )
                })
                .collect();
            out!(
                "SVIDs: {}; bundles: {}",
                svids.join(", "),
                bundles.join(", ")
            );
        }
    }
    Ok(())
}

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
