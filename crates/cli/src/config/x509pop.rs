//! `NodeAttestor "x509pop"` on both sides, with SPIRE's `plugin_data` keys. The server's CA
//! bundles are read here, so `run` and `validate` both refuse an unusable one.

use std::path::PathBuf;

use lanyard_server::{AgentPathTemplate, X509popConfig};

use super::hcl::{Entry, Value};
use super::plugins::data_scope;
use super::{ConfigError, Key, walk};

const BLOCK: &str = "NodeAttestor \"x509pop\"";

/// The server's `plugin_data`.
const SERVER_KEYS: &[(&str, Key)] = &[
    ("mode", Key::Mapped),
    ("ca_bundle_path", Key::Mapped),
    ("ca_bundle_paths", Key::Mapped),
    ("agent_path_template", Key::Mapped),
    ("max_intermediates", Key::Mapped),
    ("max_rsa_key_size", Key::Unimplemented),
    // SPIRE's code reads `spiffe_prefix`; its documentation says `svid_prefix`.
    ("spiffe_prefix", Key::Unimplemented),
    ("svid_prefix", Key::Unimplemented),
    ("verify_client_ip", Key::FalseOnly),
];

/// The agent's `plugin_data`.
const AGENT_KEYS: &[(&str, Key)] = &[
    ("private_key_path", Key::Mapped),
    ("certificate_path", Key::Mapped),
    ("intermediates_path", Key::Mapped),
    ("spiffe_endpoint_socket", Key::Unimplemented),
];

/// Reads the server's x509pop settings and its CA bundles.
///
/// # Errors
///
/// Unknown or unimplemented keys, `mode = "spiffe"`, a template Lanyard cannot fill, both or
/// neither of the bundle keys, and bundle files that cannot be read or hold no CA.
pub(crate) fn server(data: &[Entry], line: usize) -> Result<X509popConfig, ConfigError> {
    let mut single: Option<PathBuf> = None;
    let mut list: Option<(Vec<PathBuf>, usize)> = None;
    let mut template = None;
    let mut max_intermediates = None;
    walk(data, &data_scope(BLOCK, SERVER_KEYS), |e| {
        match e.key.as_str() {
            "mode" => match e.str()? {
                "external_pki" => {}
                "spiffe" => {
                    return Err(ConfigError::Unsupported {
                        what: format!("{BLOCK} mode \"spiffe\""),
                        line: e.line,
                        rule: "Lanyard's x509pop validates against ca_bundle_path only \
                               (mode \"external_pki\")"
                            .into(),
                    });
                }
                _ => return Err(e.invalid("mode is \"external_pki\" or \"spiffe\"")),
            },
            "ca_bundle_path" => single = Some(e.path()?),
            "ca_bundle_paths" => list = Some((paths(e)?, e.line)),
            "agent_path_template" => {
                let parsed =
                    AgentPathTemplate::parse(e.str()?).map_err(|err| e.invalid(err.to_string()))?;
                template = Some(parsed);
            }
            _ => max_intermediates = Some(positive(e)?),
        }
        Ok(())
    })?;
    let paths = match (single, list) {
        (Some(_), Some((_, list_line))) => {
            return Err(ConfigError::Conflict(format!(
                "{BLOCK} (line {line}) sets both ca_bundle_path and ca_bundle_paths (line \
                 {list_line}): give one"
            )));
        }
        (Some(path), None) => vec![path],
        (None, Some((paths, _))) => paths,
        (None, None) => Vec::new(),
    };
    X509popConfig::load(paths, template, max_intermediates).map_err(|e| ConfigError::Plugin {
        plugin: BLOCK.into(),
        line,
        reason: e.to_string(),
    })
}

/// Reads the agent's x509pop settings; the files are read when the agent attests.
///
/// # Errors
///
/// Unknown or unimplemented keys, and a missing `private_key_path` or `certificate_path`.
pub(crate) fn agent(
    data: &[Entry],
    line: usize,
) -> Result<lanyard_agent::X509popAgentConfig, ConfigError> {
    let (mut key, mut cert, mut intermediates) = (None, None, None);
    walk(data, &data_scope(BLOCK, AGENT_KEYS), |e| {
        let path = Some(e.path()?);
        match e.key.as_str() {
            "private_key_path" => key = path,
            "certificate_path" => cert = path,
            _ => intermediates = path,
        }
        Ok(())
    })?;
    let missing = |name: &str, what: &str| {
        ConfigError::Conflict(format!(
            "{BLOCK} at line {line} has no plugin_data.{name}: set it to the PEM file of {what}"
        ))
    };
    Ok(lanyard_agent::X509popAgentConfig {
        private_key_path: key.ok_or_else(|| missing("private_key_path", "the agent's key"))?,
        certificate_path: cert.ok_or_else(|| {
            missing(
                "certificate_path",
                "the agent's certificate (then any intermediates)",
            )
        })?,
        intermediates_path: intermediates,
    })
}

/// `ca_bundle_paths`: a non-empty list of paths.
fn paths(e: &Entry) -> Result<Vec<PathBuf>, ConfigError> {
    let rule = "ca_bundle_paths is a list of PEM files, such as [\"/etc/lanyard/agent-ca.pem\"]";
    let Value::List(items) = &e.value else {
        return Err(e.invalid(rule));
    };
    if items.is_empty() {
        return Err(e.invalid(format!("{rule}; it is empty")));
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(s) if !s.is_empty() => Ok(PathBuf::from(s)),
            _ => Err(e.invalid(format!("{rule}; it holds something else than a path"))),
        })
        .collect()
}

/// A whole number of at least 1.
fn positive(e: &Entry) -> Result<usize, ConfigError> {
    match e.value {
        Value::Int(n) if n >= 1 => usize::try_from(n).map_err(|_| e.invalid("it is too large")),
        _ => Err(e.invalid(format!("{} is a whole number of at least 1", e.key))),
    }
}

#[cfg(test)]
#[path = "x509pop_tests.rs"]
mod tests;
