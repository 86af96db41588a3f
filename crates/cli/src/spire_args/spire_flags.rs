//! SPIRE v1.13.3's commands and their flags, as `spire-server <command> -h` and
//! `spire-agent <command> -h` list them, keyed by the Lanyard command path that stands in for
//! each (`server ...` for spire-server, `agent ...` for spire-agent).
//!
//! Translation never reads this table: Lanyard's own flags come from clap's command tree. The
//! table is only consulted once a flag has matched nothing there, to tell a SPIRE flag Lanyard
//! does not implement (named as such in the error) from a typo, and a SPIRE command Lanyard
//! lacks from an unknown word.

/// Flags shared by every admin command of `spire-server`.
const ADMIN: &[&str] = &["output", "socketPath"];

/// Flags of `spire-server run` and `validate`.
const SERVER_RUN: &[&str] = &[
    "bindAddress",
    "config",
    "dataDir",
    "expandEnv",
    "logFile",
    "logFormat",
    "logLevel",
    "logSourceLocation",
    "serverPort",
    "socketPath",
    "trustDomain",
];

/// Flags of `spire-agent run` and `validate`.
const AGENT_RUN: &[&str] = &[
    "allowUnauthenticatedVerifiers",
    "config",
    "dataDir",
    "expandEnv",
    "insecureBootstrap",
    "joinToken",
    "joinTokenFile",
    "logFile",
    "logFormat",
    "logLevel",
    "logSourceLocation",
    "rebootstrapDelay",
    "rebootstrapMode",
    "retryBootstrap",
    "serverAddress",
    "serverPort",
    "socketPath",
    "trustBundle",
    "trustBundleFormat",
    "trustBundleUrl",
    "trustDomain",
];

/// Flags of `entry create` and `entry update`, besides [`ADMIN`].
const ENTRY_WRITE: &[&str] = &[
    "admin",
    "data",
    "dns",
    "downstream",
    "entryExpiry",
    "entryID",
    "federatesWith",
    "hint",
    "jwtSVIDTTL",
    "parentID",
    "selector",
    "spiffeID",
    "storeSVID",
    "x509SVIDTTL",
];

/// Filters of `entry show` and `entry count`, besides [`ADMIN`].
const ENTRY_FILTERS: &[&str] = &[
    "downstream",
    "federatesWith",
    "hint",
    "matchFederatesWithOn",
    "matchSelectorsOn",
    "parentID",
    "selector",
    "spiffeID",
];

/// Filters of `agent list` and `agent count`, besides [`ADMIN`].
const AGENT_FILTERS: &[&str] = &[
    "attestationType",
    "banned",
    "canReattest",
    "expiresBefore",
    "matchSelectorsOn",
    "selector",
];

/// Flags of `federation create` and `federation update`, besides [`ADMIN`].
const FEDERATION_WRITE: &[&str] = &[
    "bundleEndpointProfile",
    "bundleEndpointURL",
    "data",
    "endpointSpiffeID",
    "trustDomain",
    "trustDomainBundleFormat",
    "trustDomainBundlePath",
];

/// Flags of the `spire-agent api` commands other than `watch`, besides their own.
const WORKLOAD: &[&str] = &["output", "socketPath", "timeout"];

/// One SPIRE command: the Lanyard path standing in for it, and its flags in groups.
pub(super) struct SpireCommand {
    pub(super) path: &'static str,
    groups: &'static [&'static [&'static str]],
}

impl SpireCommand {
    /// Every flag of the command.
    pub(super) fn flags(&self) -> impl Iterator<Item = &'static str> {
        self.groups.iter().flat_map(|group| group.iter().copied())
    }
}

const fn cmd(path: &'static str, groups: &'static [&'static [&'static str]]) -> SpireCommand {
    SpireCommand { path, groups }
}

/// Every command of SPIRE v1.13.3's two binaries.
pub(super) const COMMANDS: &[SpireCommand] = &[
    cmd("server run", &[SERVER_RUN]),
    cmd("server validate", &[SERVER_RUN]),
    cmd(
        "server healthcheck",
        &[&["shallow", "socketPath", "verbose"]],
    ),
    cmd("server entry create", &[ADMIN, ENTRY_WRITE]),
    cmd("server entry update", &[ADMIN, ENTRY_WRITE]),
    cmd("server entry show", &[ADMIN, ENTRY_FILTERS, &["entryID"]]),
    cmd("server entry count", &[ADMIN, ENTRY_FILTERS]),
    cmd("server entry delete", &[ADMIN, &["entryID", "file"]]),
    cmd("server agent list", &[ADMIN, AGENT_FILTERS]),
    cmd("server agent count", &[ADMIN, AGENT_FILTERS]),
    cmd("server agent show", &[ADMIN, &["spiffeID"]]),
    cmd("server agent evict", &[ADMIN, &["spiffeID"]]),
    cmd("server agent ban", &[ADMIN, &["spiffeID"]]),
    cmd("server agent purge", &[ADMIN, &["dryRun", "expiredFor"]]),
    cmd("server bundle show", &[ADMIN, &["format"]]),
    cmd("server bundle list", &[ADMIN, &["format", "id"]]),
    cmd("server bundle set", &[ADMIN, &["format", "id", "path"]]),
    cmd("server bundle delete", &[ADMIN, &["id", "mode"]]),
    cmd("server bundle count", &[ADMIN, &[]]),
    cmd("server federation create", &[ADMIN, FEDERATION_WRITE]),
    cmd("server federation update", &[ADMIN, FEDERATION_WRITE]),
    cmd("server federation show", &[ADMIN, &["trustDomain"]]),
    cmd("server federation list", &[ADMIN, &[]]),
    cmd("server federation delete", &[ADMIN, &["id"]]),
    cmd("server federation refresh", &[ADMIN, &["id"]]),
    cmd("server token generate", &[ADMIN, &["spiffeID", "ttl"]]),
    cmd(
        "server jwt mint",
        &[ADMIN, &["audience", "spiffeID", "ttl", "write"]],
    ),
    cmd(
        "server x509 mint",
        &[ADMIN, &["dns", "spiffeID", "ttl", "write"]],
    ),
    cmd("server localauthority x509 show", &[ADMIN, &[]]),
    cmd("server localauthority x509 prepare", &[ADMIN, &[]]),
    cmd(
        "server localauthority x509 activate",
        &[ADMIN, &["authorityID"]],
    ),
    cmd(
        "server localauthority x509 taint",
        &[ADMIN, &["authorityID"]],
    ),
    cmd(
        "server localauthority x509 revoke",
        &[ADMIN, &["authorityID"]],
    ),
    cmd("server localauthority jwt show", &[ADMIN, &[]]),
    cmd("server localauthority jwt prepare", &[ADMIN, &[]]),
    cmd(
        "server localauthority jwt activate",
        &[ADMIN, &["authorityID"]],
    ),
    cmd(
        "server localauthority jwt taint",
        &[ADMIN, &["authorityID"]],
    ),
    cmd(
        "server localauthority jwt revoke",
        &[ADMIN, &["authorityID"]],
    ),
    cmd(
        "server upstreamauthority revoke",
        &[ADMIN, &["subjectKeyID"]],
    ),
    cmd(
        "server upstreamauthority taint",
        &[ADMIN, &["subjectKeyID"]],
    ),
    cmd("server logger get", &[ADMIN, &[]]),
    cmd("server logger set", &[ADMIN, &["level"]]),
    cmd("server logger reset", &[ADMIN, &[]]),
    cmd("agent run", &[AGENT_RUN]),
    cmd("agent validate", &[AGENT_RUN]),
    cmd(
        "agent healthcheck",
        &[&["shallow", "socketPath", "verbose"]],
    ),
    cmd("agent api fetch x509", &[WORKLOAD, &["silent", "write"]]),
    cmd(
        "agent api fetch jwt",
        &[WORKLOAD, &["audience", "format", "spiffeID"]],
    ),
    cmd("agent api validate jwt", &[WORKLOAD, &["audience", "svid"]]),
    cmd("agent api watch", &[&["socketPath"]]),
];

/// The SPIRE command at `path`, if SPIRE has one.
pub(super) fn command(path: &str) -> Option<&'static SpireCommand> {
    COMMANDS.iter().find(|c| c.path == path)
}

/// Whether some SPIRE command's path starts with `prefix` (a whole word at a time).
pub(super) fn has_command_under(prefix: &str) -> bool {
    COMMANDS.iter().any(|c| {
        c.path == prefix
            || c.path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(' '))
    })
}

/// `spire-server` or `spire-agent` and the rest of the path: how SPIRE users write the command.
pub(super) fn spire_spelling(path: &str) -> String {
    match path.split_once(' ') {
        Some(("server", rest)) => format!("spire-server {rest}"),
        Some(("agent", rest)) => format!("spire-agent {rest}"),
        _ => match path {
            "server" => "spire-server".to_owned(),
            "agent" => "spire-agent".to_owned(),
            other => format!("lanyard {other}"),
        },
    }
}
