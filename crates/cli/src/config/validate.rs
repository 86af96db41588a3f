//! `server validate` and `agent validate`: the checks that can be made without starting
//! anything. Nothing is created, bound or written.

use std::path::Path;

use lanyard_spiffe::X509Bundle;

use super::agent::AgentSettings;
use super::server::ServerSettings;
use crate::logging::LogSettings;

/// Prints `configuration is valid`, or each problem on stderr and fails.
///
/// # Errors
///
/// When there is at least one problem, counting them.
pub(crate) fn report(problems: &[String]) -> anyhow::Result<()> {
    if problems.is_empty() {
        crate::output::out!("configuration is valid");
        return Ok(());
    }
    for p in problems {
        eprintln!("{p}");
    }
    anyhow::bail!(
        "the configuration has {} problem{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    )
}

/// Every problem with a server configuration that is already parsed and merged.
pub(crate) fn server(settings: &ServerSettings) -> Vec<String> {
    let config = &settings.config;
    let mut problems = Vec::new();
    if let Err(e) = config.validate() {
        problems.push(e.to_string());
    }
    problems.extend(writable_dir("data_dir", &config.data_dir));
    problems.extend(socket("socket_path", &config.socket_path));
    problems.extend(log_file(&settings.log));
    problems.extend(listeners(&config.health_checks, &config.telemetry));
    problems
}

/// Every problem with an agent configuration that is already parsed and merged.
pub(crate) fn agent(settings: &AgentSettings) -> Vec<String> {
    let config = &settings.config;
    let mut problems = Vec::new();
    if let Err(e) = config.validate() {
        problems.push(e.to_string());
    }
    if let lanyard_agent::TrustBootstrap::Pem(path) = &config.trust_bundle {
        match std::fs::read(path) {
            Err(e) => problems.push(format!(
                "trust_bundle_path {}: cannot read it: {e}",
                path.display()
            )),
            Ok(pem) => {
                if let Err(e) = X509Bundle::from_pem(config.trust_domain.clone(), &pem) {
                    problems.push(format!(
                        "trust_bundle_path {}: not a PEM bundle of CA certificates: {e}",
                        path.display()
                    ));
                }
            }
        }
    }
    problems.extend(writable_dir("data_dir", &config.data_dir));
    problems.extend(socket("socket_path", &config.socket_path));
    problems.extend(log_file(&settings.log));
    problems.extend(listeners(&config.health_checks, &config.telemetry));
    problems
}

/// `dir` exists as a writable directory, or its nearest existing ancestor is one (so that
/// it can be created).
fn writable_dir(key: &str, dir: &Path) -> Option<String> {
    // A relative path's last ancestor is "", the working directory.
    let existing = dir
        .ancestors()
        .map(|a| {
            if a.as_os_str().is_empty() {
                Path::new(".")
            } else {
                a
            }
        })
        .find(|a| a.exists())?;
    if !existing.is_dir() {
        return Some(format!(
            "{key} {}: {} is not a directory",
            dir.display(),
            existing.display()
        ));
    }
    match nix::unistd::access(existing, nix::unistd::AccessFlags::W_OK) {
        Ok(()) => None,
        Err(e) if existing == dir => Some(format!("{key} {}: not writable: {e}", dir.display())),
        Err(e) => Some(format!(
            "{key} {}: cannot be created, {} is not writable: {e}",
            dir.display(),
            existing.display()
        )),
    }
}

/// The socket's directory can hold it, and no process listens on it already.
fn socket(key: &str, path: &Path) -> Option<String> {
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Some(format!(
            "{key} {}: another process is listening on this socket",
            path.display()
        ));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty())?;
    writable_dir(&format!("{key} {}: directory", path.display()), parent)
}

fn log_file(log: &LogSettings) -> Option<String> {
    let path = log.file.as_ref()?;
    if path.exists() {
        return match nix::unistd::access(path.as_path(), nix::unistd::AccessFlags::W_OK) {
            Ok(()) => None,
            Err(e) => Some(format!("log_file {}: not writable: {e}", path.display())),
        };
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty())?;
    match nix::unistd::access(parent, nix::unistd::AccessFlags::W_OK) {
        Ok(()) => None,
        Err(e) => Some(format!(
            "log_file {}: cannot be created in {}: {e}",
            path.display(),
            parent.display()
        )),
    }
}

/// The health and metrics listeners have a host and a port that make an address.
fn listeners(
    health: &lanyard_telemetry::HealthChecks,
    telemetry: &lanyard_telemetry::Telemetry,
) -> Vec<String> {
    let mut problems = Vec::new();
    if health.listener_enabled && host_unusable(&health.bind_address) {
        problems.push(format!(
            "health_checks bind_address {:?}: not an IP address or host name",
            health.bind_address
        ));
    }
    if let Some(p) = &telemetry.prometheus
        && host_unusable(&p.host)
    {
        problems.push(format!(
            "telemetry Prometheus host {:?}: not an IP address or host name",
            p.host
        ));
    }
    problems
}

fn host_unusable(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_err()
        && (host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_data_dir_under_a_writable_parent_is_fine() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(writable_dir("data_dir", &tmp.path().join("a/b")), None);
    }

    #[test]
    fn a_data_dir_under_a_file_is_a_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, "").unwrap();
        let problem = writable_dir("data_dir", &file.join("d")).unwrap();
        assert!(problem.contains("is not a directory"), "{problem}");
    }

    #[test]
    fn a_live_socket_is_a_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let problem = socket("socket_path", &path).unwrap();
        assert!(
            problem.contains("another process is listening"),
            "{problem}"
        );
    }

    #[test]
    fn a_stale_socket_file_is_fine() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert_eq!(socket("socket_path", &path), None);
    }
}
