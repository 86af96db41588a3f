//! Interop with go-spiffe v2, the reference Go client: two Go workloads, separate processes with
//! separate SPIFFE IDs from the same Lanyard agent, authenticate an mTLS connection to each
//! other, and one validates the other's JWT-SVID with the agent's bundles.
//!
//! The program is the module in `tests/interop/go`, built here with the machine's `go` into
//! `target/interop-go/` and copied once per workload (see `interop_go_workloads`). Without
//! `go`, or without its modules (no module proxy and nothing downloaded), the test prints
//! `SKIPPED:` and passes, except under `LANYARD_CI`, where it fails; `.ci/run` downloads the
//! modules before the tests start.

use std::path::Path;
use std::time::Duration;

use lanyard_testkit::{AgentOptions, Lanyard, Server, wait_until};
use serde_json::{Value, json};

use crate::common::*;
use crate::interop_go_workloads::{GoServer, build_go_client, install_copy, run_to_report};
use crate::interop_python::audiences;

/// Path discovery on, hashing off: the copies share one hash, so only the path tells them
/// apart.
const AGENT_CONFIG: &str = "plugins {\n  WorkloadAttestor \"unix\" {\n    plugin_data {\n      \
                            discover_workload_path = true\n      workload_size_limit = -1\n    \
                            }\n  }\n}\n";

#[test]
fn go_spiffe_workloads_authenticate_each_other_and_validate_jwt_svids_from_the_agent() {
    let Some(program) = build_go_client() else {
        return;
    };
    let l = lanyard();
    let conf = l.path("agent.conf");
    std::fs::write(&conf, AGENT_CONFIG).unwrap();
    let server = l.start_server(Default::default());
    let token = l.generate_token(&server, &[]);
    let agent = l.start_agent(
        &server,
        AgentOptions {
            join_token: Some(token.clone()),
            extra_args: vec!["--config".into(), conf.display().to_string()],
            ..Default::default()
        },
    );
    let parent = agent_id(&token);

    let bin = l.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let server_bin = install_copy(&program, &bin, "server-workload");
    let client_bin = install_copy(&program, &bin, "client-workload");
    let intruder_bin = install_copy(&program, &bin, "intruder-workload");
    let server_id = format!("spiffe://{TD}/interop/go/server");
    let client_id = format!("spiffe://{TD}/interop/go/client");
    let intruder_id = format!("spiffe://{TD}/interop/go/intruder");
    for (id, path) in [
        (&server_id, &server_bin),
        (&client_id, &client_bin),
        (&intruder_id, &intruder_bin),
    ] {
        register_binary(&l, &server, id, &parent, path);
    }
    wait_for_sync(&l, &server, &agent, &parent);

    // The audience is the server's own ID, as a client addressing that server would choose.
    let audience = server_id.as_str();
    let endpoint = agent.endpoint();
    let logs = || agent.logs();
    let (server_dir, client_dir) = (l.path("go-server"), l.path("go-client"));
    let go_server = GoServer::start(&server_bin, &endpoint, &server_dir, &client_id, audience);
    let client_dir_arg = client_dir.to_str().unwrap();
    let dial_args = [
        "dial",
        client_dir_arg,
        &go_server.addr,
        &server_id,
        audience,
    ];
    let client = run_to_report(&client_bin, &endpoint, &dial_args, &logs);
    let intrude_args = ["intrude", &go_server.addr, &server_id];
    let intruder = run_to_report(&intruder_bin, &endpoint, &intrude_args, &logs);
    let served = go_server.finish();
    let reports = json!({"server": served, "client": client, "intruder": intruder});

    assert_x509(&served["x509"], &server_id, &server_dir, &reports);
    assert_x509(&client["x509"], &client_id, &client_dir, &reports);
    assert_mtls(&reports, &server_id, &client_id, &intruder_id);
    assert_jwt(&reports, &client_id, audience);
}

/// An entry for `id` matching this uid and exactly the binary at `path`.
fn register_binary(l: &Lanyard, server: &Server, id: &str, parent: &str, path: &Path) {
    let out = l.cli(&[
        "server",
        "entry",
        "create",
        "--socket",
        &server.socket_str(),
        "--spiffe-id",
        id,
        "--parent-id",
        parent,
        "--selector",
        &format!("unix:uid:{}", uid()),
        "--selector",
        &format!("unix:path:{}", path.display()),
    ]);
    assert!(
        out.success,
        "entry create failed:\n{}\n{}",
        out.stdout, out.stderr
    );
}

/// Registers the `lanyard` binary last and waits until the agent serves it: the agent has
/// then synced the Go workloads' entries too, so their sources' timeouts are about the
/// Workload API rather than about the agent's first sync.
fn wait_for_sync(l: &Lanyard, server: &Server, agent: &lanyard_testkit::Agent, parent: &str) {
    let lanyard_bin = std::fs::canonicalize(env!("CARGO_BIN_EXE_lanyard")).unwrap();
    let probe = format!("spiffe://{TD}/interop/go/sync-probe");
    register_binary(l, server, &probe, parent, &lanyard_bin);
    let endpoint = agent.endpoint();
    wait_until(
        Duration::from_secs(30),
        "the agent to sync the entries",
        || {
            l.cli(&["agent", "api", "fetch", "x509", "--socket", &endpoint])
                .success
        },
    );
}

/// One workload's X.509 view: its own ID only, the trust domain's bundle, and a chain that
/// `openssl` verifies against that bundle.
fn assert_x509(x509: &Value, id: &str, out_dir: &Path, reports: &Value) {
    assert_eq!(x509["spiffe_id"], id, "{reports}");
    assert_eq!(x509["context_svids"], 1, "{reports}");
    assert!(x509["chain_length"].as_u64() >= Some(1), "{reports}");
    assert!(x509["bundle_authorities"].as_u64() >= Some(1), "{reports}");
    assert_eq!(
        x509["context_bundle_trust_domains"],
        json!([TD]),
        "{reports}"
    );
    assert_eq!(
        x509["fetch_x509_bundles_trust_domains"],
        json!([TD]),
        "{reports}"
    );
    if openssl_available() {
        let chain = out_dir.join("svid.pem");
        openssl_verify_with(&out_dir.join("bundle.pem"), Some(&chain), &chain);
    }
}

/// Each side authorized exactly the other's ID; a client expecting another server and a client
/// the server does not expect were both turned away.
fn assert_mtls(reports: &Value, server_id: &str, client_id: &str, intruder_id: &str) {
    let client = &reports["client"]["mtls"];
    assert_eq!(client["client_saw_server"], server_id, "{reports}");
    assert_eq!(client["echo"], "hello over SPIFFE mTLS", "{reports}");
    let refused = client["wrong_id_error"].as_str().unwrap_or_default();
    assert!(
        refused.contains("unexpected ID") && refused.contains(server_id),
        "{reports}"
    );

    let connections = reports["server"]["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 3, "{reports}");
    let [accepted, aborted, intruded] = &connections[..] else {
        unreachable!()
    };
    assert_eq!(accepted["peer"], client_id, "{reports}");
    assert_eq!(accepted["echo"], "hello over SPIFFE mTLS", "{reports}");
    assert_eq!(accepted["error"], Value::Null, "{reports}");
    // The client that expected another server hung up during the handshake.
    assert_eq!(aborted["peer"], Value::Null, "{reports}");
    let hung_up = aborted["error"].as_str().unwrap_or_default();
    assert!(hung_up.contains("bad certificate"), "{reports}");
    // The intruder accepted the server, which then refused the intruder's ID.
    assert_eq!(intruded["peer"], Value::Null, "{reports}");
    let refusal = intruded["error"].as_str().unwrap_or_default();
    assert!(
        refusal.contains("unexpected ID") && refusal.contains(intruder_id),
        "{reports}"
    );
    let intruder = &reports["intruder"];
    assert_eq!(intruder["spiffe_id"], intruder_id, "{reports}");
    assert_eq!(intruder["client_saw_server"], server_id, "{reports}");
    assert!(
        intruder["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{reports}"
    );
}

/// The client's JWT-SVID, sent over the mTLS connection, validated by the server with its own
/// bundles and by its agent; wrong audiences and altered signatures refused.
fn assert_jwt(reports: &Value, client_id: &str, audience: &str) {
    let fetched = &reports["client"]["jwt"];
    assert_eq!(fetched["spiffe_id"], client_id, "{reports}");
    assert_eq!(audiences(&fetched["audience"]), [audience], "{reports}");
    assert_eq!(fetched["claims"]["sub"], client_id, "{reports}");
    assert!(
        fetched["expires_in_seconds"].as_f64() > Some(0.0),
        "{reports}"
    );
    assert_eq!(
        fetched["server_verdict"],
        format!("valid {client_id}"),
        "{reports}"
    );

    let check = &reports["server"]["connections"][0]["jwt"];
    assert_eq!(check["subject"], client_id, "{reports}");
    assert_eq!(check["claims"]["sub"], client_id, "{reports}");
    assert_eq!(audiences(&check["claims"]["aud"]), [audience], "{reports}");
    assert!(
        check["expires_in_seconds"].as_f64() > Some(0.0),
        "{reports}"
    );
    assert_eq!(
        check["validated_with_fetched_bundles"], client_id,
        "{reports}"
    );
    assert_eq!(check["validated_by_agent"], client_id, "{reports}");
    // Workload API §4.5 / SPIRE: a failed validation is InvalidArgument.
    let refused = check["wrong_audience_error"].as_str().unwrap_or_default();
    assert!(refused.contains("InvalidArgument"), "{reports}");
    assert!(
        check["tampered_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "a token with an altered signature validated: {reports}"
    );
    assert!(
        !check["bundle_key_ids"].as_array().unwrap().is_empty(),
        "{reports}"
    );
}
