//! `server agent list|show|count|ban|evict` and `server token generate` through the binary,
//! against a real server with one agent attested by join token.

use crate::common::*;
use crate::registration_common::*;

#[test]
fn agent_commands_list_filter_ban_and_evict() {
    let l = lanyard();
    let (server, _agent, token) = server_and_agent(&l, &[]);
    let id = agent_id(&token);

    let listed = admin_json(&l, &server, &["agent", "list"]);
    let agents = listed["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 1, "{listed}");
    let agent = &agents[0];
    assert_eq!(agent["id"]["trust_domain"], TD);
    assert_eq!(
        agent["id"]["path"],
        format!("/spire/agent/join_token/{token}")
    );
    assert_eq!(agent["attestation_type"], "join_token");
    assert_eq!(agent["banned"], false);
    assert!(int64(&agent["x509svid_expires_at"]) > 0, "{agent}");
    assert!(!agent["x509svid_serial_number"].as_str().unwrap().is_empty());

    let shown = admin_json(&l, &server, &["agent", "show", "--spiffe-id", &id]);
    assert_eq!(shown["id"], agent["id"]);
    let text = admin_ok(&l, &server, &["agent", "show", "--spiffeID", &id]);
    assert!(
        text.contains(&format!("SPIFFE ID         : {id}")),
        "{text}"
    );

    let count = |filter: &[&str]| {
        let mut args = vec!["agent", "count"];
        args.extend_from_slice(filter);
        let n = admin_json(&l, &server, &args)["count"].as_i64().unwrap();
        let mut args = vec!["agent", "list"];
        args.extend_from_slice(filter);
        let listed = admin_json(&l, &server, &args)["agents"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(n, listed as i64, "count and list disagree for {filter:?}");
        n
    };
    assert_eq!(count(&[]), 1);
    assert_eq!(count(&["--attestation-type", "join_token"]), 1);
    assert_eq!(count(&["--attestationType", "x509pop"]), 0);
    assert_eq!(count(&["--banned", "false"]), 1);
    assert_eq!(count(&["--banned", "true"]), 0);
    assert_eq!(count(&["--can-reattest", "false"]), 1);
    assert_eq!(count(&["--expires-before", "2999-01-01T00:00:00Z"]), 1);
    assert_eq!(
        count(&["--expiresBefore", "1970-01-02 00:00:00 +0000 UTC"]),
        0
    );
    // join_token attestation yields no node selectors, so any selector filter excludes it.
    assert_eq!(agent["selectors"], serde_json::json!([]), "{agent}");
    assert_eq!(count(&["--selector", &format!("join_token:{token}")]), 0);
    assert_eq!(
        count(&["--selector", "unix:uid:0", "--match-selectors-on", "any"]),
        0
    );
    assert_eq!(
        admin_ok(&l, &server, &["agent", "count"]).trim(),
        "1 attested agent"
    );

    assert_eq!(
        admin_json(&l, &server, &["agent", "ban", "--spiffe-id", &id]),
        serde_json::json!({})
    );
    let banned = admin_json(&l, &server, &["agent", "show", "--spiffe-id", &id]);
    assert_eq!(banned["banned"], true);
    assert_eq!(count(&["--banned", "true"]), 1);

    let text = admin_ok(&l, &server, &["agent", "evict", "--spiffe-id", &id]);
    assert!(text.contains("evicted"), "{text}");
    assert_eq!(count(&[]), 0);
    admin_refused(&l, &server, &["agent", "show", "--spiffe-id", &id], &[&id]);
}

#[test]
fn agent_commands_refuse_bad_input_naming_it() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    admin_refused(
        &l,
        &server,
        &["agent", "show", "--spiffe-id", "spiffe://example.org/a b"],
        &["spiffe://example.org/a b"],
    );
    let missing = "spiffe://example.org/spire/agent/join_token/none";
    admin_refused(
        &l,
        &server,
        &["agent", "show", "--spiffe-id", missing],
        &[missing],
    );
    admin_refused(
        &l,
        &server,
        &["agent", "evict", "--spiffe-id", missing],
        &[missing],
    );
    admin_refused(
        &l,
        &server,
        &["agent", "ban", "--spiffe-id", missing],
        &[missing],
    );
    admin_refused(
        &l,
        &server,
        &["agent", "list", "--banned", "maybe"],
        &["maybe"],
    );
    admin_refused(
        &l,
        &server,
        &["agent", "count", "--expires-before", "soon"],
        &["soon"],
    );
    admin_refused(
        &l,
        &server,
        &["agent", "list", "--selector", "nocolon"],
        &["nocolon"],
    );
    admin_refused(
        &l,
        &server,
        &[
            "agent",
            "list",
            "--selector",
            "a:b",
            "--match-selectors-on",
            "all",
        ],
        &["all"],
    );
}

#[test]
fn token_generate_takes_spire_flags_and_prints_json() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let token = admin_json(
        &l,
        &server,
        &[
            "token",
            "generate",
            "--spiffeID",
            "spiffe://example.org/node-1",
            "--ttl",
            "60",
        ],
    );
    assert!(!token["value"].as_str().unwrap().is_empty(), "{token}");
    let expires = int64(&token["expires_at"]);
    assert!(
        (before + 59..=before + 120).contains(&expires),
        "expires_at {expires}, now {before}"
    );
    admin_refused(
        &l,
        &server,
        &["token", "generate", "--spiffe-id", "example.org/node"],
        &["example.org/node"],
    );
    admin_refused(
        &l,
        &server,
        &["token", "generate", "--ttl", "0"],
        &["--ttl"],
    );
}
