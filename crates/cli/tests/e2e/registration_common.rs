//! Helpers for the `registration_*` tests: admin commands against one server, their JSON, and
//! the check that a refused command leaves the server serving.

use lanyard_testkit::{CliOutput, Lanyard, Server};
use serde_json::Value;

/// `lanyard server <args> --socket S`.
pub fn admin(l: &Lanyard, server: &Server, args: &[&str]) -> CliOutput {
    let socket = server.socket_str();
    let mut full = vec!["server"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--socket", &socket]);
    l.cli(&full)
}

/// `lanyard server <args> --output json` succeeds; its output parsed.
pub fn admin_json(l: &Lanyard, server: &Server, args: &[&str]) -> Value {
    let mut full = args.to_vec();
    full.extend_from_slice(&["--output", "json"]);
    let out = admin(l, server, &full);
    assert!(
        out.success,
        "{args:?} failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", out.stdout))
}

/// `lanyard server <args>` succeeds; what it printed.
pub fn admin_ok(l: &Lanyard, server: &Server, args: &[&str]) -> String {
    let out = admin(l, server, args);
    assert!(
        out.success,
        "{args:?} failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    out.stdout
}

/// `lanyard server <args>` fails with an error naming every one of `named`, and the server
/// still answers afterwards; returns the error output.
pub fn admin_refused(l: &Lanyard, server: &Server, args: &[&str], named: &[&str]) -> String {
    let out = admin(l, server, args);
    assert!(!out.success, "{args:?} succeeded:\n{}", out.stdout);
    for needle in named {
        assert!(
            out.stderr.contains(needle),
            "{args:?}: the error does not name {needle:?}:\n{}",
            out.stderr
        );
    }
    assert_serving(l, server);
    out.stderr
}

/// The server process is alive and answers an admin RPC.
pub fn assert_serving(l: &Lanyard, server: &Server) {
    assert!(!server.exited(), "the server exited:\n{}", server.logs());
    let own = admin_json(l, server, &["bundle", "show"]);
    assert_eq!(own["trust_domain"], crate::common::TD, "{own}");
}

/// A 64-bit integer of SPIRE's JSON, which protobuf JSON writes as a decimal string
/// (`"expires_at": "1900000000"`); panics on a JSON number, so the type is checked too.
pub fn int64(v: &Value) -> i64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a 64-bit integer string: {v}"))
}

/// The `id` of every entry in an `{"entries": [...]}` answer, sorted.
pub fn entry_ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries array: {v}"))
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// `["a", "b"]` owned and sorted, to compare with [`entry_ids`].
pub fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The server's own bundle as PEM, written to `name` in the scratch directory.
pub fn own_bundle_file(l: &Lanyard, server: &Server, name: &str, format: &str) -> String {
    let text = admin_ok(l, server, &["bundle", "show", "--format", format]);
    let path = l.path(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}
