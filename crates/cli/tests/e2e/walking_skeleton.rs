//! The first slice: a workload gets a verifiable identity from a real server and agent.

use std::time::Duration;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn workload_gets_a_verifiable_svid_through_the_spiffe_crate() {
    let l = lanyard();
    let (server, agent, token) = server_and_agent(&l, &[]);
    let workload = format!("spiffe://{TD}/billing/api");
    register(&l, &server, &workload, &agent_id(&token));

    let ctx = fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;
    let svid = ctx.default_svid().expect("a default SVID");
    assert_eq!(svid.spiffe_id().to_string(), workload);
    assert_key_matches(svid);

    let td = spiffe::TrustDomain::new(TD).unwrap();
    let bundle = ctx.bundle_set().get(&td).expect("own trust domain bundle");
    assert!(!bundle.authorities().is_empty());

    // The chain verifies against the bundle, checked by openssl, not by Lanyard.
    if openssl_available() {
        let leaf = l.path("leaf.pem");
        let roots = l.path("roots.pem");
        write_pem(&leaf, &[svid.leaf().as_bytes()]);
        let roots_der: Vec<&[u8]> = bundle.authorities().iter().map(|c| c.as_bytes()).collect();
        write_pem(&roots, &roots_der);
        openssl_verify(&roots, &leaf);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_x509_write_produces_files_openssl_accepts() {
    let l = lanyard();
    let (server, agent, token) = server_and_agent(&l, &[]);
    let workload = format!("spiffe://{TD}/web");
    register(&l, &server, &workload, &agent_id(&token));
    fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;

    let out_dir = l.path("out");
    let out = fetch_x509(&l, &agent, &out_dir);
    assert!(out.success, "fetch failed:\n{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(&workload), "{}", out.stdout);
    for f in ["svid.0.pem", "svid.0.key", "bundle.0.pem"] {
        assert!(out_dir.join(f).exists(), "{f} was not written");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out_dir.join("svid.0.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the key must be readable by its owner only"
    );
    if openssl_available() {
        openssl_verify(&out_dir.join("bundle.0.pem"), &out_dir.join("svid.0.pem"));
    }

    // The same through SPIFFE_ENDPOINT_SOCKET and JSON output.
    let out = l.cli_with_env(
        &["agent", "api", "fetch", "x509", "--output", "json"],
        &[("SPIFFE_ENDPOINT_SOCKET", &agent.endpoint())],
    );
    assert!(out.success, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["svids"][0]["spiffe_id"], workload.as_str());
}

#[test]
fn entry_show_and_delete_round_trip() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let socket = server.socket_str();
    let out = l.cli(&[
        "server",
        "entry",
        "create",
        "--socket",
        &socket,
        "--spiffe-id",
        "spiffe://example.org/db",
        "--parent-id",
        "spiffe://example.org/node",
        "--selector",
        "unix:uid:1234",
        "--x509-svid-ttl",
        "10m",
        "--dns",
        "db.example.org",
        "--output",
        "json",
    ]);
    assert!(out.success, "{}", out.stderr);
    let created: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let id = created["results"][0]["entry"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(created["results"][0]["entry"]["x509_svid_ttl"], 600);

    // Creating it again is refused and names the existing entry.
    let again = l.cli(&[
        "server",
        "entry",
        "create",
        "--socket",
        &socket,
        "--spiffe-id",
        "spiffe://example.org/db",
        "--parent-id",
        "spiffe://example.org/node",
        "--selector",
        "unix:uid:1234",
    ]);
    assert!(!again.success);
    assert!(
        again.stderr.contains("already exists") && again.stderr.contains(&id),
        "{}",
        again.stderr
    );

    let shown = l.cli(&[
        "server",
        "entry",
        "show",
        "--socket",
        &socket,
        "--spiffe-id",
        "spiffe://example.org/db",
    ]);
    assert!(
        shown.success && shown.stdout.contains(&id),
        "{}{}",
        shown.stdout,
        shown.stderr
    );
    let by_id = l.cli(&[
        "server",
        "entry",
        "show",
        "--socket",
        &socket,
        "--entry-id",
        &id,
    ]);
    assert!(by_id.stdout.contains("unix:uid:1234"), "{}", by_id.stdout);

    let deleted = l.cli(&[
        "server",
        "entry",
        "delete",
        "--socket",
        &socket,
        "--entry-id",
        &id,
    ]);
    assert!(deleted.success, "{}", deleted.stderr);
    let gone = l.cli(&[
        "server",
        "entry",
        "show",
        "--socket",
        &socket,
        "--entry-id",
        &id,
    ]);
    assert!(
        !gone.success && gone.stderr.contains("not found"),
        "{}",
        gone.stderr
    );
}

#[test]
fn demo_writes_files_that_openssl_verifies() {
    let l = lanyard();
    let dir = l.path("demo");
    let out = l.cli(&["demo", "--dir", dir.to_str().unwrap()]);
    assert!(out.success, "demo failed:\n{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("JWT-SVID for audience \"demo\""),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("spiffe://example.org/demo/workload"),
        "{}",
        out.stdout
    );
    if openssl_available() {
        openssl_verify(&dir.join("bundle.0.pem"), &dir.join("svid.0.pem"));
    }
}

#[test]
fn entry_show_text_follows_spires_layout() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let socket = server.socket_str();
    let created = l.cli(&[
        "server",
        "entry",
        "create",
        "--socket",
        &socket,
        "--spiffe-id",
        "spiffe://example.org/layout",
        "--parent-id",
        "spiffe://example.org/node",
        "--selector",
        "unix:uid:1234",
        "--dns",
        "layout.example.org",
        "--downstream",
        "--store-svid",
        "--admin",
        "--hint",
        "primary",
        "--expires-at",
        "1900000000",
    ]);
    assert!(created.success, "{}", created.stderr);
    // SPIRE's `entry show` lists downstream entries only when asked for them.
    let shown = l.cli(&[
        "server",
        "entry",
        "show",
        "--socket",
        &socket,
        "--downstream",
    ]);
    assert!(shown.success, "{}", shown.stderr);
    let labels: Vec<&str> = shown
        .stdout
        .lines()
        .filter_map(|line| line.split_once(" : ").map(|(label, _)| label.trim()))
        .collect();
    assert_eq!(
        labels,
        [
            "Entry ID",
            "SPIFFE ID",
            "Parent ID",
            "Revision",
            "Downstream",
            "X509-SVID TTL",
            "JWT-SVID TTL",
            "Expiration time",
            "Selector",
            "DNS name",
            "Admin",
            "StoreSvid",
            "Hint"
        ],
        "{}",
        shown.stdout
    );
    assert!(
        shown
            .stdout
            .contains("Expiration time  : 2030-03-17 17:46:40 +0000 UTC"),
        "{}",
        shown.stdout
    );
}
