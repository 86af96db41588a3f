//! Operating real processes: clean shutdown on SIGTERM, health and metrics endpoints
//! configured through `health_checks {}` and `telemetry {}`, the healthcheck commands and the
//! audit log.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use futures::StreamExt;
use lanyard_testkit::{AgentOptions, ServerOptions};
use lanyard_workload::{EndpointAddr, WorkloadClient};

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_agent_and_server_cleanly_and_the_datastore_reopens() {
    let l = lanyard();
    let (server, agent, token) = server_and_agent(&l, &[]);
    let workload = format!("spiffe://{TD}/shutdown/check");
    register(&l, &server, &workload, &agent_id(&token));
    fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;

    // An open X.509 stream, as a long-running workload holds it.
    let mut client = WorkloadClient::connect(&EndpointAddr::Unix(agent.socket.clone()))
        .await
        .unwrap();
    let mut stream = client.watch_x509_context().await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.svids[0].spiffe_id().to_string(), workload);

    let agent_socket = agent.socket.clone();
    let (code, logs) = agent.terminate(Duration::from_secs(15));
    assert_eq!(code, Some(0), "agent exit code; logs:\n{logs}");
    assert!(!agent_socket.exists(), "the agent removes its socket");
    // The stream ends (with an error status or a clean end), it does not hang.
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the stream ends when the agent stops");
    assert!(
        !matches!(ended, Some(Ok(_))),
        "no more identities after shutdown: {ended:?}"
    );

    let server_socket = server.socket.clone();
    let data_dir = server.data_dir.clone();
    let (code, logs) = server.terminate(Duration::from_secs(15));
    assert_eq!(code, Some(0), "server exit code; logs:\n{logs}");
    assert!(!server_socket.exists(), "the server removes its socket");

    // The same data directory opens again and still holds the entry.
    let again = l.start_server(ServerOptions {
        data_dir: Some(data_dir),
        socket: Some(server_socket.clone()),
        ..Default::default()
    });
    let shown = l.cli(&[
        "server",
        "entry",
        "show",
        "--socket",
        &again.socket_str(),
        "--spiffe-id",
        &workload,
    ]);
    assert!(
        shown.success && shown.stdout.contains(&workload),
        "{}\n{}",
        shown.stdout,
        shown.stderr
    );
    let (code, _) = again.terminate(Duration::from_secs(15));
    assert_eq!(code, Some(0));
}

#[test]
fn a_second_server_on_a_socket_in_use_is_refused_with_a_clear_error() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let out = l.cli(&[
        "server",
        "run",
        "--data-dir",
        l.path("other-data").to_str().unwrap(),
        "--socket",
        &server.socket_str(),
        "--bind",
        "127.0.0.1:0",
    ]);
    assert!(!out.success);
    assert!(
        out.stderr.contains(&format!(
            "socket {} is in use by another process",
            server.socket_str()
        )),
        "{}",
        out.stderr
    );
    // The refused server left the live socket alone.
    let health = l.cli(&["server", "healthcheck", "--socket", &server.socket_str()]);
    assert!(health.success, "{}", health.stderr);
}

/// Whether `curl` is on the PATH; CI (LANYARD_CI=1) requires it.
fn curl_available() -> bool {
    let found = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("LANYARD_CI").is_err(),
            "LANYARD_CI is set but curl is missing"
        );
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: curl not found");
    }
    found
}

/// `curl -s -w '\n%{http_code}' http://addr/path`: status and body.
fn curl(addr: &str, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim().parse().unwrap_or(0),
        body.trim_end().to_string(),
    )
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of the sample `name` in OpenMetrics text, 0 when absent.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn write_ops_config(path: &Path, server_block: &str, metrics_port: u16, health_port: u16) {
    std::fs::write(
        path,
        format!(
            r#"{server_block}
telemetry {{
    Prometheus {{
        host = "127.0.0.1"
        port = {metrics_port}
    }}
}}
health_checks {{
    listener_enabled = true
    bind_address = "127.0.0.1"
    bind_port = "{health_port}"
}}
"#
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn health_metrics_healthcheck_and_audit_log_through_the_config_file() {
    if !curl_available() {
        return;
    }
    let l = lanyard();
    let (server_metrics, server_health) = (free_port(), free_port());
    let server_conf = l.path("server.conf");
    write_ops_config(
        &server_conf,
        "server {\n    audit_log_enabled = true\n}",
        server_metrics,
        server_health,
    );
    let server = l.start_server(ServerOptions {
        extra_args: vec!["--config".into(), server_conf.display().to_string()],
        ..Default::default()
    });
    let server_health = format!("127.0.0.1:{server_health}");
    let server_metrics = format!("127.0.0.1:{server_metrics}");

    assert_eq!(
        curl(&server_health, "/live"),
        (200, "{\"live\":true}".into())
    );
    assert_eq!(
        curl(&server_health, "/ready"),
        (200, "{\"ready\":true}".into())
    );
    assert_eq!(curl(&server_health, "/nope").0, 404);
    let (code, before) = curl(&server_metrics, "/metrics");
    assert_eq!(code, 200);
    assert!(before.ends_with("# EOF"), "{before}");
    let workload_svids = "lanyard_svids_signed_total{kind=\"x509_workload\"}";
    assert_eq!(sample(&before, workload_svids), 0.0);

    let (agent_metrics, agent_health) = (free_port(), free_port());
    let agent_conf = l.path("agent.conf");
    write_ops_config(&agent_conf, "", agent_metrics, agent_health);
    let token = l.generate_token(&server, &[]);
    let agent = l.start_agent(
        &server,
        AgentOptions {
            join_token: Some(token.clone()),
            extra_args: vec!["--config".into(), agent_conf.display().to_string()],
            ..Default::default()
        },
    );
    let workload = format!("spiffe://{TD}/metrics/check");
    register(&l, &server, &workload, &agent_id(&token));
    fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;

    // Signing moved the server's counter, and the agent's cache holds the SVID.
    let (_, after) = curl(&server_metrics, "/metrics");
    assert!(sample(&after, workload_svids) >= 1.0, "{after}");
    assert_eq!(
        sample(&after, "lanyard_svids_signed_total{kind=\"x509_agent\"}"),
        1.0,
        "{after}"
    );
    assert!(
        after.contains("lanyard_rpc_requests_total{service=\"spire.api.server.svid.v1.SVID\",method=\"BatchNewX509SVID\",code=\"OK\"}"),
        "{after}"
    );
    let agent_health = format!("127.0.0.1:{agent_health}");
    assert_eq!(curl(&agent_health, "/live").0, 200);
    assert_eq!(
        curl(&agent_health, "/ready"),
        (200, "{\"ready\":true}".into())
    );
    let (_, agent_text) = curl(&format!("127.0.0.1:{agent_metrics}"), "/metrics");
    assert_eq!(
        sample(&agent_text, "lanyard_agent_cache_svids"),
        1.0,
        "{agent_text}"
    );
    assert!(
        agent_text.contains("method=\"FetchX509SVID\""),
        "Workload API calls are counted:\n{agent_text}"
    );

    // The healthcheck commands.
    let ok = l.cli(&["server", "healthcheck", "--socket", &server.socket_str()]);
    assert!(ok.success && ok.stdout.contains("healthy"), "{}", ok.stderr);
    let shallow = l.cli(&[
        "server",
        "healthcheck",
        "--shallow",
        "--verbose",
        "--socket",
        &server.socket_str(),
    ]);
    assert!(shallow.success, "{}", shallow.stderr);
    let ok = l.cli(&["agent", "healthcheck", "--socket", &agent.endpoint()]);
    assert!(ok.success, "{}", ok.stderr);
    let missing = l.path("nobody.sock");
    let down = l.cli(&[
        "agent",
        "healthcheck",
        "--socket",
        missing.to_str().unwrap(),
    ]);
    assert!(
        !down.success && down.stderr.contains("unhealthy"),
        "{}",
        down.stderr
    );

    // One audit line per admin call; no line about creating a token shows the token.
    let logs = server.logs();
    let audit: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "lanyard::audit")
        .collect();
    let creates: Vec<_> = audit
        .iter()
        .filter(|v| {
            v["fields"]["rpc.method"] == "/spire.api.server.entry.v1.Entry/BatchCreateEntry"
        })
        .collect();
    assert_eq!(creates.len(), 1, "{audit:#?}");
    assert_eq!(
        creates[0]["fields"]["request.spiffe_ids"],
        workload.as_str()
    );
    assert_eq!(creates[0]["fields"]["peer.uid"], uid());
    // (Once spent, a token is part of its agent's SPIFFE ID, so later lines may name it.)
    let token_lines: Vec<_> = audit
        .iter()
        .filter(|v| v["fields"]["rpc.method"] == "/spire.api.server.agent.v1.Agent/CreateJoinToken")
        .collect();
    assert!(!token_lines.is_empty());
    for line in token_lines {
        assert!(!line.to_string().contains(&token), "token leaked: {line}");
    }
}
