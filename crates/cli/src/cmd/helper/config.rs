//! The helper's settings: an HCL file with spiffe-helper's top-level keys, then flags on top.

use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

use crate::config::ConfigError;
use crate::config::hcl::{self, Entry};
use crate::config::{Key, Scope};

/// What the helper does, after the file and the flags are merged.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HelperConfig {
    /// The Workload API address (`agent_address`), unset for `SPIFFE_ENDPOINT_SOCKET`.
    pub(crate) agent_address: Option<String>,
    /// The program started after the first update (`cmd`).
    pub(crate) cmd: Option<String>,
    /// Its arguments, split like a shell would (`cmd_args`).
    pub(crate) cmd_args: String,
    /// Where the files go (`cert_dir`).
    pub(crate) cert_dir: PathBuf,
    /// The certificate chain file (`svid_file_name`).
    pub(crate) svid_file_name: String,
    /// The private key file, mode 0600 (`svid_key_file_name`).
    pub(crate) svid_key_file_name: String,
    /// The trust bundle file (`svid_bundle_file_name`).
    pub(crate) svid_bundle_file_name: String,
    /// The signal sent after later updates (`renew_signal`).
    pub(crate) renew_signal: Option<Signal>,
    /// A file holding the pid to signal instead of the started command (`pid_file_name`).
    pub(crate) pid_file_name: Option<PathBuf>,
    /// Keep running and follow rotations (`daemon_mode`, default true).
    pub(crate) daemon_mode: bool,
    /// Move the SVID's intermediates from the certificate file to the bundle file
    /// (`add_intermediates_to_bundle`).
    pub(crate) add_intermediates_to_bundle: bool,
    /// Append federated trust domains' CAs to the bundle file (`include_federated_domains`).
    pub(crate) include_federated_domains: bool,
}

impl Default for HelperConfig {
    fn default() -> Self {
        Self {
            agent_address: None,
            cmd: None,
            cmd_args: String::new(),
            cert_dir: PathBuf::new(),
            svid_file_name: "svid.pem".into(),
            svid_key_file_name: "svid_key.pem".into(),
            svid_bundle_file_name: "svid_bundle.pem".into(),
            renew_signal: None,
            pid_file_name: None,
            daemon_mode: true,
            add_intermediates_to_bundle: false,
            include_federated_domains: false,
        }
    }
}

/// spiffe-helper's keys; the JWT ones and the rarer ones are not implemented yet.
const KEYS: &[(&str, Key)] = &[
    ("agent_address", Key::Mapped),
    ("cmd", Key::Mapped),
    ("cmd_args", Key::Mapped),
    ("cert_dir", Key::Mapped),
    ("svid_file_name", Key::Mapped),
    ("svid_key_file_name", Key::Mapped),
    ("svid_bundle_file_name", Key::Mapped),
    ("renew_signal", Key::Mapped),
    ("pid_file_name", Key::Mapped),
    ("daemon_mode", Key::Mapped),
    ("add_intermediates_to_bundle", Key::Mapped),
    ("include_federated_domains", Key::Mapped),
    // TODO: JWT-SVID and JWT bundle files, once the helper watches FetchJWTBundles too.
    ("jwt_svids", Key::Unimplemented),
    ("jwt_bundle_file_name", Key::Unimplemented),
    ("jwt_bundle_file_mode", Key::Unimplemented),
    ("jwt_svid_file_mode", Key::Unimplemented),
    ("cert_file_mode", Key::Unimplemented),
    ("key_file_mode", Key::Unimplemented),
    ("health_checks", Key::Unimplemented),
    ("hint", Key::Unimplemented),
    ("omit_expired", Key::FalseOnly),
    ("exit_when_ready", Key::FalseOnly),
];

/// Reads the helper's HCL file over the defaults.
///
/// # Errors
///
/// An unreadable file, an HCL syntax error, an unknown, repeated or unimplemented key, a
/// value of the wrong type.
pub(crate) fn read(path: &Path) -> Result<HelperConfig, ConfigError> {
    use std::io::Read;

    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(crate::config::MAX_FILE_BYTES + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > crate::config::MAX_FILE_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit: crate::config::MAX_FILE_BYTES,
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| ConfigError::NotText {
        path: path.to_path_buf(),
    })?;
    parse(&text)
}

/// Parses the text of a helper file over the defaults.
pub(crate) fn parse(text: &str) -> Result<HelperConfig, ConfigError> {
    let entries = hcl::parse(text)?;
    let mut config = HelperConfig::default();
    let scope = Scope {
        block: "the helper file",
        kind: "spiffe-helper",
        prefix: "",
        keys: KEYS,
    };
    crate::config::walk(&entries, &scope, |entry| apply(&mut config, entry))?;
    Ok(config)
}

fn apply(config: &mut HelperConfig, entry: &Entry) -> Result<(), ConfigError> {
    let name = |entry: &Entry| -> Result<String, ConfigError> {
        let s = entry.str()?;
        if s.is_empty() || s.contains('/') {
            return Err(entry.invalid("a file name, without '/', inside cert_dir"));
        }
        Ok(s.to_owned())
    };
    match entry.key.as_str() {
        "agent_address" => config.agent_address = Some(entry.str()?.to_owned()),
        "cmd" => config.cmd = Some(entry.path()?.display().to_string()),
        "cmd_args" => config.cmd_args = entry.str()?.to_owned(),
        "cert_dir" => config.cert_dir = entry.path()?,
        "svid_file_name" => config.svid_file_name = name(entry)?,
        "svid_key_file_name" => config.svid_key_file_name = name(entry)?,
        "svid_bundle_file_name" => config.svid_bundle_file_name = name(entry)?,
        "renew_signal" => {
            config.renew_signal = Some(parse_signal(entry.str()?).map_err(|r| entry.invalid(r))?)
        }
        "pid_file_name" => config.pid_file_name = Some(entry.path()?),
        "daemon_mode" => config.daemon_mode = entry.bool()?,
        "add_intermediates_to_bundle" => config.add_intermediates_to_bundle = entry.bool()?,
        "include_federated_domains" => config.include_federated_domains = entry.bool()?,
        _ => {}
    }
    Ok(())
}

/// A signal by name: `SIGHUP` or `HUP`.
pub(crate) fn parse_signal(s: &str) -> Result<Signal, String> {
    let full = if s.starts_with("SIG") {
        s.to_owned()
    } else {
        format!("SIG{s}")
    };
    full.parse::<Signal>()
        .map_err(|_| format!("{s:?} is not a signal name such as SIGHUP or SIGUSR1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_spiffe_helper_keys_over_the_defaults() {
        let config = parse(
            "agent_address = \"/tmp/agent.sock\"\ncmd = \"/bin/sh\"\ncmd_args = \"-c 'x'\"\n\
             cert_dir = \"/certs\"\nrenew_signal = \"SIGHUP\"\ndaemon_mode = false\n\
             svid_file_name = \"cert.pem\"\n",
        )
        .unwrap();
        assert_eq!(config.agent_address.as_deref(), Some("/tmp/agent.sock"));
        assert_eq!(config.renew_signal, Some(Signal::SIGHUP));
        assert!(!config.daemon_mode);
        assert_eq!(config.svid_file_name, "cert.pem");
        assert_eq!(config.svid_key_file_name, "svid_key.pem");
        assert_eq!(config.cert_dir, PathBuf::from("/certs"));
    }

    #[test]
    fn refuses_unknown_keys_with_a_suggestion() {
        let err = parse("cert_dri = \"/certs\"\n").unwrap_err().to_string();
        assert!(
            err.contains("\"cert_dri\"") && err.contains("cert_dir"),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_file_name_with_a_directory() {
        let err = parse("svid_file_name = \"../x.pem\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("without '/'"), "{err}");
    }

    #[test]
    fn refuses_unknown_signals_and_unimplemented_keys() {
        let err = parse("renew_signal = \"SIGNOPE\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("SIGNOPE"), "{err}");
        let err = parse("jwt_bundle_file_name = \"b.json\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not implement"), "{err}");
    }
}
