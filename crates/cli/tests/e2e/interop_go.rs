//! Interop with go-spiffe v2, the reference Go client: unchanged, it gets identities from a
//! real Lanyard agent's Workload API, authenticates an mTLS connection with them, and
//! validates a JWT-SVID with the agent's bundles.
//!
//! The program is the module in `tests/interop/go`, built here with the machine's `go` into
//! `target/interop-go/`. Without `go`, or without its modules (no module proxy and nothing
//! downloaded), the test prints `SKIPPED:` and passes, except under `LANYARD_CI`, where it
//! fails; `.ci/run` downloads the modules before the tests start.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;
use crate::interop_python::{audiences, repo_root, skip};

const AUDIENCE: &str = "interop-go";

#[tokio::test(flavor = "multi_thread")]
async fn go_spiffe_authenticates_mtls_and_validates_jwt_svids_from_the_agent() {
    let Some(program) = build_go_client() else {
        return;
    };
    let l = lanyard();
    let (server, agent, token) = server_and_agent(&l, &[]);
    let workload = format!("spiffe://{TD}/interop/go");
    register(&l, &server, &workload, &agent_id(&token));
    // go-spiffe's sources would retry on their own; waiting here keeps the client's timeout
    // about the Workload API rather than about the agent's first sync.
    fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;

    let out_dir = l.path("go");
    let out = Command::new(&program)
        .arg(&out_dir)
        .arg(AUDIENCE)
        .env("SPIFFE_ENDPOINT_SOCKET", agent.endpoint())
        .output()
        .expect("run the Go client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Go client failed ({}):\n{stdout}\n{stderr}\nagent logs:\n{}",
        out.status,
        agent.logs()
    );
    let report: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));

    let x509 = &report["x509"];
    assert_eq!(x509["spiffe_id"], workload.as_str(), "{report}");
    assert_eq!(x509["context_svids"], 1, "{report}");
    assert!(x509["bundle_authorities"].as_u64() >= Some(1), "{report}");
    assert_eq!(
        x509["context_bundle_trust_domains"],
        serde_json::json!([TD])
    );
    assert_eq!(
        x509["fetch_x509_bundles_trust_domains"],
        serde_json::json!([TD])
    );
    if openssl_available() {
        let chain = out_dir.join("svid.pem");
        openssl_verify_with(&out_dir.join("bundle.pem"), Some(&chain), &chain);
    }

    // Both ends of the handshake held the agent's SVID and authorized each other by ID.
    let mtls = &report["mtls"];
    assert_eq!(mtls["server_saw_client"], workload.as_str(), "{report}");
    assert_eq!(mtls["client_saw_server"], workload.as_str(), "{report}");
    assert_eq!(mtls["echo"], "hello over SPIFFE mTLS", "{report}");
    let refused = mtls["wrong_id_error"].as_str().unwrap_or_default();
    assert!(refused.contains("unexpected ID"), "{report}");

    let jwt = &report["jwt"];
    assert_eq!(jwt["spiffe_id"], workload.as_str(), "{report}");
    assert_eq!(jwt["claims"]["sub"], workload.as_str(), "{report}");
    assert_eq!(audiences(&jwt["claims"]["aud"]), [AUDIENCE], "{report}");
    assert!(jwt["expires_in_seconds"].as_f64() > Some(0.0), "{report}");
    assert_eq!(jwt["validated_locally"], workload.as_str(), "{report}");
    assert_eq!(jwt["validated_by_agent"], workload.as_str(), "{report}");
    // Workload API §4.5 / SPIRE: a failed validation is InvalidArgument.
    let refused = jwt["wrong_audience_error"].as_str().unwrap_or_default();
    assert!(refused.contains("InvalidArgument"), "{report}");
    assert!(
        jwt["tampered_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "a token with an altered signature validated: {report}"
    );
    assert!(
        !jwt["bundle_key_ids"].as_array().unwrap().is_empty(),
        "{report}"
    );
}

/// Builds `tests/interop/go` into `target/interop-go/interop`, or says why it cannot.
fn build_go_client() -> Option<PathBuf> {
    let module = repo_root().join("tests/interop/go");
    let program = repo_root().join("target/interop-go/interop");
    let go = |args: &[&str]| {
        // -mod=mod lets go resolve from go.sum without a vendor directory; the machine's own
        // GOFLAGS (e.g. -buildvcs=false) still apply.
        let flags = match std::env::var("GOFLAGS") {
            Ok(existing) if !existing.is_empty() => format!("{existing} -mod=mod"),
            _ => "-mod=mod".to_owned(),
        };
        Command::new("go")
            .args(args)
            .current_dir(&module)
            .env("GOFLAGS", flags)
            .output()
    };

    match go(&["version"]) {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            skip(&format!(
                "`go version` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        Err(e) => {
            skip(&format!("go is not installed: {e}"));
            return None;
        }
    }
    // Missing modules are an environment matter (no proxy reachable), unlike a build error.
    let download = go(&["mod", "download"]).expect("run go mod download");
    if !download.status.success() {
        skip(&format!(
            "go-spiffe modules are not available: {}",
            String::from_utf8_lossy(&download.stderr).trim()
        ));
        return None;
    }

    let out = go(&["build", "-o", program.to_str().unwrap(), "."]).expect("run go build");
    assert!(
        out.status.success(),
        "go build of {} failed:\n{}",
        module.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(program)
}
