//! `lanyard agent api helper`: keeps a certificate, its key and the trust bundle on disk for
//! programs that cannot use the Workload API, and tells them when the files change; with
//! `jwt_svids` and `jwt_bundle_file_name` it also keeps JWT-SVIDs and the JWT bundles there.
//! The configuration keys are spiffe-helper's.

mod config;
mod files;
mod jwt;
mod process;
mod values;

use std::path::PathBuf;

use anyhow::Context;

use super::retry_report::ReportingWatcher;
use crate::output::out;
use config::HelperConfig;
use files::Rendered;
use process::Managed;

/// Flags of `lanyard agent api helper`; each overrides the same key of the file.
#[derive(clap::Args, Debug)]
pub(crate) struct HelperArgs {
    /// An HCL file with spiffe-helper's keys (agent_address, cert_dir, cmd, ...).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Workload API socket (`agent_address`): a path or `unix:///path`; defaults to
    /// $SPIFFE_ENDPOINT_SOCKET, then to the agent's default socket.
    #[arg(long)]
    socket: Option<String>,
    /// Directory of the files (`cert_dir`).
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// Certificate chain file name (`svid_file_name`) [default: svid.pem].
    #[arg(long)]
    svid_file_name: Option<String>,
    /// Private key file name, written with mode 0600 (`svid_key_file_name`)
    /// [default: svid_key.pem].
    #[arg(long)]
    svid_key_file_name: Option<String>,
    /// Trust bundle file name (`svid_bundle_file_name`) [default: svid_bundle.pem].
    #[arg(long)]
    svid_bundle_file_name: Option<String>,
    /// Program started after the first update (`cmd`).
    #[arg(long)]
    cmd: Option<String>,
    /// Its arguments, split like a shell would (`cmd_args`).
    #[arg(long, allow_hyphen_values = true)]
    cmd_args: Option<String>,
    /// Signal sent to the program after later updates (`renew_signal`), such as SIGHUP.
    #[arg(long, value_parser = config::parse_signal)]
    renew_signal: Option<nix::sys::signal::Signal>,
    /// Signal the pid in this file instead of the started program (`pid_file_name`).
    #[arg(long)]
    pid_file_name: Option<PathBuf>,
    /// Put the SVID's intermediates in the bundle file instead of the certificate file
    /// (`add_intermediates_to_bundle`).
    #[arg(long)]
    add_intermediates_to_bundle: bool,
    /// Append federated trust domains' CAs to the bundle file (`include_federated_domains`).
    #[arg(long)]
    include_federated_domains: bool,
    /// Keep running and follow rotations (`daemon_mode`); false writes once and exits
    /// [default: true].
    #[arg(long)]
    daemon_mode: Option<bool>,
}

impl HelperArgs {
    /// Runs the helper until SIGINT or SIGTERM (daemon mode) or after one update.
    ///
    /// # Errors
    ///
    /// A refused configuration, a Workload API failure that retrying cannot fix, a file that
    /// cannot be written, a command that cannot be started or signalled.
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let config = self.merged()?;
        anyhow::ensure!(
            !config.cert_dir.as_os_str().is_empty(),
            "no cert_dir: give --cert-dir or set cert_dir in the helper file"
        );
        anyhow::ensure!(
            config.pid_file_name.is_none() || config.renew_signal.is_some(),
            "pid_file_name is set without renew_signal: set both"
        );
        config.check_distinct_files().map_err(anyhow::Error::msg)?;
        let addr = super::agent::endpoint(config.agent_address.as_deref())?;
        let mut managed = Managed::new(
            config.cmd.clone(),
            &config.cmd_args,
            config.renew_signal,
            config.pid_file_name.clone(),
        )?;
        let mut watcher = ReportingWatcher::x509(addr.clone());
        let mut jwt_bundles = config
            .jwt_bundle_file_name
            .is_some()
            .then(|| ReportingWatcher::jwt_bundles(addr.clone()));
        // What was written last, so that an update changing only other SVIDs of the workload
        // neither rewrites the files nor signals the command.
        let mut last: Option<Rendered> = None;

        if !config.daemon_mode {
            let context = watcher
                .next()
                .await
                .context("the Workload API refused to give an X509-SVID")?;
            update(&config, &context, &mut managed, &mut last, &mut watcher)?;
            if let Some(bundles) = &mut jwt_bundles {
                let set = bundles
                    .next()
                    .await
                    .context("the Workload API refused to give the JWT bundles")?;
                write_jwt_bundles(&config, &set)?;
            }
            for file in &config.jwt_svids {
                let renewed = jwt::renew_until_written(
                    &addr,
                    &config.cert_dir,
                    config.jwt_svid_file_mode,
                    file,
                )
                .await?;
                jwt::report(file, &renewed);
            }
            return managed.wait().await;
        }

        // Each JWT-SVID file has its own schedule; the tasks end when the set is dropped.
        let mut renewals = tokio::task::JoinSet::new();
        for file in &config.jwt_svids {
            renewals.spawn(jwt::keep_renewed(
                addr.clone(),
                config.cert_dir.clone(),
                config.jwt_svid_file_mode,
                file.clone(),
            ));
        }
        let shutdown = super::shutdown_signal();
        tokio::pin!(shutdown);
        let result = loop {
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                next = watcher.next() => match next {
                    Ok(context) => {
                        if let Err(e) = update(&config, &context, &mut managed, &mut last, &mut watcher) {
                            break Err(e);
                        }
                    }
                    Err(e) => break Err(anyhow::Error::new(e).context("the Workload API watch ended")),
                },
                next = next_jwt_bundles(&mut jwt_bundles) => match next {
                    Ok(set) => {
                        if let Err(e) = write_jwt_bundles(&config, &set) {
                            break Err(e);
                        }
                    }
                    Err(e) => break Err(anyhow::Error::new(e).context("the JWT bundle watch ended")),
                },
            }
        };
        renewals.abort_all();
        managed.stop();
        result
    }

    /// The file's settings (or the defaults) with the flags on top.
    fn merged(self) -> anyhow::Result<HelperConfig> {
        let mut config = match &self.config {
            Some(path) => {
                config::read(path).with_context(|| format!("helper file {}", path.display()))?
            }
            None => HelperConfig::default(),
        };
        let set = |slot: &mut String, flag: Option<String>, name: &str| -> anyhow::Result<()> {
            if let Some(v) = flag {
                anyhow::ensure!(
                    !v.is_empty() && !v.contains('/'),
                    "--{name} {v:?}: a file name, without '/', inside cert_dir"
                );
                *slot = v;
            }
            Ok(())
        };
        set(
            &mut config.svid_file_name,
            self.svid_file_name,
            "svid-file-name",
        )?;
        set(
            &mut config.svid_key_file_name,
            self.svid_key_file_name,
            "svid-key-file-name",
        )?;
        set(
            &mut config.svid_bundle_file_name,
            self.svid_bundle_file_name,
            "svid-bundle-file-name",
        )?;
        config.agent_address = self.socket.or(config.agent_address);
        config.cert_dir = self.cert_dir.unwrap_or(config.cert_dir);
        config.cmd = self.cmd.or(config.cmd);
        config.cmd_args = self.cmd_args.unwrap_or(config.cmd_args);
        config.renew_signal = self.renew_signal.or(config.renew_signal);
        config.pid_file_name = self.pid_file_name.or(config.pid_file_name);
        config.add_intermediates_to_bundle |= self.add_intermediates_to_bundle;
        config.include_federated_domains |= self.include_federated_domains;
        config.daemon_mode = self.daemon_mode.unwrap_or(config.daemon_mode);
        Ok(config)
    }
}

/// The next JWT bundle set, or never when no JWT bundle file is configured.
///
/// # Cancel safety
///
/// Cancel safe, as [`ReportingWatcher::next`].
async fn next_jwt_bundles(
    watcher: &mut Option<ReportingWatcher<lanyard_spiffe::JwtBundleSet>>,
) -> Result<lanyard_spiffe::JwtBundleSet, lanyard_workload::ClientError> {
    match watcher {
        Some(watcher) => watcher.next().await,
        None => std::future::pending().await,
    }
}

/// Writes the JWT bundle file of one `FetchJWTBundles` message. The command is not
/// signalled: spiffe-helper signals for X.509 updates only.
fn write_jwt_bundles(
    config: &HelperConfig,
    set: &lanyard_spiffe::JwtBundleSet,
) -> anyhow::Result<()> {
    let Some(name) = &config.jwt_bundle_file_name else {
        return Ok(());
    };
    let path = files::write_jwt_bundles(&config.cert_dir, name, config.jwt_bundle_file_mode, set)?;
    let domains: Vec<String> = set.iter().map(|b| b.trust_domain().to_string()).collect();
    tracing::info!(trust_domains = ?domains, "Wrote the JWT bundle file");
    out!(
        "Wrote {} with the JWT bundles of {}",
        path.display(),
        domains.join(", ")
    );
    Ok(())
}

/// Writes the files of one update, then starts or signals the command; does neither when
/// the files would not change (the update was about another SVID of the workload).
fn update(
    config: &HelperConfig,
    context: &lanyard_workload::X509Context,
    managed: &mut Managed,
    last: &mut Option<Rendered>,
    watcher: &mut ReportingWatcher<lanyard_workload::X509Context>,
) -> anyhow::Result<()> {
    let rendered = files::render(config, context)?;
    if last.as_ref() == Some(&rendered) {
        tracing::debug!(spiffe_id = %rendered.spiffe_id, "The default X509-SVID is unchanged");
        return Ok(());
    }
    let svid_path = files::write(config, &rendered)?;
    tracing::info!(
        spiffe_id = %rendered.spiffe_id,
        serial = %rendered.serial,
        "Wrote the X509-SVID files"
    );
    out!(
        "Wrote {} for {} (serial {}) in {}",
        svid_path.display(),
        rendered.spiffe_id,
        rendered.serial,
        config.cert_dir.display()
    );
    // spiffe-helper keeps the files when the identity is withdrawn: the program keeps
    // working until they expire, and a removed key would not revoke anything already read.
    watcher.set_denied_note(format!(
        "the agent no longer issues an identity to this process: the files in {} are left as \
         they were",
        config.cert_dir.display()
    ));
    *last = Some(rendered);
    managed.updated()
}
