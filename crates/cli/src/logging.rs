//! Installs the process's tracing subscriber (only the binary does this), with SPIRE's
//! `log_level`, `log_format` and `log_file` settings.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The process's log file, when it logs to one; set once by [`init_with`].
static LOG_FILE: OnceLock<ReopenableFile> = OnceLock::new();

/// Log output format (SPIRE's `log_format`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    /// `text` or `json`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("{s:?} is not a log format: use text or json")),
        }
    }
}

/// Log level (SPIRE's `log_level`: `DEBUG`, `INFO`, `WARN`, `ERROR` in any case; Lanyard adds
/// `TRACE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum LogLevel {
    /// Failures only.
    Error,
    /// Failures and what an operator must fix.
    Warn,
    /// Lifecycle and denials.
    #[default]
    Info,
    /// Everything useful for debugging.
    Debug,
    /// Everything.
    Trace,
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Ok(Self::Error),
            "warn" | "warning" => Ok(Self::Warn),
            "info" => Ok(Self::Info),
            "debug" => Ok(Self::Debug),
            "trace" => Ok(Self::Trace),
            _ => Err(format!(
                "{s:?} is not a log level: use debug, info, warn or error (any case), or trace"
            )),
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        })
    }
}

/// Where and how the process logs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogSettings {
    /// Level for Lanyard's own crates (`RUST_LOG` overrides it when set).
    pub(crate) level: LogLevel,
    /// Text or JSON lines.
    pub(crate) format: LogFormat,
    /// Append to this file (created 0600) instead of writing to stderr.
    pub(crate) file: Option<PathBuf>,
}

/// Logs to stderr at `level` (`RUST_LOG` overrides it when set).
pub(crate) fn init(level: &str, format: LogFormat) {
    let level = level.parse().unwrap_or_default();
    let _ = init_with(&LogSettings {
        level,
        format,
        file: None,
    });
}

/// Installs the subscriber described by `settings`.
///
/// # Errors
///
/// The log file cannot be opened for appending.
pub(crate) fn init_with(settings: &LogSettings) -> std::io::Result<()> {
    let level = settings.level;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("warn,lanyard={level},lanyard_server={level},lanyard_agent={level},lanyard_workload={level},lanyard_ca={level},lanyard_datastore={level},lanyard_telemetry={level}"))
    });
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match &settings.file {
        Some(path) => {
            let file = ReopenableFile::open(path)?;
            let _ = LOG_FILE.set(file.clone());
            let builder = builder.with_ansi(false).with_writer(file);
            match settings.format {
                LogFormat::Text => builder.try_init(),
                LogFormat::Json => builder.json().try_init(),
            }
        }
        None => {
            let builder = builder
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr);
            match settings.format {
                LogFormat::Text => builder.try_init(),
                LogFormat::Json => builder.json().try_init(),
            }
        }
    };
    Ok(())
}

/// Reopens the log file at its configured path, so that after logrotate (or an operator)
/// moved it, new lines go to a fresh file there. `None` when the process logs to stderr.
///
/// # Errors
///
/// The file cannot be opened; logging then goes on to the old file.
pub(crate) fn reopen_log_file() -> Option<io::Result<&'static Path>> {
    let file = LOG_FILE.get()?;
    Some(file.reopen().map(|()| file.path.as_path()))
}

/// A log file that can be swapped for a freshly opened one while the subscriber writes to it.
#[derive(Clone)]
pub(crate) struct ReopenableFile {
    path: PathBuf,
    current: Arc<Mutex<Arc<File>>>,
}

impl ReopenableFile {
    /// Opens `path` as [`open_log_file`] does.
    ///
    /// # Errors
    ///
    /// As [`open_log_file`].
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            current: Arc::new(Mutex::new(Arc::new(open_log_file(path)?))),
        })
    }

    /// Opens the path again and writes there from now on; lines being written to the old file
    /// finish there.
    ///
    /// # Errors
    ///
    /// As [`open_log_file`]; the old file stays in use.
    pub(crate) fn reopen(&self) -> io::Result<()> {
        let fresh = Arc::new(open_log_file(&self.path)?);
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }
}

/// One log line's handle on the file that was current when the line started.
pub(crate) struct LogWriter(Arc<File>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

impl<'a> MakeWriter<'a> for ReopenableFile {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter(Arc::clone(
            &self.current.lock().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// Opens `path` for appending, creating it readable by the owner only: logs name SPIFFE IDs
/// and peers, which are not for every local user.
pub(crate) fn open_log_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("log file {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_case_insensitive_like_spire() {
        assert_eq!("DEBUG".parse::<LogLevel>().unwrap(), LogLevel::Debug);
        assert_eq!("Warn".parse::<LogLevel>().unwrap(), LogLevel::Warn);
        assert!("loud".parse::<LogLevel>().unwrap_err().contains("\"loud\""));
        assert_eq!("JSON".parse::<LogFormat>().unwrap(), LogFormat::Json);
    }

    #[test]
    fn log_file_is_created_owner_only_and_appended() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lanyard.log");
        writeln!(open_log_file(&path).unwrap(), "one").unwrap();
        writeln!(open_log_file(&path).unwrap(), "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn reopening_writes_to_a_fresh_file_after_the_old_one_was_moved() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lanyard.log");
        let rotated = dir.path().join("lanyard.log.1");
        let file = ReopenableFile::open(&path).unwrap();
        writeln!(file.make_writer(), "before").unwrap();
        std::fs::rename(&path, &rotated).unwrap();
        writeln!(file.make_writer(), "still old").unwrap();
        file.reopen().unwrap();
        writeln!(file.make_writer(), "after").unwrap();
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap(),
            "before\nstill old\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
