//! Our server's answers, byte for byte as they left the socket, decoded by the classes py-spiffe
//! generated from its own workload.proto (`tests/interop/python_decode.py`), field by field
//! against what the source handed the server.
//!
//! The `spiffe` crate keeps its generated types private (`pub(crate) mod pb` in rust-spiffe
//! 0.19), so its side of the cross-check is its public client, in `interop.rs`.
//!
//! The Python is `LANYARD_TEST_PYTHON`, or else the virtualenv `.ci/run` makes at
//! `target/interop-venv`. Without one that imports py-spiffe the test prints `SKIPPED:` and
//! passes, except under `LANYARD_CI`, where it fails.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use lanyard_proto::workload::{
    JwtBundlesRequest, JwtBundlesResponse, JwtsvidRequest, JwtsvidResponse, ValidateJwtsvidRequest,
    X509BundlesRequest, X509svidRequest,
};
use lanyard_workload::{X509Snapshot, X509SvidItem};
use prost::Message;
use serde_json::{Value, json};

use crate::support::{FakeSource, TestCa};
use crate::wire_capture::{KID, RawClient, Served, SigningSource};

const OWN: &str = "spiffe://example.org";
const FOREIGN: &str = "spiffe://other.org";
/// Messages that only ever travel inside another one, so the file has none of their own.
const NESTED: [&str; 2] = ["X509SVID", "JWTSVID"];

#[tokio::test]
async fn py_spiffe_generated_classes_decode_every_message_as_sent() {
    let Some(python) = python_with_spiffe() else {
        return;
    };
    let ca = TestCa::new("example.org");
    let other = TestCa::new("other.org");
    let mut internal = ca.svid("/internal");
    internal.hint = "internal".into();
    let mut external = ca.svid("/external");
    external.hint = "external".into();
    let snapshot = X509Snapshot {
        svids: vec![internal.clone(), external.clone()],
        federated_bundles: BTreeMap::from([(FOREIGN.into(), other.bundle_der())]),
    };
    let source = SigningSource::new(FakeSource::new(Ok(snapshot)));
    let served = Served::start(source.clone());
    let mut raw = RawClient::connect(&served).await;

    let mut sent = BTreeMap::new();
    let mut expected = BTreeMap::new();
    let audience = vec!["aud-a".to_string(), "aud-b".to_string()];

    let request = X509svidRequest {};
    sent.insert("X509SVIDRequest", request.encode_to_vec());
    expected.insert("X509SVIDRequest", json!({}));
    let answer = raw.first_streamed("FetchX509SVID", &request).await;
    sent.insert("X509SVIDResponse", answer);
    expected.insert(
        "X509SVIDResponse",
        json!({
            "svids": [x509_svid(&internal), x509_svid(&external)],
            "crl": [],
            "federated_bundles": {FOREIGN: b64(&other.bundle_der())},
        }),
    );

    let request = X509BundlesRequest {};
    sent.insert("X509BundlesRequest", request.encode_to_vec());
    expected.insert("X509BundlesRequest", json!({}));
    let answer = raw.first_streamed("FetchX509Bundles", &request).await;
    sent.insert("X509BundlesResponse", answer);
    expected.insert(
        "X509BundlesResponse",
        json!({
            "crl": [],
            "bundles": {OWN: b64(&ca.bundle_der()), FOREIGN: b64(&other.bundle_der())},
        }),
    );

    // Every identity's token, then the request narrowed to one identity, which sets field 2.
    let all = JwtsvidRequest {
        audience: audience.clone(),
        spiffe_id: String::new(),
    };
    let answer = raw.unary("FetchJWTSVID", &all).await;
    sent.insert("JWTSVIDResponse", answer);
    let minted = source.minted();
    let tokens: Vec<_> = minted
        .iter()
        .map(|t| json!({"spiffe_id": t.spiffe_id.as_str(), "svid": t.token, "hint": t.hint}))
        .collect();
    expected.insert("JWTSVIDResponse", json!({ "svids": tokens }));
    let narrowed = JwtsvidRequest {
        audience: audience.clone(),
        spiffe_id: external.spiffe_id.to_string(),
    };
    sent.insert("JWTSVIDRequest", narrowed.encode_to_vec());
    expected.insert(
        "JWTSVIDRequest",
        json!({"audience": audience, "spiffe_id": external.spiffe_id.as_str()}),
    );
    let answer = raw.unary("FetchJWTSVID", &narrowed).await;
    let ids: Vec<_> = JwtsvidResponse::decode(&*answer)
        .unwrap()
        .svids
        .into_iter()
        .map(|s| s.spiffe_id)
        .collect();
    assert_eq!(ids, [external.spiffe_id.to_string()]);

    let request = JwtBundlesRequest {};
    sent.insert("JWTBundlesRequest", request.encode_to_vec());
    expected.insert("JWTBundlesRequest", json!({}));
    let answer = raw.first_streamed("FetchJWTBundles", &request).await;
    // The JWKS text is the server's to write; its keys are checked below.
    let jwks = JwtBundlesResponse::decode(&*answer).unwrap().bundles[OWN].clone();
    sent.insert("JWTBundlesResponse", answer);
    expected.insert("JWTBundlesResponse", json!({"bundles": {OWN: b64(&jwks)}}));

    let token = &minted[0].token;
    let request = ValidateJwtsvidRequest {
        audience: audience[1].clone(),
        svid: token.clone(),
    };
    sent.insert("ValidateJWTSVIDRequest", request.encode_to_vec());
    expected.insert(
        "ValidateJWTSVIDRequest",
        json!({"audience": audience[1], "svid": token}),
    );
    let answer = raw.unary("ValidateJWTSVID", &request).await;
    sent.insert("ValidateJWTSVIDResponse", answer);
    expected.insert(
        "ValidateJWTSVIDResponse",
        json!({"spiffe_id": internal.spiffe_id.as_str(), "claims": as_doubles(&claims_of(token))}),
    );
    served.shutdown().await;

    let report = decode_with_python(&python, &sent);
    for (name, fields) in &expected {
        let decoded = &report["messages"][name];
        assert_eq!(
            decoded["unknown_fields"],
            json!([]),
            "{name}: py-spiffe sees fields it does not define"
        );
        assert_eq!(
            as_doubles(&decoded["fields"]),
            as_doubles(fields),
            "{name}: py-spiffe decodes our bytes to other values"
        );
    }
    let covered: Vec<&str> = expected.keys().copied().chain(NESTED).collect();
    for known in report["known"].as_array().unwrap() {
        let known = known.as_str().unwrap();
        assert!(
            covered.contains(&known),
            "py-spiffe defines {known}, which this test does not cover"
        );
    }
    assert_jwks_holds_the_signing_key(&jwks, &source);
}

/// The JSON py-spiffe's classes give for an X509SVID made from `svid`.
fn x509_svid(svid: &X509SvidItem) -> Value {
    json!({
        "spiffe_id": svid.spiffe_id.as_str(),
        "x509_svid": b64(&svid.chain_der),
        "x509_svid_key": b64(&svid.key_pkcs8),
        "bundle": b64(&svid.bundle_der),
        "hint": svid.hint,
    })
}

/// The JWKS holds exactly the source's one key, under its `kid`, with its coordinates.
fn assert_jwks_holds_the_signing_key(jwks: &[u8], source: &SigningSource) {
    let doc: Value = serde_json::from_slice(jwks).unwrap();
    let keys = doc["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{doc}");
    let (_, x, y) = source.public_key().ec_coordinates().unwrap();
    assert_eq!(keys[0]["kid"], KID, "{doc}");
    assert_eq!(keys[0]["kty"], "EC", "{doc}");
    assert_eq!(keys[0]["crv"], "P-256", "{doc}");
    assert_eq!(keys[0]["x"], URL_SAFE_NO_PAD.encode(x), "{doc}");
    assert_eq!(keys[0]["y"], URL_SAFE_NO_PAD.encode(y), "{doc}");
}

/// Runs `tests/interop/python_decode.py` on `messages` and returns its report.
fn decode_with_python(python: &Path, messages: &BTreeMap<&str, Vec<u8>>) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("messages.json");
    let encoded: BTreeMap<_, _> = messages.iter().map(|(k, v)| (*k, b64(v))).collect();
    std::fs::write(&file, serde_json::to_vec(&encoded).unwrap()).unwrap();
    let out = Command::new(python)
        .arg(repo_root().join("tests/interop/python_decode.py"))
        .arg(&file)
        .output()
        .expect("run python_decode.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python_decode.py failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    serde_json::from_str(&stdout)
        .map_err(|e| format!("python_decode.py printed no JSON report: {e}: {stdout}\n{stderr}"))
        .unwrap()
}

/// The claims of a compact JWS, read without checking anything (the server checked them).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// `value` with every number as a double: google.protobuf.Struct has no integers, so `exp`
/// comes back from it as `1.7e9`, which must equal the token's `1700000000`.
fn as_doubles(value: &Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(items) => items.iter().map(as_doubles).collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), as_doubles(v)))
            .collect(),
        other => other.clone(),
    }
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A Python that imports py-spiffe's generated classes: `LANYARD_TEST_PYTHON`, or the CI
/// virtualenv's. `None` after printing `SKIPPED:` past libtest's capture; under `LANYARD_CI`,
/// where every interop client must be present, a missing one fails instead.
fn python_with_spiffe() -> Option<PathBuf> {
    let python = std::env::var_os("LANYARD_TEST_PYTHON").map_or_else(
        || repo_root().join("target/interop-venv/bin/python3"),
        PathBuf::from,
    );
    let probe = Command::new(&python)
        .args(["-c", "import spiffe._proto.workload_pb2"])
        .output();
    let reason = match probe {
        Ok(out) if out.status.success() => return Some(python),
        Ok(out) => format!(
            "{} cannot import py-spiffe's workload_pb2: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!(
            "no Python for py-spiffe: cannot run {} (set LANYARD_TEST_PYTHON): {e}",
            python.display()
        ),
    };
    assert!(
        std::env::var_os("LANYARD_CI").is_none(),
        "LANYARD_CI is set but {reason}"
    );
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
    None
}

/// The repository's root, where `tests/interop/` and `target/` are.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
