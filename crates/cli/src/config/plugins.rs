//! The `plugins {}` block: SPIRE's plugin types and names, what Lanyard's built-in pieces
//! stand for, and the plugin settings they can honour.
//!
//! Lanyard has no plugin system: the SQLite datastore, the on-disk key store, join-token
//! attestation and the unix workload attestor are built in and always on. A `plugins {}`
//! block is read to check that it asks for exactly those, with settings they can honour; a
//! file without one gets the built-ins. `KeyManager "memory"` swaps the on-disk key store for
//! one in memory, in the server and in the agent; `NodeAttestor "x509pop"` (see `x509pop.rs`)
//! is built in and enabled by its block.

use std::collections::HashMap;
use std::path::PathBuf;

use lanyard_server::{DatabaseConfig, KeyManagerKind};

use super::hcl::{Entry, Value};
use super::{ConfigError, Key, Scope, walk};

/// SPIRE's node attestors: the server and the agent each have one of every name.
const NODE_ATTESTORS: &[&str] = &[
    "join_token",
    "x509pop",
    "sshpop",
    "tpm_devid",
    "aws_iid",
    "gcp_iit",
    "azure_msi",
    "azure_imds",
    "k8s_psat",
    "http_challenge",
];

/// SPIRE's server plugin types and the names each type has.
const SERVER_CATALOG: &[(&str, &[&str])] = &[
    ("DataStore", &["sql"]),
    (
        "KeyManager",
        &[
            "disk",
            "memory",
            "aws_kms",
            "gcp_kms",
            "azure_key_vault",
            "hashicorp_vault",
        ],
    ),
    ("NodeAttestor", NODE_ATTESTORS),
    (
        "UpstreamAuthority",
        &[
            "disk",
            "awssecret",
            "aws_pca",
            "gcp_cas",
            "vault",
            "cert-manager",
            "ejbca",
            "spire",
        ],
    ),
    ("Notifier", &["gcs_bundle", "k8sbundle"]),
    (
        "BundlePublisher",
        &[
            "aws_s3",
            "gcp_cloudstorage",
            "azure_blob",
            "k8s_configmap",
            "aws_rolesanywhere_trustanchor",
        ],
    ),
    ("CredentialComposer", &["uniqueid"]),
];

/// SPIRE's agent plugin types and the names each type has.
const AGENT_CATALOG: &[(&str, &[&str])] = &[
    ("KeyManager", &["disk", "memory"]),
    ("NodeAttestor", NODE_ATTESTORS),
    (
        "WorkloadAttestor",
        &["unix", "k8s", "docker", "systemd", "windows", "slurm"],
    ),
    ("SVIDStore", &["aws_secretsmanager", "gcp_secretmanager"]),
];

/// The plugins Lanyard has built in and always on: `enabled = false` cannot turn them off.
const BUILT_IN: &[(&str, &str)] = &[
    ("DataStore", "sql"),
    ("KeyManager", "disk"),
    ("NodeAttestor", "join_token"),
    ("WorkloadAttestor", "unix"),
];

/// Keys of every plugin block, outside `plugin_data`.
const PLUGIN_KEYS: &[(&str, Key)] = &[
    ("plugin_data", Key::Mapped),
    ("enabled", Key::Mapped),
    ("plugin_cmd", Key::Unimplemented),
    ("plugin_args", Key::Unimplemented),
    ("plugin_checksum", Key::Unimplemented),
    ("plugin_data_file", Key::Unimplemented),
];

/// What a server's `plugins {}` asks of the built-ins, checked against `data_dir` once the
/// flags are merged in.
#[derive(Debug, Default)]
pub(crate) struct ServerPlugins {
    /// `DataStore "sql" { plugin_data { .. } }`: the database to use instead of the default
    /// SQLite file in data_dir.
    pub(crate) datastore: Option<DatabaseConfig>,
    /// `KeyManager "disk" { plugin_data { keys_path } }` and its line.
    pub(crate) keys_path: Option<(PathBuf, usize)>,
    /// The enabled `KeyManager` block, `disk` or `memory`, and its line.
    pub(crate) key_manager: Option<(lanyard_server::KeyManagerKind, usize)>,
    /// `UpstreamAuthority "disk" { plugin_data { cert_file_path key_file_path
    /// bundle_file_path } }`.
    pub(crate) upstream: Option<lanyard_server::UpstreamDisk>,
    /// `NodeAttestor "x509pop" { plugin_data { ca_bundle_path .. } }`, bundles read.
    pub(crate) x509pop: Option<lanyard_server::X509popConfig>,
}

/// What an agent's `plugins {}` asks of the built-ins.
#[derive(Debug, Default)]
pub(crate) struct AgentPlugins {
    /// `KeyManager "disk" { plugin_data { directory } }` and its line.
    pub(crate) key_directory: Option<(PathBuf, usize)>,
    /// The enabled `KeyManager` block, `disk` or `memory`, and its line.
    pub(crate) key_manager: Option<(KeyManagerKind, usize)>,
    /// `WorkloadAttestor "unix" { plugin_data { discover_workload_path workload_size_limit } }`.
    pub(crate) unix_attestor: lanyard_agent::UnixAttestorConfig,
    /// `NodeAttestor "x509pop" { plugin_data { private_key_path certificate_path .. } }`.
    pub(crate) x509pop: Option<lanyard_agent::X509popAgentConfig>,
}

/// Reads a server's `plugins {}`.
///
/// # Errors
///
/// Plugins Lanyard does not implement, unknown plugins and settings the built-ins cannot
/// honour.
pub(crate) fn server(block: &Entry) -> Result<ServerPlugins, ConfigError> {
    let mut out = ServerPlugins::default();
    for plugin in plugin_blocks(block, SERVER_CATALOG)? {
        let Some(data) = plugin.data else { continue };
        match (plugin.ty, plugin.name) {
            ("DataStore", "sql") => out.datastore = Some(super::datastore::sql(data, plugin.line)?),
            ("KeyManager", "disk") => {
                let scope = data_scope("KeyManager \"disk\"", &[("keys_path", Key::Mapped)]);
                walk(data, &scope, |e| {
                    out.keys_path = Some((e.path()?, e.line));
                    Ok(())
                })?;
                one_key_manager(
                    &mut out.key_manager,
                    KeyManagerKind::Disk,
                    plugin.line,
                    "a server",
                )?;
            }
            ("KeyManager", "memory") => {
                no_settings(data, "KeyManager \"memory\"")?;
                one_key_manager(
                    &mut out.key_manager,
                    KeyManagerKind::Memory,
                    plugin.line,
                    "a server",
                )?;
            }
            ("NodeAttestor", "join_token") => no_settings(data, "NodeAttestor \"join_token\"")?,
            ("NodeAttestor", "x509pop") => {
                out.x509pop = Some(super::x509pop::server(data, plugin.line)?);
            }
            ("UpstreamAuthority", "disk") => out.upstream = Some(upstream_disk(data, plugin.line)?),
            (ty, name) => return Err(not_implemented(ty, name, plugin.line)),
        }
    }
    Ok(out)
}

/// Records the key manager of `daemon` ("a server", "an agent"); SPIRE takes exactly one.
fn one_key_manager(
    slot: &mut Option<(KeyManagerKind, usize)>,
    kind: KeyManagerKind,
    line: usize,
    daemon: &str,
) -> Result<(), ConfigError> {
    if let Some((first, first_line)) = slot {
        return Err(ConfigError::Conflict(format!(
            "KeyManager {:?} at line {line} and KeyManager {:?} at line {first_line}: {daemon} \
             has exactly one KeyManager; keep one of them",
            key_manager_name(kind),
            key_manager_name(*first)
        )));
    }
    *slot = Some((kind, line));
    Ok(())
}

fn key_manager_name(kind: KeyManagerKind) -> &'static str {
    match kind {
        KeyManagerKind::Disk => "disk",
        KeyManagerKind::Memory => "memory",
    }
}

/// SPIRE's `UpstreamAuthority "disk"`: the certificate and key files are required, the bundle
/// file is optional (then the certificate must be self-signed). The files are read when the
/// server starts (and by `validate`), not here.
fn upstream_disk(data: &[Entry], line: usize) -> Result<lanyard_server::UpstreamDisk, ConfigError> {
    let keys = [
        ("cert_file_path", Key::Mapped),
        ("key_file_path", Key::Mapped),
        ("bundle_file_path", Key::Mapped),
    ];
    let (mut cert, mut key, mut bundle) = (None, None, None);
    walk(
        data,
        &data_scope("UpstreamAuthority \"disk\"", &keys),
        |e| {
            let path = Some(e.path()?);
            match e.key.as_str() {
                "cert_file_path" => cert = path,
                "key_file_path" => key = path,
                _ => bundle = path,
            }
            Ok(())
        },
    )?;
    let missing = |name: &str| {
        ConfigError::Conflict(format!(
            "UpstreamAuthority \"disk\" at line {line} has no plugin_data.{name}: set it to the \
             PEM file of the upstream CA's {}",
            if name == "cert_file_path" {
                "certificate"
            } else {
                "private key"
            }
        ))
    };
    Ok(lanyard_server::UpstreamDisk {
        cert_path: cert.ok_or_else(|| missing("cert_file_path"))?,
        key_path: key.ok_or_else(|| missing("key_file_path"))?,
        bundle_path: bundle,
    })
}

/// Who has exactly one `KeyManager`, in the agent's error.
const AN_AGENT: &str = "an agent";

/// Reads an agent's `plugins {}`.
///
/// # Errors
///
/// As [`server`].
pub(crate) fn agent(block: &Entry) -> Result<AgentPlugins, ConfigError> {
    let mut out = AgentPlugins::default();
    for plugin in plugin_blocks(block, AGENT_CATALOG)? {
        let Some(data) = plugin.data else { continue };
        match (plugin.ty, plugin.name) {
            ("KeyManager", "disk") => {
                let scope = data_scope("KeyManager \"disk\"", &[("directory", Key::Mapped)]);
                walk(data, &scope, |e| {
                    out.key_directory = Some((e.path()?, e.line));
                    Ok(())
                })?;
                one_key_manager(
                    &mut out.key_manager,
                    KeyManagerKind::Disk,
                    plugin.line,
                    AN_AGENT,
                )?;
            }
            ("KeyManager", "memory") => {
                no_settings(data, "KeyManager \"memory\"")?;
                one_key_manager(
                    &mut out.key_manager,
                    KeyManagerKind::Memory,
                    plugin.line,
                    AN_AGENT,
                )?;
            }
            ("NodeAttestor", "join_token") => no_settings(data, "NodeAttestor \"join_token\"")?,
            ("NodeAttestor", "x509pop") => {
                out.x509pop = Some(super::x509pop::agent(data, plugin.line)?);
            }
            ("WorkloadAttestor", "unix") => {
                let scope = data_scope(
                    "WorkloadAttestor \"unix\"",
                    &[
                        ("discover_workload_path", Key::Mapped),
                        ("workload_size_limit", Key::Mapped),
                    ],
                );
                walk(data, &scope, |e| {
                    match e.key.as_str() {
                        "discover_workload_path" => {
                            out.unix_attestor.discover_workload_path = e.bool()?;
                        }
                        _ => out.unix_attestor.workload_size_limit = size_limit(e)?,
                    }
                    Ok(())
                })?;
            }
            (ty, name) => return Err(not_implemented(ty, name, plugin.line)),
        }
    }
    Ok(out)
}

/// One `Type "name" { .. }` block.
struct Plugin<'a> {
    ty: &'a str,
    name: &'a str,
    line: usize,
    /// `plugin_data`, empty when absent; `None` when `enabled = false`.
    data: Option<&'a [Entry]>,
}

fn plugin_blocks<'a>(
    block: &'a Entry,
    catalog: &'static [(&'static str, &'static [&'static str])],
) -> Result<Vec<Plugin<'a>>, ConfigError> {
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    let mut out = Vec::new();
    for entry in block.object()? {
        let Some((ty, names)) = catalog.iter().find(|(ty, _)| *ty == entry.key) else {
            return Err(ConfigError::UnknownKey {
                key: entry.key.clone(),
                line: entry.line,
                block: "plugins {}".into(),
                suggestion: super::closest(&entry.key, catalog.iter().map(|(ty, _)| *ty)),
            });
        };
        let (Some(name), 1, super::hcl::Value::Object(body)) =
            (entry.labels.first(), entry.labels.len(), &entry.value)
        else {
            return Err(ConfigError::Conflict(format!(
                "plugin {} at line {} must be written {} \"name\" {{ plugin_data {{ .. }} }}",
                entry.key, entry.line, entry.key
            )));
        };
        if !names.contains(&name.as_str()) {
            return Err(ConfigError::UnknownPlugin {
                plugin_type: entry.key.clone(),
                name: name.clone(),
                line: entry.line,
                known: format!("SPIRE's {} plugins are {}", entry.key, names.join(", ")),
            });
        }
        if let Some(first) = seen.insert((ty, name), entry.line) {
            return Err(ConfigError::DuplicateBlock {
                name: format!("{ty} {name:?}"),
                line: entry.line,
                first,
            });
        }

        let block_name = format!("{ty} {name:?}");
        let scope = Scope {
            block: &block_name,
            kind: "plugin",
            prefix: "",
            keys: PLUGIN_KEYS,
        };
        let mut data: &[Entry] = &[];
        let mut enabled = true;
        walk(body, &scope, |e| {
            match e.key.as_str() {
                "enabled" => enabled = e.bool()?,
                _ => data = e.object()?,
            }
            Ok(())
        })?;
        if !enabled && BUILT_IN.contains(&(ty, name.as_str())) {
            return Err(ConfigError::BuiltInDisabled {
                plugin: block_name,
                line: entry.line,
            });
        }
        out.push(Plugin {
            ty,
            name,
            line: entry.line,
            data: enabled.then_some(data),
        });
    }
    Ok(out)
}

pub(super) fn data_scope<'k>(block: &'k str, keys: &'k [(&'static str, Key)]) -> Scope<'k> {
    Scope {
        block,
        kind: block,
        prefix: "plugin_data.",
        keys,
    }
}

/// SPIRE's `workload_size_limit`: bytes, `0` for no limit, negative for never hashing.
fn size_limit(e: &Entry) -> Result<lanyard_agent::WorkloadSizeLimit, ConfigError> {
    match e.value {
        Value::Int(n) => Ok(lanyard_agent::WorkloadSizeLimit::from_spire(n)),
        _ => Err(e.invalid(
            "workload_size_limit is a whole number of bytes: 0 for no limit, negative to never hash",
        )),
    }
}

fn no_settings(data: &[Entry], block: &str) -> Result<(), ConfigError> {
    walk(data, &data_scope(block, &[]), |_| Ok(()))
}

fn not_implemented(ty: &str, name: &str, line: usize) -> ConfigError {
    let instead = match ty {
        "NodeAttestor" => ": use NodeAttestor \"join_token\" or \"x509pop\"",
        "UpstreamAuthority" => ": leave it out and the server's CA is self-signed",
        "WorkloadAttestor" => ": use WorkloadAttestor \"unix\"",
        "KeyManager" => ": use KeyManager \"disk\"",
        _ => "",
    };
    ConfigError::PluginNotImplemented {
        plugin_type: ty.to_owned(),
        name: name.to_owned(),
        line,
        instead: instead.to_owned(),
    }
}
