//! Bad input and hostile conditions: every refusal names the problem, and the processes keep
//! serving.

use std::time::{Duration, SystemTime};

use lanyard_testkit::AgentOptions;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn missing_security_header_is_invalid_argument() {
    let l = lanyard();
    let (server, agent, token) = server_and_agent(&l, &[]);
    register(&l, &server, &format!("spiffe://{TD}/w"), &agent_id(&token));

    let channel = lanyard_workload::client::unix_channel(&agent.socket)
        .await
        .unwrap();
    let mut raw =
        lanyard_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient::new(channel);
    let err = raw
        .fetch_x509svid(lanyard_proto::workload::X509svidRequest {})
        .await
        .expect_err("a request without the header must fail");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("security header"),
        "{}",
        err.message()
    );

    // The agent keeps serving clients that do it right.
    fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn caller_without_identity_is_denied_and_others_keep_being_served() {
    let l = lanyard();
    let (server, agent, token) = server_and_agent(&l, &[]);
    // An entry for somebody else only.
    let out = l.cli(&[
        "server",
        "entry",
        "create",
        "--socket",
        &server.socket_str(),
        "--spiffe-id",
        "spiffe://example.org/someone-else",
        "--parent-id",
        &agent_id(&token),
        "--selector",
        &format!("unix:uid:{}", uid() + 1),
    ]);
    assert!(out.success, "{}", out.stderr);
    // Let the agent sync that entry, then ask.
    agent.wait_for_log("someone-else", Duration::from_secs(30));
    let client = spiffe::WorkloadApiClient::connect_to(agent.endpoint())
        .await
        .unwrap();
    let err = client
        .fetch_x509_context()
        .await
        .expect_err("no identity for this uid");
    // The spiffe crate maps PermissionDenied "no identity issued" to its own variant.
    let shown = format!("{err:?}");
    assert!(
        shown.contains("NoIdentityIssued") || shown.contains("PermissionDenied"),
        "{shown}"
    );

    register(&l, &server, &format!("spiffe://{TD}/me"), &agent_id(&token));
    let ctx = fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;
    assert_eq!(
        ctx.default_svid().unwrap().spiffe_id().to_string(),
        format!("spiffe://{TD}/me")
    );
}

#[test]
fn reused_and_expired_join_tokens_are_refused_with_the_reason() {
    let l = lanyard();
    let (server, _agent, token) = server_and_agent(&l, &[]);

    let reuse = l.start_agent(
        &server,
        AgentOptions {
            join_token: Some(token),
            data_dir: Some(l.path("second-agent")),
            socket: Some(l.path("second.sock")),
            wait_ready: false,
            ..Default::default()
        },
    );
    let logs = reuse.wait_exit(Duration::from_secs(30));
    assert!(logs.contains("already been used"), "{logs}");

    let short = l.generate_token(&server, &["--ttl", "1s"]);
    let issued = SystemTime::now();
    lanyard_testkit::wait_until(Duration::from_secs(5), "the token to expire", || {
        issued.elapsed().unwrap_or_default() > Duration::from_millis(2100)
    });
    let late = l.start_agent(
        &server,
        AgentOptions {
            join_token: Some(short),
            data_dir: Some(l.path("late-agent")),
            socket: Some(l.path("late.sock")),
            wait_ready: false,
            ..Default::default()
        },
    );
    let logs = late.wait_exit(Duration::from_secs(30));
    assert!(logs.contains("expired"), "{logs}");

    let unknown = l.start_agent(
        &server,
        AgentOptions {
            join_token: Some("not-a-token".into()),
            data_dir: Some(l.path("unknown-agent")),
            socket: Some(l.path("unknown.sock")),
            wait_ready: false,
            ..Default::default()
        },
    );
    let logs = unknown.wait_exit(Duration::from_secs(30));
    assert!(logs.contains("does not exist"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn workload_entry_can_be_parented_to_a_token_alias() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let alias = format!("spiffe://{TD}/nodes/edge-1");
    let token = l.generate_token(&server, &["--spiffe-id", &alias]);
    let agent = l.start_agent(
        &server,
        AgentOptions {
            join_token: Some(token),
            ..Default::default()
        },
    );
    register(&l, &server, &format!("spiffe://{TD}/edge/app"), &alias);
    let ctx = fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;
    let ids: Vec<String> = ctx
        .svids()
        .iter()
        .map(|s| s.spiffe_id().to_string())
        .collect();
    assert_eq!(ids, [format!("spiffe://{TD}/edge/app")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn restarted_agent_keeps_serving_without_a_new_token() {
    let l = lanyard();
    let (server, agent, token) = server_and_agent(&l, &[]);
    register(
        &l,
        &server,
        &format!("spiffe://{TD}/durable"),
        &agent_id(&token),
    );
    fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;

    let data_dir = agent.data_dir.clone();
    let socket = agent.socket.clone();
    agent.kill();
    let restarted = l.start_agent(
        &server,
        AgentOptions {
            join_token: None,
            data_dir: Some(data_dir),
            socket: Some(socket),
            ..Default::default()
        },
    );
    let ctx = fetch_with_spiffe_crate(&restarted, Duration::from_secs(30)).await;
    assert_eq!(
        ctx.default_svid().unwrap().spiffe_id().to_string(),
        format!("spiffe://{TD}/durable")
    );
}

#[test]
fn malformed_entry_input_names_the_value_and_rule() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let socket = server.socket_str();
    let create = |spiffe: &str, selector: &str, ttl: &str| {
        l.cli(&[
            "server",
            "entry",
            "create",
            "--socket",
            &socket,
            "--spiffe-id",
            spiffe,
            "--parent-id",
            "spiffe://example.org/node",
            "--selector",
            selector,
            "--x509-svid-ttl",
            ttl,
        ])
    };

    let upper = create("spiffe://Example.org/x", "unix:uid:1", "60");
    assert!(!upper.success);
    assert!(
        upper.stderr.contains("spiffe://Example.org/x"),
        "{}",
        upper.stderr
    );
    assert!(
        upper.stderr.to_lowercase().contains("upper"),
        "{}",
        upper.stderr
    );

    let dots = create("spiffe://example.org/a/../b", "unix:uid:1", "60");
    assert!(
        !dots.success && dots.stderr.contains("spiffe://example.org/a/../b"),
        "{}",
        dots.stderr
    );

    let selector = create("spiffe://example.org/x", "unix", "60");
    assert!(!selector.success);
    assert!(selector.stderr.contains("\"unix\""), "{}", selector.stderr);

    let ttl = create("spiffe://example.org/x", "unix:uid:1", "soon");
    assert!(!ttl.success);
    assert!(
        ttl.stderr.contains("\"soon\" is not a duration"),
        "{}",
        ttl.stderr
    );

    // The server is unharmed and stored nothing.
    let shown = l.cli(&["server", "entry", "show", "--socket", &socket]);
    assert!(
        shown.success && shown.stdout.contains("Found 0 entries"),
        "{}{}",
        shown.stdout,
        shown.stderr
    );
}

#[test]
fn reserved_ids_are_never_issued_to_workloads() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let socket = server.socket_str();
    for id in [
        "spiffe://example.org/spire/server",
        "spiffe://example.org/spire/agent/x",
    ] {
        let out = l.cli(&[
            "server",
            "entry",
            "create",
            "--socket",
            &socket,
            "--spiffe-id",
            id,
            "--parent-id",
            "spiffe://example.org/node",
            "--selector",
            "unix:uid:1",
        ]);
        assert!(!out.success, "{id} was accepted");
        assert!(
            out.stderr.contains("reserved /spire namespace"),
            "{}",
            out.stderr
        );
    }
    let out = l.cli(&[
        "server",
        "token",
        "generate",
        "--socket",
        &socket,
        "--spiffe-id",
        "spiffe://example.org/spire/server",
    ]);
    assert!(
        !out.success && out.stderr.contains("reserved /spire namespace"),
        "{}",
        out.stderr
    );
}

#[test]
fn server_refuses_to_replace_its_ca_when_the_datastore_is_gone() {
    let l = lanyard();
    let data_dir = l.path("server-data");
    let server = l.start_server(lanyard_testkit::ServerOptions {
        data_dir: Some(data_dir.clone()),
        ..Default::default()
    });
    let keys_before = std::fs::read_dir(data_dir.join("keys")).unwrap().count();
    server.kill();
    for f in [
        "datastore.sqlite3",
        "datastore.sqlite3-wal",
        "datastore.sqlite3-shm",
    ] {
        let _ = std::fs::remove_file(data_dir.join(f));
    }
    let out = l.cli(&[
        "server",
        "run",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--socket",
        l.path("second.sock").to_str().unwrap(),
        "--bind",
        "127.0.0.1:0",
    ]);
    assert!(!out.success);
    assert!(
        out.stderr.contains("refusing to create a new CA"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_dir(data_dir.join("keys")).unwrap().count(),
        keys_before
    );
}

#[test]
fn two_servers_cannot_share_a_data_directory() {
    let l = lanyard();
    let data_dir = l.path("shared-data");
    let _first = l.start_server(lanyard_testkit::ServerOptions {
        data_dir: Some(data_dir.clone()),
        ..Default::default()
    });
    let out = l.cli(&[
        "server",
        "run",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--socket",
        l.path("other.sock").to_str().unwrap(),
        "--bind",
        "127.0.0.1:0",
    ]);
    assert!(!out.success);
    assert!(
        out.stderr.contains("in use by another lanyard server"),
        "{}",
        out.stderr
    );
}
