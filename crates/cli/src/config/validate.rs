//! `server validate` and `agent validate`: the checks that can be made without starting
//! anything. Nothing is created or written; each TCP listener is bound and released at once,
//! to find ports already in use.

use std::path::Path;

use lanyard_spiffe::X509Bundle;

use super::agent::AgentSettings;
use super::server::ServerSettings;
use crate::logging::LogSettings;

/// What `validate` found: problems fail it, notes are printed and leave the exit code alone.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// What `run` would refuse.
    pub(crate) problems: Vec<String>,
    /// What an operator should know but need not fix, such as a daemon already running on
    /// the socket (validating before a restart is the usual case).
    pub(crate) notes: Vec<String>,
}

/// Prints each note, then `configuration is valid`, or each problem on stderr and fails.
///
/// # Errors
///
/// When there is at least one problem, counting them.
pub(crate) fn report(findings: &Findings) -> anyhow::Result<()> {
    for n in &findings.notes {
        eprintln!("note: {n}");
    }
    let problems = &findings.problems;
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

/// The checks on paths that `run` makes before starting, so that `run` refuses with the words
/// `validate` uses (a data_dir that is a file, a socket path too long for a unix socket).
///
/// # Errors
///
/// Every problem, one a line.
pub(crate) fn paths_before_run(
    data_dir: &Path,
    socket_path: &Path,
    log: &LogSettings,
) -> anyhow::Result<()> {
    let mut problems: Vec<String> = Vec::new();
    problems.extend(writable_dir("data_dir", data_dir));
    problems.extend(socket("socket_path", socket_path, &mut Vec::new()));
    problems.extend(log_file(log));
    if problems.is_empty() {
        return Ok(());
    }
    anyhow::bail!("{}", problems.join("\n"))
}

/// Every problem with a server configuration that is already parsed and merged.
pub(crate) fn server(settings: &ServerSettings) -> Findings {
    let config = &settings.config;
    let mut findings = Findings::default();
    let problems = &mut findings.problems;
    if let Err(e) = config.validate() {
        problems.push(e.to_string());
    }
    findings.notes.extend(config.warnings());
    let problems = &mut findings.problems;
    if let Some(upstream) = &config.upstream
        && let Err(e) = upstream.open(std::time::SystemTime::now())
    {
        problems.push(format!("UpstreamAuthority \"disk\": {e}"));
    }
    problems.extend(writable_dir("data_dir", &config.data_dir));
    if let Some(db) = &config.datastore {
        problems.extend(datastore(db));
    }
    problems.extend(socket(
        "socket_path",
        &config.socket_path,
        &mut findings.notes,
    ));
    let daemon_running = !findings.notes.is_empty();
    let problems = &mut findings.problems;
    problems.extend(log_file(&settings.log));
    problems.extend(listeners(&config.health_checks, &config.telemetry));
    let mut tcp = vec![(
        "bind_address/bind_port".to_owned(),
        config.bind.ip().to_string(),
        config.bind.port(),
    )];
    tcp.extend(tcp_listeners(&config.health_checks, &config.telemetry));
    ports_free(&tcp, daemon_running, &mut findings);
    findings
}

/// `e` followed by its causes (the operating system's reason for an unreadable file).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Every problem with an agent configuration that is already parsed and merged.
pub(crate) fn agent(settings: &AgentSettings) -> Findings {
    let config = &settings.config;
    let mut findings = Findings::default();
    let problems = &mut findings.problems;
    if let Err(e) = config.validate() {
        problems.push(e.to_string());
    }
    if let lanyard_agent::TrustBootstrap::Pem(path) = &config.trust_bundle {
        match lanyard_ca::operator_file::read_operator_file(
            path,
            lanyard_ca::operator_file::MAX_OPERATOR_FILE_BYTES,
        ) {
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
    if let Some(x509pop) = &config.x509pop
        && let Err(e) = x509pop.check_files()
    {
        problems.push(with_causes(&e));
    }
    problems.extend(writable_dir("data_dir", &config.data_dir));
    problems.extend(socket(
        "socket_path",
        &config.socket_path,
        &mut findings.notes,
    ));
    let daemon_running = !findings.notes.is_empty();
    let problems = &mut findings.problems;
    problems.extend(log_file(&settings.log));
    problems.extend(listeners(&config.health_checks, &config.telemetry));
    // The agent runs the same check before binding its listeners; the server's runs in
    // ServerConfig::validate above, with its own port.
    if let Err(e) =
        lanyard_telemetry::check_listeners(&config.health_checks, &config.telemetry, &[])
    {
        problems.push(e.to_string());
    }
    ports_free(
        &tcp_listeners(&config.health_checks, &config.telemetry),
        daemon_running,
        &mut findings,
    );
    findings
}

/// `dir` exists as a writable directory, or its nearest existing ancestor is one (so that
/// it can be created).
/// `DataStore "sql"`: an SQLite file must be a file (or creatable) in a writable directory; a
/// server connection string must have the shape its engine takes. Nothing connects: a
/// database server that is down is found by `run`.
fn datastore(db: &lanyard_server::DatabaseConfig) -> Option<String> {
    use lanyard_server::Engine;

    let key = "DataStore \"sql\" connection_string";
    let given = db.connection_string.as_str();
    match db.engine {
        Engine::Sqlite => {
            let path = Path::new(given);
            if path.is_dir() {
                return Some(format!(
                    "{key} {given}: is a directory; give the path of the SQLite file"
                ));
            }
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            writable_dir(&format!("{key} directory"), parent)
        }
        Engine::Postgres => {
            let url = given.starts_with("postgres://") || given.starts_with("postgresql://");
            let pairs = given.split_whitespace().all(|kv| kv.contains('='));
            (!url && !pairs).then(|| {
                format!(
                    "{key}: not a PostgreSQL connection string; give a URL \
                     (postgres://user:pass@host:5432/db) or key=value pairs \
                     (host=db dbname=spire user=spire)"
                )
            })
        }
        Engine::Mysql => {
            let url = given.starts_with("mysql://");
            let dsn = given.contains('/');
            (!url && !dsn).then(|| {
                format!(
                    "{key}: not a MySQL connection string; give a URL \
                     (mysql://user:pass@host:3306/db) or a DSN (user:pass@tcp(host:3306)/db)"
                )
            })
        }
    }
}

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

/// The longest unix socket path: `sun_path` holds 108 bytes with the terminating NUL.
const MAX_SOCKET_PATH_BYTES: usize = 107;

/// The socket path fits a unix socket, does not name a file or directory, and its directory
/// can hold it. A process already listening on it is a note: validating before a restart is
/// what an operator does.
fn socket(key: &str, path: &Path, notes: &mut Vec<String>) -> Option<String> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH_BYTES {
        return Some(format!(
            "{key} {}: {len} bytes is too long for a unix socket path: at most \
             {MAX_SOCKET_PATH_BYTES} bytes",
            path.display()
        ));
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        let kind = if meta.is_dir() {
            Some("a directory")
        } else if meta.is_file() {
            Some("a regular file")
        } else {
            None
        };
        if let Some(kind) = kind {
            return Some(format!(
                "{key} {}: it is {kind}, not a socket: remove it or choose another path",
                path.display()
            ));
        }
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        notes.push(format!(
            "{key} {}: a process is listening on this socket now (the running daemon?); \
             stop it before starting another on this path",
            path.display()
        ));
        return None;
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty())?;
    writable_dir(&format!("{key} {}: directory", path.display()), parent)
}

fn log_file(log: &LogSettings) -> Option<String> {
    let path = log.file.as_ref()?;
    if path.is_dir() {
        return Some(format!(
            "log_file {}: it is a directory: give the path of a file",
            path.display()
        ));
    }
    if path.exists() {
        return match nix::unistd::access(path.as_path(), nix::unistd::AccessFlags::W_OK) {
            Ok(()) => None,
            Err(e) => Some(format!("log_file {}: not writable: {e}", path.display())),
        };
    }
    // Also catches a parent that is a regular file (then the path cannot exist).
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty())?;
    // The log file is created when it is missing, but its directory is not.
    if !parent.exists() {
        return Some(format!(
            "log_file {}: directory {} does not exist: create it or choose another path",
            path.display(),
            parent.display()
        ));
    }
    writable_dir(&format!("log_file {}: directory", path.display()), parent)
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

/// The health and metrics TCP listeners `run` binds, as (setting, host, port); one when they
/// share a host and port.
fn tcp_listeners(
    health: &lanyard_telemetry::HealthChecks,
    telemetry: &lanyard_telemetry::Telemetry,
) -> Vec<(String, String, u16)> {
    let mut out = Vec::new();
    if health.listener_enabled {
        out.push((
            "health_checks bind_address/bind_port".to_owned(),
            health.bind_address.clone(),
            health.bind_port,
        ));
    }
    if let Some(p) = &telemetry.prometheus
        && !(health.listener_enabled && health.bind_address == p.host && health.bind_port == p.port)
    {
        out.push((
            "telemetry Prometheus host/port".to_owned(),
            p.host.clone(),
            p.port,
        ));
    }
    out
}

/// Binds each TCP listener and releases it at once, so that a port already taken is reported
/// now rather than by `run`. When a daemon answers on the configured socket (`daemon_running`),
/// a taken port is most likely its own and is a note instead. Port 0 and hosts that do not
/// resolve (reported by the other checks) are skipped.
fn ports_free(listeners: &[(String, String, u16)], daemon_running: bool, findings: &mut Findings) {
    use std::net::ToSocketAddrs as _;

    for (key, host, port) in listeners {
        if *port == 0 {
            continue;
        }
        let Some(addr) = (host.as_str(), *port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
        else {
            continue;
        };
        match std::net::TcpListener::bind(addr) {
            Ok(listener) => drop(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && daemon_running => {
                findings.notes.push(format!(
                    "{key} {addr}: the address is in use, most likely by the daemon running on \
                     the socket; stop it before starting another with this configuration"
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                findings.problems.push(format!(
                    "{key} {addr}: the address is already in use: stop what listens there or \
                     choose another port"
                ));
            }
            Err(e) => findings
                .problems
                .push(format!("{key} {addr}: cannot listen on it: {e}")),
        }
    }
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
    fn datastore_connection_strings_are_checked_without_connecting() {
        use lanyard_server::{DatabaseConfig, Engine};

        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("shared/datastore.sqlite3");
        assert_eq!(
            datastore(&DatabaseConfig::new(
                Engine::Sqlite,
                file.display().to_string()
            )),
            None
        );
        let err = datastore(&DatabaseConfig::new(
            Engine::Sqlite,
            tmp.path().display().to_string(),
        ))
        .unwrap();
        assert!(err.contains("is a directory"), "{err}");
        let blocker = tmp.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = datastore(&DatabaseConfig::new(
            Engine::Sqlite,
            blocker.join("db.sqlite3").display().to_string(),
        ))
        .unwrap();
        assert!(err.contains("is not a directory"), "{err}");

        for good in ["postgres://u:p@db/spire", "host=db dbname=spire user=spire"] {
            assert_eq!(
                datastore(&DatabaseConfig::new(Engine::Postgres, good)),
                None
            );
        }
        let err = datastore(&DatabaseConfig::new(Engine::Postgres, "db.example")).unwrap();
        assert!(err.contains("not a PostgreSQL connection string"), "{err}");
        assert_eq!(
            datastore(&DatabaseConfig::new(
                Engine::Mysql,
                "u:p@tcp(db:3306)/spire"
            )),
            None
        );
        let err = datastore(&DatabaseConfig::new(Engine::Mysql, "db.example")).unwrap();
        assert!(err.contains("not a MySQL connection string"), "{err}");
    }

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
    fn a_live_socket_is_a_note_not_a_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut notes = Vec::new();
        assert_eq!(socket("socket_path", &path, &mut notes), None);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].ends_with(
                "a process is listening on this socket now (the running daemon?); stop it \
                 before starting another on this path"
            ),
            "{notes:?}"
        );
    }

    #[test]
    fn a_stale_socket_file_is_fine() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert_eq!(socket("socket_path", &path, &mut Vec::new()), None);
    }

    #[test]
    fn a_socket_path_over_the_unix_limit_is_a_problem() {
        let path = Path::new("/tmp").join("s".repeat(110));
        let problem = socket("socket_path", &path, &mut Vec::new()).unwrap();
        assert_eq!(
            problem,
            format!(
                "socket_path {}: 115 bytes is too long for a unix socket path: at most 107 bytes",
                path.display()
            )
        );
    }

    #[test]
    fn a_socket_path_naming_a_file_or_directory_is_a_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, "").unwrap();
        let problem = socket("socket_path", &file, &mut Vec::new()).unwrap();
        assert!(
            problem
                .ends_with("it is a regular file, not a socket: remove it or choose another path"),
            "{problem}"
        );
        let problem = socket("socket_path", tmp.path(), &mut Vec::new()).unwrap();
        assert!(
            problem.contains("it is a directory, not a socket"),
            "{problem}"
        );
    }

    #[test]
    fn a_log_file_that_is_a_directory_or_under_a_file_is_a_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let log = |file: &Path| LogSettings {
            file: Some(file.to_path_buf()),
            ..LogSettings::default()
        };
        let problem = log_file(&log(tmp.path())).unwrap();
        assert!(
            problem.ends_with("it is a directory: give the path of a file"),
            "{problem}"
        );
        let file = tmp.path().join("f");
        std::fs::write(&file, "").unwrap();
        let problem = log_file(&log(&file.join("x.log"))).unwrap();
        assert!(problem.contains("is not a directory"), "{problem}");
    }

    #[test]
    fn a_port_in_use_is_a_problem_or_a_note_when_the_daemon_runs() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let listeners = [(
            "health_checks bind_address/bind_port".to_owned(),
            "127.0.0.1".to_owned(),
            addr.port(),
        )];

        let mut findings = Findings::default();
        ports_free(&listeners, false, &mut findings);
        assert_eq!(
            findings.problems,
            [format!(
                "health_checks bind_address/bind_port {addr}: the address is already in use: \
                 stop what listens there or choose another port"
            )]
        );

        let mut findings = Findings::default();
        ports_free(&listeners, true, &mut findings);
        assert!(findings.problems.is_empty());
        assert_eq!(findings.notes.len(), 1, "{:?}", findings.notes);
        assert!(findings.notes[0].contains(&addr.to_string()));

        drop(taken);
        let mut findings = Findings::default();
        ports_free(&listeners, false, &mut findings);
        assert!(findings.problems.is_empty(), "{:?}", findings.problems);
        // Checking released the port again.
        std::net::TcpListener::bind(addr).unwrap();
    }

    #[test]
    fn a_log_file_in_a_missing_directory_is_a_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("nonexistent/dir/x.log");
        let settings = LogSettings {
            file: Some(path.clone()),
            ..LogSettings::default()
        };
        assert_eq!(
            log_file(&settings).unwrap(),
            format!(
                "log_file {}: directory {} does not exist: create it or choose another path",
                path.display(),
                tmp.path().join("nonexistent/dir").display()
            )
        );
    }
}
