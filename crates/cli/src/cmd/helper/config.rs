//! The helper's settings: an HCL file with spiffe-helper's top-level keys, then flags on top.

use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

use crate::config::ConfigError;
use crate::config::hcl::{self, Entry};
use crate::config::{Key, Scope};

use super::values::{self, JwtSvidFile};

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
    /// Mode of the certificate and bundle files (`cert_file_mode`, default 0644).
    pub(crate) cert_file_mode: u32,
    /// Mode of the private key file (`key_file_mode`, default 0600).
    pub(crate) key_file_mode: u32,
    /// JWT-SVIDs kept in files, one per audience (`jwt_svids`).
    pub(crate) jwt_svids: Vec<JwtSvidFile>,
    /// The JWT bundles of every trust domain, as JSON (`jwt_bundle_file_name`); unset
    /// writes none.
    pub(crate) jwt_bundle_file_name: Option<String>,
    /// Mode of the JWT bundle file (`jwt_bundle_file_mode`, default 0600).
    pub(crate) jwt_bundle_file_mode: u32,
    /// Mode of the JWT-SVID files (`jwt_svid_file_mode`, default 0600): a token is a bearer
    /// credential.
    pub(crate) jwt_svid_file_mode: u32,
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
            // spiffe-helper's defaults.
            cert_file_mode: 0o644,
            key_file_mode: 0o600,
            jwt_svids: Vec::new(),
            jwt_bundle_file_name: None,
            jwt_bundle_file_mode: 0o600,
            jwt_svid_file_mode: 0o600,
        }
    }
}

/// spiffe-helper's keys; the rarer ones are not implemented yet.
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
    ("jwt_svids", Key::Mapped),
    ("jwt_bundle_file_name", Key::Mapped),
    ("jwt_bundle_file_mode", Key::Mapped),
    ("jwt_svid_file_mode", Key::Mapped),
    ("cert_file_mode", Key::Mapped),
    ("key_file_mode", Key::Mapped),
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

impl HelperConfig {
    /// Every file the helper writes under `cert_dir`, with the key that names it.
    pub(crate) fn files(&self) -> Vec<(String, &str)> {
        let mut files = vec![
            ("svid_file_name".to_owned(), self.svid_file_name.as_str()),
            (
                "svid_key_file_name".to_owned(),
                self.svid_key_file_name.as_str(),
            ),
            (
                "svid_bundle_file_name".to_owned(),
                self.svid_bundle_file_name.as_str(),
            ),
        ];
        if let Some(name) = &self.jwt_bundle_file_name {
            files.push(("jwt_bundle_file_name".to_owned(), name));
        }
        for (i, jwt) in self.jwt_svids.iter().enumerate() {
            files.push((format!("jwt_svids[{i}].jwt_svid_file_name"), &jwt.file_name));
        }
        files
    }

    /// Refuses two keys naming the same file: one update would overwrite the other's file,
    /// and a key could end up in a file of mode 0644.
    ///
    /// # Errors
    ///
    /// The two keys and the file they share.
    pub(crate) fn check_distinct_files(&self) -> Result<(), String> {
        let files = self.files();
        for (i, (key, name)) in files.iter().enumerate() {
            if let Some((first, _)) = files[..i].iter().find(|(_, other)| other == name) {
                return Err(format!(
                    "{key} and {first} both name the file {name:?}: give each file its own name"
                ));
            }
        }
        Ok(())
    }
}

fn apply(config: &mut HelperConfig, entry: &Entry) -> Result<(), ConfigError> {
    let name = values::file_name;
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
        "cert_file_mode" => config.cert_file_mode = values::file_mode(entry)?,
        "key_file_mode" => config.key_file_mode = values::file_mode(entry)?,
        "jwt_svids" => config.jwt_svids = values::jwt_svids(entry)?,
        "jwt_bundle_file_name" => config.jwt_bundle_file_name = Some(name(entry)?),
        "jwt_bundle_file_mode" => config.jwt_bundle_file_mode = values::file_mode(entry)?,
        "jwt_svid_file_mode" => config.jwt_svid_file_mode = values::file_mode(entry)?,
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
        let err = parse("hint = \"internal\"\n").unwrap_err().to_string();
        assert!(err.contains("not implement"), "{err}");
    }

    #[test]
    fn reads_jwt_svids_and_the_jwt_bundle_file_with_spiffe_helper_modes() {
        let config = parse(
            "jwt_svids = [\n  {jwt_audience = \"db\", jwt_svid_file_name = \"db.token\"},\n  \
             {jwt_audience = \"web\", jwt_extra_audiences = [\"cdn\", \"lb\"], \
             jwt_svid_file_name = \"web.token\"},\n]\njwt_bundle_file_name = \"bundle.json\"\n",
        )
        .unwrap();
        assert_eq!(config.jwt_svids.len(), 2);
        assert_eq!(config.jwt_svids[0].audiences(), ["db"]);
        assert_eq!(config.jwt_svids[0].file_name, "db.token");
        assert_eq!(config.jwt_svids[1].audiences(), ["web", "cdn", "lb"]);
        assert_eq!(config.jwt_bundle_file_name.as_deref(), Some("bundle.json"));
        assert_eq!(config.jwt_svid_file_mode, 0o600);
        assert_eq!(config.jwt_bundle_file_mode, 0o600);
        assert_eq!(config.cert_file_mode, 0o644);
        assert_eq!(config.key_file_mode, 0o600);
    }

    #[test]
    fn reads_file_modes_as_octal_digits() {
        let config = parse(
            "jwt_svid_file_mode = 0440\njwt_bundle_file_mode = \"0644\"\n\
             cert_file_mode = 444\nkey_file_mode = \"0o400\"\n",
        )
        .unwrap();
        assert_eq!(config.jwt_svid_file_mode, 0o440);
        assert_eq!(config.jwt_bundle_file_mode, 0o644);
        assert_eq!(config.cert_file_mode, 0o444);
        assert_eq!(config.key_file_mode, 0o400);
    }

    #[test]
    fn refuses_file_modes_that_are_not_octal_or_unreadable_by_the_owner() {
        for (text, rule) in [
            ("jwt_svid_file_mode = 0648\n", "digits 0-7"),
            ("jwt_svid_file_mode = 1777\n", "at most 0777"),
            ("jwt_svid_file_mode = -1\n", "octal file mode"),
            ("jwt_bundle_file_mode = \"rw\"\n", "digits 0-7"),
            ("jwt_bundle_file_mode = 0200\n", "at least 0400"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            let key = text.split(' ').next().unwrap();
            assert!(err.contains(key) && err.contains(rule), "{text}: {err}");
        }
    }

    #[test]
    fn refuses_jwt_svids_without_audience_or_file_or_with_unknown_keys() {
        for (text, needle) in [
            (
                "jwt_svids = [{jwt_svid_file_name = \"a.token\"}]\n",
                "jwt_audience is required",
            ),
            (
                "jwt_svids = [{jwt_audience = \"db\"}]\n",
                "jwt_svid_file_name is required",
            ),
            (
                "jwt_svids = [{jwt_audience = \"\", jwt_svid_file_name = \"a\"}]\n",
                "not empty",
            ),
            (
                "jwt_svids = [{jwt_audience = \"db\", jwt_svid_file = \"a\"}]\n",
                "jwt_svid_file_name",
            ),
            (
                "jwt_svids = [{jwt_audience = \"db\", jwt_svid_file_name = \"../a\"}]\n",
                "without '/'",
            ),
            (
                "jwt_svids = [{jwt_audience = \"db\", jwt_extra_audiences = \"x\", \
                 jwt_svid_file_name = \"a\"}]\n",
                "a list of strings",
            ),
            ("jwt_svids = \"db\"\n", "a list of objects"),
            ("jwt_svids = [\"db\"]\n", "jwt_svids[0]"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn refuses_two_keys_naming_the_same_file() {
        let config =
            parse("jwt_svids = [{jwt_audience = \"db\", jwt_svid_file_name = \"svid_key.pem\"}]\n")
                .unwrap();
        let err = config.check_distinct_files().unwrap_err();
        assert!(
            err.contains("jwt_svids[0].jwt_svid_file_name") && err.contains("svid_key_file_name"),
            "{err}"
        );
        assert!(HelperConfig::default().check_distinct_files().is_ok());
    }
}
