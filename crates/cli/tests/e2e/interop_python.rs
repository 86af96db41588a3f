//! Interop with py-spiffe (the `spiffe` package from PyPI): the Python client, unchanged, gets
//! and checks X.509 and JWT identities from a real Lanyard agent's Workload API.
//!
//! The client is `tests/interop/python_client.py`, run by the Python of
//! `LANYARD_TEST_PYTHON`, or else of the virtualenv `.ci/run` creates at
//! `target/interop-venv`. Without one that imports `spiffe`, the test prints `SKIPPED:` and
//! passes, except under `LANYARD_CI`, where it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::common::*;

const AUDIENCE: &str = "interop-python";

#[tokio::test(flavor = "multi_thread")]
async fn py_spiffe_fetches_and_validates_x509_and_jwt_svids_from_the_agent() {
    let Some(python) = python_with_spiffe() else {
        return;
    };
    let l = lanyard();
    let (server, agent, token) = server_and_agent(&l, &[]);
    let workload = format!("spiffe://{TD}/interop/python");
    register(&l, &server, &workload, &agent_id(&token));
    // Wait with the Rust client until the agent serves this process, so that the Python
    // client's single attempts are not racing the agent's first sync.
    fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;

    let out_dir = l.path("python");
    let out = Command::new(&python)
        .arg(repo_root().join("tests/interop/python_client.py"))
        .arg(&out_dir)
        .arg(AUDIENCE)
        .env("SPIFFE_ENDPOINT_SOCKET", agent.endpoint())
        .output()
        .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Python client failed ({}):\n{stdout}\n{stderr}\nagent logs:\n{}",
        out.status,
        agent.logs()
    );
    let report: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));

    // X.509 through the one-shot calls and through the streaming X509Source.
    let x509 = &report["x509"];
    assert_eq!(x509["spiffe_id"], workload.as_str(), "{report}");
    assert_eq!(x509["svid_count"], 1, "{report}");
    assert_eq!(x509["key_matches_leaf"], true, "{report}");
    assert_eq!(x509["bundle_trust_domains"], serde_json::json!([TD]));
    assert_eq!(
        x509["fetch_x509_bundles_trust_domains"],
        serde_json::json!([TD])
    );
    assert!(x509["bundle_authorities"].as_u64() >= Some(1), "{report}");
    assert_eq!(report["x509_source"]["spiffe_id"], workload.as_str());

    // The files py-spiffe wrote verify with openssl, not with Lanyard's code or py-spiffe's.
    if openssl_available() {
        let chain = out_dir.join("svid.pem");
        openssl_verify_with(&out_dir.join("bundle.pem"), Some(&chain), &chain);
    }

    // JWT: fetched, validated by the agent and locally against the agent's JWT bundle.
    let jwt = &report["jwt"];
    assert_eq!(jwt["spiffe_id"], workload.as_str(), "{report}");
    assert_eq!(jwt["claims"]["sub"], workload.as_str(), "{report}");
    assert_eq!(audiences(&jwt["claims"]["aud"]), [AUDIENCE], "{report}");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    assert!(
        jwt["claims"]["exp"].as_u64() > Some(now.as_secs()),
        "{report}"
    );
    assert!(jwt["header"]["kid"].is_string(), "{report}");
    assert!(
        jwt["jwt_bundle_key_ids"]
            .as_array()
            .unwrap()
            .contains(&jwt["header"]["kid"]),
        "the JWT bundle holds the token's key: {report}"
    );
    for how in ["validated_by_agent", "validated_locally"] {
        assert_eq!(jwt[how]["spiffe_id"], workload.as_str(), "{how}: {report}");
        assert_eq!(
            jwt[how]["audience"],
            serde_json::json!([AUDIENCE]),
            "{how}: {report}"
        );
    }
    // Workload API §4.5 / SPIRE: a failed validation is InvalidArgument.
    let refused = jwt["wrong_audience_error"].as_str().unwrap_or_default();
    assert!(refused.contains("INVALID_ARGUMENT"), "{report}");
    assert_eq!(jwt["jwt_bundle_trust_domains"], serde_json::json!([TD]));
    assert_eq!(report["jwt_source"]["spiffe_id"], workload.as_str());
}

/// `aud` as a list, whether the token carried one value or an array (JWT-SVID §3 allows both).
pub fn audiences(aud: &Value) -> Vec<&str> {
    match aud {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The repository's root, where `tests/interop/` and `target/` are.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Prints `SKIPPED: <reason>` past libtest's capture, or fails under `LANYARD_CI`, where every
/// interop client must be present.
pub fn skip(reason: &str) {
    assert!(
        std::env::var_os("LANYARD_CI").is_none(),
        "LANYARD_CI is set but {reason}"
    );
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}

/// A Python that imports `spiffe`: `LANYARD_TEST_PYTHON`, or the CI virtualenv's.
fn python_with_spiffe() -> Option<PathBuf> {
    let python = match std::env::var_os("LANYARD_TEST_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => {
            let venv = repo_root().join("target/interop-venv/bin/python3");
            if !venv.exists() {
                skip(&format!(
                    "no Python for py-spiffe: LANYARD_TEST_PYTHON is unset and {} is missing",
                    venv.display()
                ));
                return None;
            }
            venv
        }
    };
    let probe = Command::new(&python).args(["-c", "import spiffe"]).output();
    match probe {
        Ok(out) if out.status.success() => Some(python),
        Ok(out) => {
            skip(&format!(
                "{} cannot import spiffe: {}",
                python.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            None
        }
        Err(e) => {
            skip(&format!("cannot run {}: {e}", python.display()));
            None
        }
    }
}
