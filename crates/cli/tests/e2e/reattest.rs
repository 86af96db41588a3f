//! What an agent does when the server stops accepting it, as SPIRE's agent does: an evicted
//! x509pop agent attests again by itself and keeps its Workload API open; an evicted join token
//! agent (its token is spent) or a banned agent stops serving, removes its SVID and exits with
//! the reason and the fix; restarted with a new join token it attests afresh.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use lanyard_testkit::{Agent, AgentOptions, Lanyard, ServerOptions, wait_until};

use crate::common::*;
use crate::node_ca::{NodeCa, server_trusting, server_trusting_with};
use crate::registration_common::admin_ok;

const PROMPT: Duration = Duration::from_secs(30);

/// A workload stream to `agent`, open and past its first answer.
async fn open_stream(
    agent: &Agent,
) -> impl futures::Stream<Item = Result<spiffe::X509Context, spiffe::WorkloadApiError>> + use<> {
    fetch_with_spiffe_crate(agent, PROMPT).await;
    let client = spiffe::WorkloadApiClient::connect_to(agent.endpoint())
        .await
        .unwrap();
    let mut stream = Box::pin(client.stream_x509_contexts().await.unwrap());
    let first = tokio::time::timeout(PROMPT, stream.next()).await;
    assert!(matches!(first, Ok(Some(Ok(_)))), "{first:?}");
    stream
}

#[tokio::test(flavor = "multi_thread")]
async fn evicted_join_token_agent_stops_serving_and_a_new_token_attests_again() {
    let l = lanyard();
    let (server, agent, token) = server_and_agent(&l, &[]);
    let id = agent_id(&token);
    register(&l, &server, &format!("spiffe://{TD}/evicted-workload"), &id);
    let mut stream = open_stream(&agent).await;

    admin_ok(&l, &server, &["agent", "evict", "--spiffe-id", &id]);

    // The open stream ends with PermissionDenied: the workload has no identity any more.
    let ended = tokio::time::timeout(PROMPT, stream.next()).await;
    let Ok(Some(Err(e))) = ended else {
        panic!("expected the stream to fail: {ended:?}\n{}", agent.logs());
    };
    // The spiffe crate reports PermissionDenied as NoIdentityIssued.
    assert!(
        matches!(e, spiffe::WorkloadApiError::NoIdentityIssued),
        "{e:?}"
    );

    let data_dir = agent.data_dir.clone();
    let socket = agent.socket.clone();
    let logs = agent.wait_exit(PROMPT);
    for part in [
        "it was evicted and a join token cannot be used twice",
        "start it again with a new join token",
        &id,
    ] {
        assert!(logs.contains(part), "{part:?} missing from {logs}");
    }
    assert!(
        !data_dir.join("agent_svid.der").exists(),
        "the refused SVID is removed"
    );

    // A restart with a new token attests afresh.
    let fresh = l.generate_token(&server, &[]);
    let again = l.start_agent(
        &server,
        AgentOptions {
            join_token: Some(fresh.clone()),
            data_dir: Some(data_dir),
            socket: Some(socket),
            ..Default::default()
        },
    );
    assert!(again.logs().contains(&agent_id(&fresh)), "{}", again.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_join_token_is_used_when_the_server_refuses_the_stored_svid() {
    let l = lanyard();
    let (server, agent, token) = server_and_agent(&l, &[]);
    let (data_dir, socket) = (agent.data_dir.clone(), agent.socket.clone());
    agent.terminate(PROMPT);
    admin_ok(
        &l,
        &server,
        &["agent", "evict", "--spiffe-id", &agent_id(&token)],
    );

    // The stored SVID is still valid, so the agent starts with it; the server refuses it at the
    // first sync, and the unspent token then attests.
    let fresh = l.generate_token(&server, &[]);
    let again = l.start_agent(
        &server,
        AgentOptions {
            join_token: Some(fresh.clone()),
            data_dir: Some(data_dir),
            socket: Some(socket),
            ..Default::default()
        },
    );
    again.wait_for_log("Agent attested again", PROMPT);
    let shown = admin_ok(
        &l,
        &server,
        &["agent", "show", "--spiffe-id", &agent_id(&fresh)],
    );
    assert!(shown.contains(&agent_id(&fresh)), "{shown}");
    assert!(!again.exited(), "{}", again.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn evicted_x509pop_agent_attests_again_while_its_workload_stream_stays_open() {
    let l = lanyard();
    let ca = NodeCa::new(l.dir(), "node-ca");
    let server = server_trusting(&l, &ca);
    let (conf, id) = ca.node_agent(l.dir(), "node-1");
    let agent = l.start_agent(&server, x509pop_agent(&l, &conf));
    let workload = format!("spiffe://{TD}/reattested-workload");
    register(&l, &server, &workload, &id);
    let mut stream = open_stream(&agent).await;

    admin_ok(&l, &server, &["agent", "evict", "--spiffe-id", &id]);
    agent.wait_for_log("Agent attested again", PROMPT);
    wait_until(PROMPT, "the server to know the agent again", || {
        l.cli(&[
            "server",
            "agent",
            "show",
            "--socket",
            &server.socket_str(),
            "--spiffe-id",
            &id,
        ])
        .success
    });

    // The stream was not ended, and workloads keep getting their SVIDs.
    let quiet = tokio::time::timeout(Duration::from_secs(2), stream.next()).await;
    assert!(
        matches!(quiet, Err(_) | Ok(Some(Ok(_)))),
        "the stream must stay open: {quiet:?}"
    );
    let ctx = fetch_with_spiffe_crate(&agent, PROMPT).await;
    assert_eq!(
        ctx.default_svid().unwrap().spiffe_id().to_string(),
        workload
    );
    assert!(!agent.exited(), "{}", agent.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn banned_x509pop_agent_stops_and_cannot_attest_again() {
    let l = lanyard();
    let ca = NodeCa::new(l.dir(), "node-ca");
    let server = server_trusting(&l, &ca);
    let (conf, id) = ca.node_agent(l.dir(), "node-1");
    let agent = l.start_agent(&server, x509pop_agent(&l, &conf));
    register(&l, &server, &format!("spiffe://{TD}/banned-workload"), &id);
    let mut stream = open_stream(&agent).await;

    admin_ok(&l, &server, &["agent", "ban", "--spiffe-id", &id]);
    let ended = tokio::time::timeout(PROMPT, stream.next()).await;
    let Ok(Some(Err(e))) = ended else {
        panic!("expected the stream to fail: {ended:?}\n{}", agent.logs());
    };
    // The spiffe crate reports PermissionDenied as NoIdentityIssued.
    assert!(
        matches!(e, spiffe::WorkloadApiError::NoIdentityIssued),
        "{e:?}"
    );
    let logs = agent.wait_exit(PROMPT);
    for part in ["it is banned", "lanyard server agent evict", &id] {
        assert!(logs.contains(part), "{part:?} missing from {logs}");
    }

    // Its certificate does not let it back in while the ban stands.
    let again = l.start_agent(
        &server,
        AgentOptions {
            wait_ready: false,
            ..x509pop_agent(&l, &conf)
        },
    );
    let logs = again.wait_exit(PROMPT);
    assert!(
        logs.contains("the server refused x509pop attestation") && logs.contains("is banned"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn x509pop_agent_rebootstraps_when_its_bundle_no_longer_authenticates_the_server() {
    let l = lanyard();
    let ca = NodeCa::new(l.dir(), "node-ca");
    let old = server_trusting(&l, &ca);
    let (node_conf, id) = ca.node_agent(l.dir(), "node-1");
    let conf = l.path("rebootstrap.conf");
    let plugins = std::fs::read_to_string(&node_conf).unwrap();
    std::fs::write(
        &conf,
        format!(
            "agent {{\n  rebootstrap_mode = \"always\"\n  rebootstrap_delay = \"1s\"\n}}\n{plugins}"
        ),
    )
    .unwrap();
    let workload = format!("spiffe://{TD}/rebootstrapped-workload");
    register(&l, &old, &workload, &id);
    let agent = l.start_agent(&old, x509pop_agent(&l, &conf));
    fetch_with_spiffe_crate(&agent, PROMPT).await;
    agent.terminate(PROMPT);

    // The server is reinstalled at the same address with a new CA: the agent's stored bundle
    // no longer authenticates it, and only the bootstrap bundle (rewritten by start_agent from
    // the new server) does.
    let addr = old.addr.clone();
    old.terminate(PROMPT);
    let new = server_trusting_with(
        &l,
        &ca,
        ServerOptions {
            data_dir: Some(l.path("new-server-data")),
            socket: Some(l.path("new-server.sock")),
            bind: Some(addr),
            ..Default::default()
        },
    );
    register(&l, &new, &workload, &id);
    let agent = l.start_agent(&new, x509pop_agent(&l, &conf));
    agent.wait_for_log("rebootstrapping from the bootstrap bundle", PROMPT);
    agent.wait_for_log("Agent attested again", PROMPT);

    let bundle = admin_ok(&l, &new, &["bundle", "show"]);
    wait_until(PROMPT, "an SVID from the new server", || {
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
    let ctx = fetch_with_spiffe_crate(&agent, PROMPT).await;
    let td = spiffe::TrustDomain::new(TD).unwrap();
    let served = ctx.bundle_set().get(&td).unwrap();
    let first_authority = pem_body(&bundle);
    assert!(
        served
            .authorities()
            .iter()
            .any(|a| a.as_bytes() == first_authority.as_slice()),
        "the agent serves the new server's bundle"
    );
}

/// The DER of the first certificate in `pem`.
fn pem_body(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn x509pop_agent(l: &Lanyard, conf: &Path) -> AgentOptions {
    AgentOptions {
        data_dir: Some(l.path("x509pop-agent-data")),
        socket: Some(l.path("x509pop-agent.sock")),
        extra_args: vec!["--config".into(), conf.display().to_string()],
        ..Default::default()
    }
}
