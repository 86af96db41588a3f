//! Default socket paths: Lanyard's own under the name `lanyard`, SPIRE's when the binary runs
//! as `spire-server` or `spire-agent`.
//!
//! A host that swaps SPIRE for Lanyard by linking the SPIRE names keeps its systemd units,
//! probes and scripts, and many of those never pass `-socketPath`: they rely on SPIRE's
//! defaults. So a process started under a SPIRE name serves and dials SPIRE's paths when
//! nothing else names one, for the daemons (`run`) and the client commands alike. Under its
//! own name Lanyard keeps its own paths, so that it never takes over a SPIRE installation's
//! sockets by accident.

use std::sync::OnceLock;

use super::dispatch;

/// Where `spire-server` serves, and its admin commands dial, the admin API by default
/// (`spire-server healthcheck -h`).
pub(crate) const SPIRE_SERVER_SOCKET: &str = "/tmp/spire-server/private/api.sock";

/// Where `spire-agent` serves, and its `api` and `healthcheck` commands dial, the Workload API
/// by default (`spire-agent healthcheck -h`).
pub(crate) const SPIRE_AGENT_SOCKET: &str = "/tmp/spire-agent/public/api.sock";

/// Whether this process was started as `spire-server` or `spire-agent`.
///
/// Read once from the process's own argv[0], the name [`super::rewrite`] dispatches on, so it
/// holds before clap builds any default. It is not set by `rewrite` itself: unit tests call
/// `rewrite` with SPIRE names in the same process as tests that expect Lanyard's defaults.
pub(crate) fn invoked_as_spire() -> bool {
    static INVOKED_AS_SPIRE: OnceLock<bool> = OnceLock::new();
    *INVOKED_AS_SPIRE.get_or_init(|| {
        std::env::args_os()
            .next()
            .is_some_and(|argv0| dispatch(&argv0).is_some())
    })
}

/// The server's admin socket when neither a flag nor the config file names one.
pub(crate) fn server_socket() -> &'static str {
    server_socket_for(invoked_as_spire())
}

/// The agent's Workload API socket when neither a flag, the config file nor (for the client
/// commands) `SPIFFE_ENDPOINT_SOCKET` names one.
pub(crate) fn agent_socket() -> &'static str {
    agent_socket_for(invoked_as_spire())
}

/// [`server_socket`] for a process started under a SPIRE name (`spire`) or not.
fn server_socket_for(spire: bool) -> &'static str {
    if spire {
        SPIRE_SERVER_SOCKET
    } else {
        lanyard_server::DEFAULT_SOCKET
    }
}

/// [`agent_socket`] for a process started under a SPIRE name (`spire`) or not.
fn agent_socket_for(spire: bool) -> &'static str {
    if spire {
        SPIRE_AGENT_SOCKET
    } else {
        crate::config::agent::DEFAULT_SOCKET
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spire_names_default_to_spires_sockets() {
        assert_eq!(
            server_socket_for(true),
            "/tmp/spire-server/private/api.sock"
        );
        assert_eq!(agent_socket_for(true), "/tmp/spire-agent/public/api.sock");
    }

    #[test]
    fn lanyards_own_name_keeps_lanyards_sockets() {
        assert_eq!(
            server_socket_for(false),
            "/tmp/lanyard-server/private/api.sock"
        );
        assert_eq!(
            agent_socket_for(false),
            "/tmp/lanyard-agent/public/api.sock"
        );
    }

    /// The test binary is not named after SPIRE, so the process-wide answer is Lanyard's: the
    /// other unit tests of this binary see Lanyard's defaults.
    #[test]
    fn a_process_not_named_spire_uses_lanyards_defaults() {
        assert!(!invoked_as_spire());
        assert_eq!(server_socket(), lanyard_server::DEFAULT_SOCKET);
        assert_eq!(agent_socket(), crate::config::agent::DEFAULT_SOCKET);
    }
}
