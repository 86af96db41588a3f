//! Operating the server: the audit log, gRPC and HTTP health, metrics, and its socket file.

#![expect(
    clippy::unwrap_used,
    reason = "integration test helpers assert by panicking"
)]

mod support;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use lanyard_proto::grpc::health::v1::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use lanyard_proto::spire::api::server::agent::v1::{
    CreateJoinTokenRequest, agent_client::AgentClient,
};
use lanyard_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, GetEntryRequest, ListEntriesRequest, entry_client::EntryClient,
};
use lanyard_proto::spire::api::types;
use lanyard_server::RunningServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use support::{admin, config};

/// Log output captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn audit_lines(&self) -> Vec<serde_json::Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["target"] == "lanyard::audit")
            .collect()
    }
}

fn wire_id(id: &str) -> types::Spiffeid {
    let path = id.strip_prefix("spiffe://example.org").unwrap();
    types::Spiffeid {
        trust_domain: "example.org".into(),
        path: path.into(),
    }
}

// A current-thread runtime polls every server task on this thread, so the thread's default
// subscriber sees the server's events.
#[tokio::test(flavor = "current_thread")]
async fn audit_log_has_one_line_per_admin_call_naming_caller_method_and_status_but_no_token() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.audit_log_enabled = true;
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let channel = admin(&config).await;

    let secret = "never-in-the-log-4711";
    AgentClient::new(channel.clone())
        .create_join_token(CreateJoinTokenRequest {
            ttl: 60,
            token: secret.into(),
            agent_id: None,
        })
        .await
        .unwrap();
    let created = EntryClient::new(channel.clone())
        .batch_create_entry(BatchCreateEntryRequest {
            entries: vec![types::Entry {
                spiffe_id: Some(wire_id("spiffe://example.org/db")),
                parent_id: Some(wire_id("spiffe://example.org/node")),
                selectors: vec![types::Selector {
                    r#type: "unix".into(),
                    value: "uid:1000".into(),
                }],
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let entry_id = created.results[0].entry.as_ref().unwrap().id.clone();
    EntryClient::new(channel.clone())
        .list_entries(ListEntriesRequest::default())
        .await
        .unwrap();
    let missing = EntryClient::new(channel.clone())
        .get_entry(GetEntryRequest {
            id: "00000000-0000-4000-8000-000000000000".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    // Health probes are not audited.
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    drop(channel);
    server.stop().await.unwrap();

    let lines = logs.audit_lines();
    let methods: Vec<&str> = lines
        .iter()
        .map(|l| l["fields"]["rpc.method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        [
            "/spire.api.server.agent.v1.Agent/CreateJoinToken",
            "/spire.api.server.entry.v1.Entry/BatchCreateEntry",
            "/spire.api.server.entry.v1.Entry/ListEntries",
            "/spire.api.server.entry.v1.Entry/GetEntry",
        ],
        "one line per call: {lines:#?}"
    );
    let me = nix::unistd::getuid().as_raw();
    for line in &lines {
        let f = &line["fields"];
        assert_eq!(f["audit"], true);
        assert_eq!(f["peer.uid"], me);
        assert_eq!(f["peer.pid"], std::process::id());
        assert!(f["peer.exe"].as_str().is_some(), "{line}");
        assert!(f["request_id"].as_str().is_some(), "{line}");
        assert!(!line.to_string().contains(secret), "a token leaked: {line}");
    }
    assert_eq!(lines[0]["fields"]["status"], "OK");
    assert!(
        lines[0]["fields"]["request.details"]
            .as_str()
            .unwrap()
            .contains("token=chosen by caller")
    );
    let create = &lines[1]["fields"];
    assert_eq!(create["request.spiffe_ids"], "spiffe://example.org/db");
    assert_eq!(create["request.parent_ids"], "spiffe://example.org/node");
    assert_eq!(create["request.entry_ids"], entry_id.as_str());
    assert_eq!(create["results"], "OK");
    let get = &lines[3]["fields"];
    assert_eq!(get["status"], "NOT_FOUND");
    assert_eq!(get["status.code"], 5);
    assert!(
        get["status.message"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{get}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn audit_lines_of_local_authority_calls_name_the_authority() {
    use lanyard_proto::spire::api::server::localauthority::v1::{
        ActivateX509AuthorityRequest, PrepareX509AuthorityRequest, TaintX509AuthorityRequest,
        local_authority_client::LocalAuthorityClient,
    };

    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.audit_log_enabled = true;
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let mut client = LocalAuthorityClient::new(admin(&config).await);

    let prepared = client
        .prepare_x509_authority(PrepareX509AuthorityRequest::default())
        .await
        .unwrap()
        .into_inner()
        .prepared_authority
        .unwrap()
        .authority_id;
    client
        .activate_x509_authority(ActivateX509AuthorityRequest {
            authority_id: prepared.to_ascii_uppercase(),
        })
        .await
        .unwrap();
    let unknown = client
        .taint_x509_authority(TaintX509AuthorityRequest {
            authority_id: "beef".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::FailedPrecondition);
    drop(client);
    server.stop().await.unwrap();

    let lines = logs.audit_lines();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let prepare = &lines[0]["fields"];
    assert!(prepare.get("request.authority_id").is_none(), "{prepare}");
    assert_eq!(prepare["result.authority_id"], prepared.as_str());
    let activate = &lines[1]["fields"];
    assert_eq!(
        activate["request.authority_id"],
        prepared.to_ascii_uppercase().as_str()
    );
    assert_eq!(activate["result.authority_id"], prepared.as_str());
    let taint = &lines[2]["fields"];
    assert_eq!(taint["request.authority_id"], "beef");
    assert!(taint.get("result.authority_id").is_none(), "{taint}");
    assert!(
        taint["status.message"]
            .as_str()
            .unwrap()
            .contains("expected the subject key id as hex"),
        "{taint}"
    );
}

#[tokio::test]
async fn no_audit_lines_unless_enabled() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    EntryClient::new(admin(&config).await)
        .list_entries(ListEntriesRequest::default())
        .await
        .unwrap();
    server.stop().await.unwrap();
    assert!(logs.audit_lines().is_empty());
}

#[tokio::test]
async fn grpc_health_on_the_admin_socket_answers_readiness_and_liveness() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let mut health = HealthClient::new(admin(&config).await);
    for service in ["", "liveness", "lanyard.server", "lanyard.server.liveness"] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status, ServingStatus::Serving as i32, "{service:?}");
    }
    for service in ["nope", "lanyard.agent", "lanyard.agent.liveness"] {
        let unknown = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound, "{service:?}");
    }

    // A Watch stream ends when the server stops, so it does not hold the shutdown up.
    let mut watch = health
        .watch(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    tokio::time::timeout(std::time::Duration::from_secs(10), server.stop())
        .await
        .unwrap()
        .unwrap();
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    (out[9..12].parse().unwrap(), out)
}

#[tokio::test]
async fn health_listener_and_metrics_reflect_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.health_checks.listener_enabled = true;
    config.health_checks.bind_address = "127.0.0.1".into();
    config.health_checks.bind_port = 0;
    config.telemetry.prometheus = Some(lanyard_telemetry::Prometheus {
        host: "127.0.0.1".into(),
        port: 0,
    });
    let server: RunningServer = lanyard_server::start(config.clone()).await.unwrap();
    let health = server.health_addr().unwrap();
    let (code, body) = http_get(health, "/live").await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = http_get(health, "/ready").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.ends_with("{\"ready\":true}\n"), "{body}");

    EntryClient::new(admin(&config).await)
        .list_entries(ListEntriesRequest::default())
        .await
        .unwrap();
    let (code, text) = http_get(server.metrics_addr().unwrap(), "/metrics").await;
    assert_eq!(code, 200);
    for needle in [
        "lanyard_svids_signed_total{kind=\"x509_server\"} 1",
        "lanyard_server_entries 0",
        "lanyard_server_agents 0",
        "lanyard_rpc_requests_total{service=\"spire.api.server.entry.v1.Entry\",method=\"ListEntries\",code=\"OK\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_socket_served_by_another_process_is_refused_and_a_stale_one_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    std::fs::create_dir_all(dir.path()).unwrap();

    let live = std::os::unix::net::UnixListener::bind(&config.socket_path).unwrap();
    let err = match lanyard_server::start(config.clone()).await {
        Ok(_) => panic!("started on a socket another process serves"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err,
        format!(
            "socket {} is in use by another process",
            config.socket_path.display()
        )
    );

    drop(live);
    assert!(config.socket_path.exists(), "a stale socket file is left");
    let server = lanyard_server::start(config.clone()).await.unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config.socket_path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the admin socket is for its owner only"
    );
    server.stop().await.unwrap();
    assert!(
        !config.socket_path.exists(),
        "the socket is removed at stop"
    );
}

#[tokio::test]
async fn ca_rotation_steps_and_server_svid_renewals_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.ca_ttl = std::time::Duration::from_secs(6);
    config.default_x509_svid_ttl = std::time::Duration::from_secs(1);
    config.agent_ttl = std::time::Duration::from_secs(1);
    config.default_jwt_svid_ttl = std::time::Duration::from_secs(1);
    let server = lanyard_server::start(config).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let wanted = [
        "lanyard_ca_rotations_total{event=\"prepared\"}",
        "lanyard_ca_rotations_total{event=\"activated\"}",
    ];
    loop {
        let text = server.metrics().encode();
        if wanted.iter().all(|w| text.contains(w)) {
            assert!(
                !text.contains("lanyard_svids_signed_total{kind=\"x509_server\"} 1\n"),
                "the server SVID was renewed after activation:\n{text}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no prepare and activate counted:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_port_in_use_fails_start_naming_it_and_leaves_no_socket_file() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();

    let mut config = config(dir.path());
    config.health_checks.listener_enabled = true;
    config.health_checks.bind_address = "127.0.0.1".into();
    config.health_checks.bind_port = port;
    let err = match lanyard_server::start(config.clone()).await {
        Ok(_) => panic!("started with the health port taken"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!config.socket_path.exists());

    let mut config = self::config(dir.path());
    config.bind = taken.local_addr().unwrap();
    let err = match lanyard_server::start(config.clone()).await {
        Ok(_) => panic!("started with the agent API port taken"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(
        !config.socket_path.exists(),
        "no stale admin socket is left"
    );
    assert!(
        !config.data_dir.exists(),
        "no datastore, keys or lock are created for a start that cannot listen"
    );
}

#[tokio::test]
async fn a_port_in_use_leaves_an_existing_data_dir_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    server.stop().await.unwrap();
    let listing = |d: &Path| {
        let mut names: Vec<_> = walk(d);
        names.sort();
        names
    };
    let before = listing(&config.data_dir);

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut busy = config.clone();
    busy.bind = taken.local_addr().unwrap();
    assert!(lanyard_server::start(busy).await.is_err());
    assert_eq!(listing(&config.data_dir), before, "no new files");
}

#[tokio::test]
async fn a_socket_in_use_fails_before_a_second_ca_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();

    let other = tempfile::tempdir().unwrap();
    let mut second = self::config(other.path());
    second.socket_path = config.socket_path.clone();
    let err = match lanyard_server::start(second.clone()).await {
        Ok(_) => panic!("started on a socket in use"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("in use"), "{err}");
    assert!(!second.data_dir.exists(), "no second CA or datastore");
    server.stop().await.unwrap();
}

/// Every file under `dir`, as paths relative to it.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(
                walk(&path)
                    .into_iter()
                    .map(|p| path.strip_prefix(dir).unwrap().join(p)),
            );
        }
        out.push(path.strip_prefix(dir).unwrap().to_path_buf());
    }
    out
}
