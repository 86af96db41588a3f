//! x509pop node attestation between real processes, configured as in SPIRE: the server trusts
//! an operator's CA (`ca_bundle_path`), the agent holds a certificate of that CA and its key
//! (`certificate_path`, `private_key_path`) and attests without a join token.

use std::path::Path;
use std::time::Duration;

use lanyard_testkit::{AgentOptions, Lanyard, wait_until};

use crate::common::*;
use crate::node_ca::{NodeCa, server_trusting};

fn agent_options(conf: &Path, name: &str, l: &Lanyard, wait_ready: bool) -> AgentOptions {
    AgentOptions {
        data_dir: Some(l.path(&format!("{name}-data"))),
        socket: Some(l.path(&format!("{name}.sock"))),
        wait_ready,
        extra_args: vec!["--config".into(), conf.display().to_string()],
        ..Default::default()
    }
}

#[test]
fn agent_attests_with_its_certificate_and_serves_workloads() {
    let l = lanyard();
    let ca = NodeCa::new(l.dir(), "node-ca");
    let server = server_trusting(&l, &ca);
    let (conf, fingerprint) = ca.node(l.dir(), "node-1");
    let agent = l.start_agent(&server, agent_options(&conf, "agent", &l, true));
    let agent_id = format!("spiffe://{TD}/spire/agent/x509pop/{fingerprint}");
    assert!(agent.logs().contains(&agent_id), "{}", agent.logs());

    // The node selectors are on the attested agent, as `agent show` prints them.
    let out = l.cli(&[
        "server",
        "agent",
        "show",
        "--socket",
        &server.socket_str(),
        "--spiffe-id",
        &agent_id,
        "--output",
        "json",
    ]);
    assert!(out.success, "{}", out.stderr);
    let shown: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(shown["attestation_type"], "x509pop", "{shown}");
    let selectors: Vec<String> = shown["selectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}:{}",
                s["type"].as_str().unwrap(),
                s["value"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        selectors.contains(&"x509pop:subject:cn:node-1".to_owned()),
        "{selectors:?}"
    );
    assert!(
        selectors
            .iter()
            .any(|s| s.starts_with("x509pop:ca:fingerprint:")),
        "{selectors:?}"
    );

    // A workload registered under the agent gets its identity.
    let workload = format!("spiffe://{TD}/x509pop-workload");
    register(&l, &server, &workload, &agent_id);
    wait_until(Duration::from_secs(30), "the workload SVID", || {
        let out = l.cli(&[
            "agent",
            "api",
            "fetch",
            "x509",
            "--socket",
            &agent.endpoint(),
        ]);
        out.success && out.stdout.contains(&workload)
    });

    // The same node attests again with a fresh data directory: x509pop re-attests.
    let again = l.start_agent(&server, agent_options(&conf, "again", &l, true));
    assert!(again.logs().contains(&agent_id), "{}", again.logs());
    assert!(
        server.logs().contains("Agent re-attested"),
        "{}",
        server.logs()
    );
}

#[test]
fn agent_with_a_certificate_of_another_ca_is_refused_with_the_reason() {
    let l = lanyard();
    let trusted = NodeCa::new(l.dir(), "node-ca");
    let stranger = NodeCa::new(l.dir(), "stranger-ca");
    let server = server_trusting(&l, &trusted);
    let (conf, _) = stranger.node(l.dir(), "intruder");
    let agent = l.start_agent(&server, agent_options(&conf, "intruder", &l, false));
    let logs = agent.wait_exit(Duration::from_secs(60));
    for part in [
        "the server refused x509pop attestation",
        "does not chain to the x509pop CA bundle",
        "trusts the CA of certificate_path",
    ] {
        assert!(logs.contains(part), "{part:?} missing from {logs}");
    }
    // Where the server keeps its CA files is its own business, not an unauthenticated peer's.
    let ca_path = trusted.pem_path.to_str().unwrap();
    assert!(
        !logs.contains(ca_path),
        "{ca_path} told to the agent: {logs}"
    );
}
