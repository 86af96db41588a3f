//! A Lanyard agent as a node of a SPIRE server: it attests with a join token from
//! `spire-server token generate` and serves the entries made with `spire-server entry create`,
//! with SVIDs that chain to SPIRE's bundle.

use std::time::Duration;

use crate::agent_cli::jwt_token;
use crate::checks::{assert_written_svid, validate_jwt};
use crate::common::*;
use crate::daemon::{SpireServer, start_lanyard_agent};
use crate::spire::{Spire, join_token_agent_id, poll, text_field, token_of};

#[test]
fn lanyard_agent_attests_to_spire_and_serves_its_entries() {
    let Some(spire) = Spire::find() else {
        return;
    };
    let l = lanyard();
    let mut server = SpireServer::start(&spire, &l.path("spire-server"));
    let socket = server.socket_str().to_owned();
    let socket = socket.as_str();

    let token = token_of(&spire.server_ok(&["token", "generate", "-socketPath", socket]));
    let node = join_token_agent_id(&token);
    let workload = format!("spiffe://{TD}/from-spire/workload");
    let uid = format!("unix:uid:{}", uid());
    spire.server_ok(&[
        "entry",
        "create",
        "-socketPath",
        socket,
        "-spiffeID",
        &workload,
        "-parentID",
        &node,
        "-selector",
        &uid,
    ]);
    let roots = l.path("spire-bundle.pem");
    std::fs::write(
        &roots,
        spire.server_ok(&["bundle", "show", "-socketPath", socket]),
    )
    .unwrap();

    let (mut agent, agent_socket) = start_lanyard_agent(&l, &server, &roots, &token);
    let endpoint = format!("unix://{}", agent_socket.display());

    // SPIRE lists the Lanyard agent as a join_token node.
    let agents = spire.server_ok(&["agent", "list", "-socketPath", socket]);
    assert_eq!(
        text_field(&agents, "SPIFFE ID"),
        Some(node.as_str()),
        "{agents}"
    );

    // Lanyard's CLI and SPIRE's both get the workload's SVID, which chains to SPIRE's bundle.
    let dir = l.path("x509");
    let fetched = poll(
        Duration::from_secs(30),
        "the Lanyard agent to serve the SPIRE entry",
        || {
            agent.assert_running();
            let out = l.cli(&[
                "agent",
                "api",
                "fetch",
                "x509",
                "--socket",
                &endpoint,
                "--write",
                dir.to_str().unwrap(),
            ]);
            if out.success {
                Ok(out.stdout)
            } else {
                Err(format!(
                    "{}{}\nagent logs:\n{}",
                    out.stdout,
                    out.stderr,
                    agent.logs()
                ))
            }
        },
    );
    assert!(fetched.contains(&workload), "{fetched}");
    assert_written_svid(&dir, &roots, &workload);
    let spire_dir = l.path("spire-x509");
    spire.fetch_x509_until_served(&agent_socket, &spire_dir, Duration::from_secs(10));
    assert_written_svid(&spire_dir, &roots, &workload);

    // A JWT-SVID that SPIRE signed, served by the Lanyard agent, validates against SPIRE's
    // JWT keys.
    let spiffe_bundle =
        spire.server_ok(&["bundle", "show", "-socketPath", socket, "-format", "spiffe"]);
    let out = spire.agent_ok(&[
        "api",
        "fetch",
        "jwt",
        "-socketPath",
        agent_socket.to_str().unwrap(),
        "-audience",
        "spire",
    ]);
    let jwt = jwt_token(&out, &workload);
    let svid = validate_jwt(&jwt, &spiffe_bundle, "spire").unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(svid.spiffe_id().to_string(), workload);

    // An entry created while the agent runs reaches it through its sync.
    let later = format!("spiffe://{TD}/from-spire/later");
    let gid = format!("unix:gid:{}", nix::unistd::getgid().as_raw());
    spire.server_ok(&[
        "entry",
        "create",
        "-socketPath",
        socket,
        "-spiffeID",
        &later,
        "-parentID",
        &node,
        "-selector",
        &gid,
    ]);
    poll(
        Duration::from_secs(30),
        "the Lanyard agent to serve the later entry",
        || {
            let out = l.cli(&["agent", "api", "fetch", "x509", "--socket", &endpoint]);
            if out.success && out.stdout.contains(&later) {
                Ok(())
            } else {
                Err(format!("{}{}", out.stdout, out.stderr))
            }
        },
    );
    agent.assert_running();
    server.daemon.assert_running();
}
