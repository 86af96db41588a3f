//! An agent attached while the X.509 authority is prepared, activated, tainted and revoked
//! through the CLI: workload SVIDs move to the new authority within seconds, the agent renews
//! its own SVID, and after the revocation and a server restart it still syncs and serves.

use std::time::Duration;

use lanyard_testkit::{Agent, Lanyard, ServerOptions, wait_until};

use crate::common::*;

/// The authority key identifiers (lowercase hex) of the leaves `agent api fetch x509 --write`
/// writes, or `None` when the fetch fails.
fn fetched_issuers(l: &Lanyard, agent: &Agent) -> Option<Vec<String>> {
    let dir = l.path("fetched");
    let _ = std::fs::remove_dir_all(&dir);
    let out = fetch_x509(l, agent, &dir);
    if !out.success {
        return None;
    }
    let mut issuers = Vec::new();
    for n in 0.. {
        let Ok(pem) = std::fs::read(dir.join(format!("svid.{n}.pem"))) else {
            break;
        };
        let chain = lanyard_spiffe::x509::parse_pem_certs(&pem).unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
        let aki = leaf
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(k) => {
                    k.key_identifier.as_ref().map(|k| hex(k.0))
                }
                _ => None,
            })
            .expect("the SVID has an authority key identifier");
        issuers.push(aki);
    }
    Some(issuers)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_moves_off_a_tainted_authority_and_survives_its_revocation() {
    let l = lanyard();
    let (server, agent, token) = server_and_agent(&l, &[]);
    register(
        &l,
        &server,
        &format!("spiffe://{TD}/tainted"),
        &agent_id(&token),
    );
    fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;
    let first = authority_id(&localauthority(&l, &server, &["x509", "show"])["active"]);
    assert_eq!(fetched_issuers(&l, &agent), Some(vec![first.clone()]));

    let prepared = authority_id(&localauthority(&l, &server, &["x509", "prepare"]));
    localauthority(
        &l,
        &server,
        &["x509", "activate", "--authority-id", &prepared],
    );
    localauthority(&l, &server, &["x509", "taint", "--authority-id", &first]);

    wait_until(
        Duration::from_secs(10),
        "a workload SVID from the new authority",
        || fetched_issuers(&l, &agent) == Some(vec![prepared.clone()]),
    );
    agent.wait_for_log(
        "The agent SVID was issued by a tainted authority",
        Duration::from_secs(10),
    );
    agent.wait_for_log("Agent SVID renewed", Duration::from_secs(10));
    let logs = agent.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("Trust bundle updated") && l.contains(r#""tainted":1"#)),
        "the taint alone is a bundle update:\n{logs}"
    );

    localauthority(&l, &server, &["x509", "revoke", "--authority-id", &first]);
    let (data_dir, socket, addr) = (
        server.data_dir.clone(),
        server.socket.clone(),
        server.addr.clone(),
    );
    server.terminate(Duration::from_secs(10));
    let server = l.start_server(ServerOptions {
        data_dir: Some(data_dir),
        socket: Some(socket),
        bind: Some(addr),
        ..Default::default()
    });
    assert_eq!(
        authority_id(&localauthority(&l, &server, &["x509", "show"])["active"]),
        prepared
    );

    // A new entry reaches the workload only through a sync over a new connection.
    register(
        &l,
        &server,
        &format!("spiffe://{TD}/after-restart"),
        &agent_id(&token),
    );
    wait_until(
        Duration::from_secs(15),
        "both SVIDs, from the new authority, after the server restart",
        || fetched_issuers(&l, &agent) == Some(vec![prepared.clone(), prepared.clone()]),
    );
    let health = l.cli(&["agent", "healthcheck", "--socket", &agent.endpoint()]);
    assert!(
        health.success,
        "{}\n{}\nagent:\n{}",
        health.stdout,
        health.stderr,
        agent.logs()
    );
    assert!(!agent.exited(), "agent died:\n{}", agent.logs());
}
