//! A SPIRE agent, unchanged, as a node of a Lanyard server: it attests with a join token from
//! `lanyard server token generate`, syncs an entry made with `lanyard server entry create`,
//! and serves that workload SVIDs that chain to Lanyard's bundle.

use std::time::Duration;

use crate::agent_cli::jwt_token;
use crate::checks::{assert_written_svid, validate_jwt};
use crate::common::*;
use crate::daemon::SpireAgent;
use crate::spire::{Spire, join_token_agent_id, poll};

#[test]
fn spire_agent_attests_to_lanyard_and_serves_its_entries() {
    let Some(spire) = Spire::find() else {
        return;
    };
    let l = lanyard();
    let server = l.start_server(Default::default());
    let socket = server.socket_str();
    let token = l.generate_token(&server, &[]);
    let node = join_token_agent_id(&token);
    let workload = format!("spiffe://{TD}/spire-agent/workload");
    register(&l, &server, &workload, &node);

    let roots = l.path("lanyard-bundle.pem");
    let pem = l.cli(&["server", "bundle", "show", "--socket", &socket]);
    assert!(pem.success, "{}", pem.stderr);
    std::fs::write(&roots, pem.stdout).unwrap();

    let mut agent = SpireAgent::start(&spire, &l.path("spire-agent"), &server.addr, &roots, &token);
    let dir = l.path("x509");
    let fetched = agent.fetch_x509(&spire, &dir, Duration::from_secs(60));
    assert!(fetched.contains(&workload), "{fetched}");
    assert_written_svid(&dir, &roots, &workload);

    // Lanyard knows the SPIRE agent as an attested join_token node.
    let agents = l.cli(&["server", "agent", "list", "--socket", &socket]);
    assert!(
        agents.success && agents.stdout.contains(&node),
        "{agents:?}"
    );

    // A JWT-SVID Lanyard signed for the SPIRE agent's workload validates against the Lanyard
    // server's JWT keys.
    let spiffe_bundle = l.cli(&[
        "server", "bundle", "show", "--socket", &socket, "--format", "spiffe",
    ]);
    assert!(spiffe_bundle.success, "{}", spiffe_bundle.stderr);
    let agent_socket = agent.socket.to_str().unwrap();
    let out = spire.agent_ok(&[
        "api",
        "fetch",
        "jwt",
        "-socketPath",
        agent_socket,
        "-audience",
        "lanyard",
    ]);
    let jwt = jwt_token(&out, &workload);
    let svid = validate_jwt(&jwt, &spiffe_bundle.stdout, "lanyard")
        .unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(svid.spiffe_id().to_string(), workload);

    // An entry created while the SPIRE agent runs reaches it through its sync.
    let later = format!("spiffe://{TD}/spire-agent/later");
    let gid = format!("unix:gid:{}", nix::unistd::getgid().as_raw());
    let out = l.cli(&[
        "server",
        "entry",
        "create",
        "--socket",
        &socket,
        "--spiffe-id",
        &later,
        "--parent-id",
        &node,
        "--selector",
        &gid,
    ]);
    assert!(out.success, "{}", out.stderr);
    let dir = l.path("x509-later");
    poll(
        Duration::from_secs(60),
        "the SPIRE agent to serve the later entry",
        || {
            let fetched = agent.fetch_x509(&spire, &dir, Duration::from_secs(10));
            if fetched.contains(&later) {
                Ok(())
            } else {
                Err(fetched)
            }
        },
    );
    agent.daemon.assert_running();
}
