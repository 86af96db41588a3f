//! SPIRE's admin CLI, `spire-server` with `-socketPath`, against a Lanyard server's admin
//! socket: what it creates Lanyard lists, what Lanyard holds it shows, in both of its output
//! formats.

use lanyard_testkit::{AgentOptions, Lanyard, Server};
use serde_json::Value;

use crate::common::*;
use crate::spire::{Spire, join_token_agent_id, text_field, token_of};

#[test]
fn spire_server_entry_commands_manage_entries_on_a_lanyard_server() {
    let Some(spire) = Spire::find() else {
        return;
    };
    let l = lanyard();
    let server = l.start_server(Default::default());
    let socket = server.socket_str();
    let web = format!("spiffe://{TD}/spire-cli/web");
    let db = format!("spiffe://{TD}/spire-cli/db");
    let parent = format!("spiffe://{TD}/spire-cli/node");

    // JSON output: SPIRE's BatchCreateEntryResponse, one result per entry.
    let created = json(&spire.server_ok(&[
        "entry",
        "create",
        "-socketPath",
        &socket,
        "-spiffeID",
        &web,
        "-parentID",
        &parent,
        "-selector",
        "unix:uid:1000",
        "-selector",
        "unix:gid:1000",
        "-x509SVIDTTL",
        "600",
        "-jwtSVIDTTL",
        "120",
        "-dns",
        "web.internal",
        "-hint",
        "web",
        "-output",
        "json",
    ]));
    let result = &created["results"][0];
    assert_eq!(result["status"]["code"], 0, "{created}");
    let web_entry = &result["entry"];
    assert_eq!(spiffe_id(&web_entry["spiffe_id"]), web, "{created}");
    assert_eq!(spiffe_id(&web_entry["parent_id"]), parent, "{created}");
    assert_eq!(web_entry["x509_svid_ttl"], 600, "{created}");
    assert_eq!(web_entry["jwt_svid_ttl"], 120, "{created}");
    assert_eq!(web_entry["dns_names"], serde_json::json!(["web.internal"]));
    assert_eq!(web_entry["hint"], "web", "{created}");
    let web_id = web_entry["id"].as_str().unwrap().to_owned();

    // Text output: the `Entry ID : <id>` block SPIRE prints.
    let text = spire.server_ok(&[
        "entry",
        "create",
        "-socketPath",
        &socket,
        "-spiffeID",
        &db,
        "-parentID",
        &parent,
        "-selector",
        "unix:uid:1001",
    ]);
    let db_id = text_field(&text, "Entry ID")
        .unwrap_or_else(|| panic!("no Entry ID in:\n{text}"))
        .to_owned();
    assert_eq!(text_field(&text, "SPIFFE ID"), Some(db.as_str()), "{text}");

    // Lanyard's own CLI lists what SPIRE's created.
    let listed = lanyard_ok(&l, &["server", "entry", "show", "--socket", &socket]);
    assert!(
        listed.contains(&web_id) && listed.contains(&db_id),
        "{listed}"
    );
    let by_id = lanyard_ok(
        &l,
        &[
            "server",
            "entry",
            "show",
            "--socket",
            &socket,
            "--entry-id",
            &web_id,
        ],
    );
    assert!(
        by_id.contains("unix:gid:1000") && by_id.contains("web.internal"),
        "{by_id}"
    );

    // Both CLIs print the same text for an entry.
    let theirs = spire.server_ok(&["entry", "show", "-socketPath", &socket, "-entryID", &db_id]);
    let ours = lanyard_ok(
        &l,
        &[
            "server",
            "entry",
            "show",
            "--socket",
            &socket,
            "--entry-id",
            &db_id,
        ],
    );
    assert_eq!(ours, theirs, "`entry show` differs from SPIRE's");

    // SPIRE's CLI lists them back, all and filtered, in both formats.
    let all = json(&spire.server_ok(&["entry", "show", "-socketPath", &socket, "-output", "json"]));
    let ids: Vec<&str> = all["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries array: {all}"))
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(sorted(ids), sorted(vec![web_id.as_str(), db_id.as_str()]));
    let filtered = spire.server_ok(&["entry", "show", "-socketPath", &socket, "-spiffeID", &db]);
    assert_eq!(text_field(&filtered, "Entry ID"), Some(db_id.as_str()));
    assert!(filtered.contains("Found 1 entry"), "{filtered}");
    let by_selector = spire.server_ok(&[
        "entry",
        "show",
        "-socketPath",
        &socket,
        "-selector",
        "unix:gid:1000",
    ]);
    assert_eq!(text_field(&by_selector, "Entry ID"), Some(web_id.as_str()));

    // `entry delete` through SPIRE; Lanyard no longer knows the entry.
    spire.server_ok(&[
        "entry",
        "delete",
        "-socketPath",
        &socket,
        "-entryID",
        &web_id,
    ]);
    let gone = l.cli(&[
        "server",
        "entry",
        "show",
        "--socket",
        &socket,
        "--entry-id",
        &web_id,
    ]);
    assert!(
        !gone.success && gone.stderr.contains("not found"),
        "{gone:?}"
    );
    let missing = spire.server_cli(&["entry", "show", "-socketPath", &socket, "-entryID", &web_id]);
    assert!(!missing.success, "{missing:?}");
    assert!(
        format!("{}{}", missing.stdout, missing.stderr).contains("NotFound"),
        "{missing:?}"
    );
}

#[test]
fn spire_server_bundle_show_prints_the_lanyard_bundle() {
    let Some(spire) = Spire::find() else {
        return;
    };
    let l = lanyard();
    let server = l.start_server(Default::default());
    let socket = server.socket_str();

    let ours = lanyard_ok(&l, &["server", "bundle", "show", "--socket", &socket]);
    let theirs = spire.server_ok(&["bundle", "show", "-socketPath", &socket]);
    assert_eq!(theirs.trim(), ours.trim(), "PEM bundles differ");

    let doc = json(&spire.server_ok(&[
        "bundle",
        "show",
        "-socketPath",
        &socket,
        "-format",
        "spiffe",
    ]));
    let keys = doc["keys"].as_array().unwrap_or_else(|| panic!("{doc}"));
    let uses: Vec<&str> = keys.iter().filter_map(|k| k["use"].as_str()).collect();
    assert!(
        uses.contains(&"x509-svid") && uses.contains(&"jwt-svid"),
        "{doc}"
    );
    // The x509-svid key carries the CA certificate that the PEM form printed.
    let x5c = keys.iter().find(|k| k["use"] == "x509-svid").unwrap()["x5c"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no x5c: {doc}"));
    let body: String = ours.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(
        body.contains(x5c),
        "x5c {x5c} is not in the PEM bundle:\n{ours}"
    );
}

#[test]
fn spire_server_token_and_agent_commands_work_against_lanyard() {
    let Some(spire) = Spire::find() else {
        return;
    };
    let l = lanyard();
    let server = l.start_server(Default::default());
    let socket = server.socket_str();

    let none = spire.server_ok(&["agent", "list", "-socketPath", &socket]);
    assert!(none.contains("No attested agents found"), "{none}");
    let ours = lanyard_ok(&l, &["server", "agent", "list", "--socket", &socket]);
    assert_eq!(ours, none, "`agent list` differs from SPIRE's");

    // A token from SPIRE's CLI attests a Lanyard agent to the Lanyard server.
    let token = token_of(&spire.server_ok(&["token", "generate", "-socketPath", &socket]));
    let _agent = start_agent(&l, &server, &token);
    let agent = join_token_agent_id(&token);

    let text = spire.server_ok(&["agent", "list", "-socketPath", &socket]);
    assert_eq!(
        text_field(&text, "SPIFFE ID"),
        Some(agent.as_str()),
        "{text}"
    );
    assert_eq!(text_field(&text, "Attestation type"), Some("join_token"));
    let listed =
        json(&spire.server_ok(&["agent", "list", "-socketPath", &socket, "-output", "json"]));
    assert_eq!(spiffe_id(&listed["agents"][0]["id"]), agent, "{listed}");
    let shown = spire.server_ok(&["agent", "show", "-socketPath", &socket, "-spiffeID", &agent]);
    assert_eq!(
        text_field(&shown, "SPIFFE ID"),
        Some(agent.as_str()),
        "{shown}"
    );

    // Both CLIs print the same text for agents (SPIRE's runs with TZ=UTC, the zone Lanyard
    // always prints).
    let ours = lanyard_ok(&l, &["server", "agent", "list", "--socket", &socket]);
    assert_eq!(ours, text, "`agent list` differs from SPIRE's");
    let ours = lanyard_ok(
        &l,
        &[
            "server",
            "agent",
            "show",
            "--socket",
            &socket,
            "--spiffe-id",
            &agent,
        ],
    );
    assert_eq!(ours, shown, "`agent show` differs from SPIRE's");
    let count = spire.server_ok(&["agent", "count", "-socketPath", &socket]);
    assert!(count.contains("1 attested agent"), "{count}");

    // Evicted through SPIRE, gone for Lanyard.
    spire.server_ok(&[
        "agent",
        "evict",
        "-socketPath",
        &socket,
        "-spiffeID",
        &agent,
    ]);
    let ours = lanyard_ok(&l, &["server", "agent", "list", "--socket", &socket]);
    assert!(!ours.contains(&agent), "{ours}");
}

/// Starts a Lanyard agent with `token` and waits until it has attested.
fn start_agent(l: &Lanyard, server: &Server, token: &str) -> lanyard_testkit::Agent {
    l.start_agent(
        server,
        AgentOptions {
            join_token: Some(token.to_owned()),
            ..Default::default()
        },
    )
}

/// `lanyard <args>` must succeed; its stdout.
fn lanyard_ok(l: &Lanyard, args: &[&str]) -> String {
    let out = l.cli(args);
    assert!(
        out.success,
        "lanyard {args:?} failed:\n{}{}",
        out.stdout, out.stderr
    );
    out.stdout
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `spiffe://<trust_domain><path>` from SPIRE's JSON `SPIFFEID` message.
fn spiffe_id(id: &Value) -> String {
    format!(
        "spiffe://{}{}",
        id["trust_domain"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}")),
        id["path"].as_str().unwrap_or_else(|| panic!("{id}"))
    )
}

fn sorted(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v
}
