//! `server entry create|show|count|update|delete` through the binary against a real server:
//! every filter of `show` and `count`, field and `--data` updates, SPIRE's flag spellings, and
//! refused input that names the value while the server keeps serving.

use serde_json::Value;

use crate::common::*;
use crate::registration_common::*;

const WEB: &str = "spiffe://example.org/web";
const DB: &str = "spiffe://example.org/db";
const CACHE: &str = "spiffe://example.org/cache";
const AGENT: &str = "spiffe://example.org/agent";

/// Creates one entry from `flags` and returns it as the server stored it.
fn create(l: &lanyard_testkit::Lanyard, server: &lanyard_testkit::Server, flags: &[&str]) -> Value {
    let mut args = vec!["entry", "create"];
    args.extend_from_slice(flags);
    let created = admin_json(l, server, &args);
    let results = created["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{created}");
    assert_eq!(results[0]["status"]["code"], 0, "{created}");
    results[0]["entry"].clone()
}

fn id_of(entry: &Value) -> String {
    entry["id"].as_str().unwrap().to_owned()
}

#[test]
fn entry_commands_filter_update_and_delete() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let pem = own_bundle_file(&l, &server, "other.pem", "pem");
    admin_ok(
        &l,
        &server,
        &["bundle", "set", "--id", "other.org", "--path", &pem],
    );

    let web = create(
        &l,
        &server,
        &[
            "--spiffe-id",
            WEB,
            "--parent-id",
            AGENT,
            "--selector",
            "unix:uid:1001",
            "--selector",
            "unix:gid:1001",
            "--hint",
            "blue",
            "--dns",
            "web.example.org",
            "--federates-with",
            "other.org",
            "--x509-svid-ttl",
            "10m",
            "--jwt-svid-ttl",
            "90s",
        ],
    );
    assert_eq!(web["spiffe_id"]["path"], "/web");
    assert_eq!(web["x509_svid_ttl"], 600);
    assert_eq!(web["jwt_svid_ttl"], 90);
    assert_eq!(web["dns_names"][0], "web.example.org");
    assert_eq!(web["federates_with"][0], "other.org");
    let db = create(
        &l,
        &server,
        &[
            "--spiffe-id",
            DB,
            "--parent-id",
            AGENT,
            "--selector",
            "unix:uid:1002",
            "--downstream",
        ],
    );
    assert_eq!(db["downstream"], true);
    // SPIRE's spellings of the flags.
    let cache = create(
        &l,
        &server,
        &[
            "--spiffeID",
            CACHE,
            "--parentID",
            "spiffe://example.org/agent2",
            "--selector",
            "unix:uid:1001",
            "--x509SVIDTTL",
            "90",
            "--storeSVID",
            "--entryExpiry",
            "1900000000",
        ],
    );
    assert_eq!(cache["store_svid"], true);
    assert_eq!(cache["expires_at"], "1900000000");
    assert_eq!(cache["x509_svid_ttl"], 90);
    let (web_id, db_id, cache_id) = (id_of(&web), id_of(&db), id_of(&cache));

    let show = |filter: &[&str]| {
        let mut args = vec!["entry", "show"];
        args.extend_from_slice(filter);
        entry_ids(&admin_json(&l, &server, &args))
    };
    let count = |filter: &[&str]| {
        let mut args = vec!["entry", "count"];
        args.extend_from_slice(filter);
        admin_json(&l, &server, &args)["count"].as_i64().unwrap()
    };
    // As with SPIRE's CLI, which always filters on `-downstream`, the downstream entry (db)
    // is listed and counted only with `--downstream`.
    let all = sorted(&[&web_id, &cache_id]);
    assert_eq!(show(&[]), all);
    assert_eq!(count(&[]), 2);
    assert_eq!(show(&["--spiffe-id", WEB]), sorted(&[&web_id]));
    assert_eq!(show(&["--parent-id", AGENT]), sorted(&[&web_id]));
    assert_eq!(count(&["--parent-id", AGENT]), 1);
    assert_eq!(
        show(&["--parent-id", AGENT, "--downstream"]),
        sorted(&[&db_id])
    );
    // Superset is the default: every entry holding uid 1001, whatever else it holds.
    assert_eq!(
        show(&["--selector", "unix:uid:1001"]),
        sorted(&[&web_id, &cache_id])
    );
    assert_eq!(
        show(&[
            "--selector",
            "unix:uid:1001",
            "--match-selectors-on",
            "exact"
        ]),
        sorted(&[&cache_id])
    );
    let three = ["--selector", "unix:uid:1001", "--selector", "unix:gid:1001"];
    let subset = [
        &three[..],
        &[
            "--selector",
            "unix:uid:1002",
            "--matchSelectorsOn",
            "subset",
        ],
    ]
    .concat();
    assert_eq!(show(&subset), all);
    let any = [
        "--selector",
        "unix:gid:1001",
        "--selector",
        "unix:uid:1002",
        "--match-selectors-on",
        "any",
    ];
    assert_eq!(show(&any), sorted(&[&web_id]));
    assert_eq!(count(&any), 1);
    assert_eq!(show(&["--federates-with", "other.org"]), sorted(&[&web_id]));
    assert_eq!(
        show(&[
            "--federates-with",
            "other.org",
            "--match-federates-with-on",
            "exact"
        ]),
        sorted(&[&web_id])
    );
    assert_eq!(count(&["--federates-with", "spiffe://other.org"]), 1);
    assert_eq!(show(&["--hint", "blue"]), sorted(&[&web_id]));
    assert_eq!(show(&["--downstream"]), sorted(&[&db_id]));
    assert_eq!(show(&["--downstream=false"]), sorted(&[&web_id, &cache_id]));
    assert_eq!(count(&["--downstream"]), 1);
    assert_eq!(show(&["--entry-id", &web_id]), sorted(&[&web_id]));

    // Pretty output counts and prints SPIRE's blocks.
    let text = admin_ok(&l, &server, &["entry", "show", "--spiffe-id", WEB]);
    assert!(text.starts_with("Found 1 entry"), "{text}");
    assert!(
        text.contains(&format!("Entry ID         : {web_id}")),
        "{text}"
    );
    let text = admin_ok(&l, &server, &["entry", "count"]);
    assert_eq!(text.trim(), "2 registration entries");

    // Field updates change only what is given.
    let updated = admin_json(
        &l,
        &server,
        &[
            "entry",
            "update",
            "--entry-id",
            &web_id,
            "--x509-svid-ttl",
            "2m",
            "--hint",
            "green",
        ],
    );
    let after = &updated["results"][0]["entry"];
    assert_eq!(after["x509_svid_ttl"], 120);
    assert_eq!(after["hint"], "green");
    assert_eq!(after["selectors"].as_array().unwrap().len(), 2, "{after}");
    assert_eq!(after["jwt_svid_ttl"], 90);
    assert!(
        int64(&after["revision_number"]) > int64(&web["revision_number"]),
        "revision {} after {}",
        after["revision_number"],
        web["revision_number"]
    );
    assert_eq!(show(&["--hint", "green"]), sorted(&[&web_id]));
    assert_eq!(
        admin_json(
            &l,
            &server,
            &["entry", "update", "--entryID", &db_id, "--downstream=false"]
        )["results"][0]["entry"]["downstream"],
        false
    );

    // --data replaces whole entries.
    let data = l.path("update.json");
    std::fs::write(
        &data,
        serde_json::json!({"entries": [{
            "id": web_id,
            "spiffe_id": {"trust_domain": "example.org", "path": "/web2"},
            "parent_id": AGENT,
            "selectors": [{"type": "unix", "value": "uid:1003"}],
            "x509_svid_ttl": 300,
        }]})
        .to_string(),
    )
    .unwrap();
    let replaced = admin_json(
        &l,
        &server,
        &["entry", "update", "--data", data.to_str().unwrap()],
    );
    let after = &replaced["results"][0]["entry"];
    assert_eq!(after["spiffe_id"]["path"], "/web2");
    assert_eq!(after["hint"], "");
    assert_eq!(after["federates_with"], serde_json::json!([]));
    assert_eq!(show(&["--selector", "unix:uid:1003"]), sorted(&[&web_id]));

    let deleted = admin_json(&l, &server, &["entry", "delete", "--entry-id", &db_id]);
    assert_eq!(deleted["results"][0]["id"], db_id.as_str());
    assert_eq!(deleted["results"][0]["status"]["code"], 0);
    assert_eq!(count(&["--downstream"]), 0);
    assert_eq!(count(&[]), 2);

    // SPIRE's delete file deletes every ID it lists; pretty output has a line per entry.
    let ids = l.path("delete.json");
    std::fs::write(
        &ids,
        serde_json::json!({"ids": [&web_id, &cache_id]}).to_string(),
    )
    .unwrap();
    let out = admin_ok(
        &l,
        &server,
        &["entry", "delete", "--data", ids.to_str().unwrap()],
    );
    for id in [&web_id, &cache_id] {
        assert!(
            out.contains(&format!("Deleted entry with ID: {id}")),
            "{out}"
        );
    }
    assert_eq!(count(&[]), 0);
}

#[test]
fn entry_commands_refuse_bad_input_naming_it() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let base = [
        "entry",
        "create",
        "--parent-id",
        AGENT,
        "--selector",
        "unix:uid:1",
    ];

    admin_refused(
        &l,
        &server,
        &[&base[..], &["--spiffe-id", "spiffe://Example.org/x"]].concat(),
        &["spiffe://Example.org/x"],
    );
    admin_refused(
        &l,
        &server,
        &[
            "entry",
            "create",
            "--spiffe-id",
            WEB,
            "--parent-id",
            AGENT,
            "--selector",
            "unix",
        ],
        &["\"unix\"", "selector"],
    );
    admin_refused(
        &l,
        &server,
        &[
            "entry",
            "show",
            "--selector",
            "unix:uid:1",
            "--match-selectors-on",
            "most",
        ],
        &["most", "superset"],
    );
    admin_refused(
        &l,
        &server,
        &["entry", "count", "--federates-with", "bad%td"],
        &["bad%td"],
    );
    admin_refused(
        &l,
        &server,
        &[&base[..], &["--spiffe-id", WEB, "--x509-svid-ttl", "soon"]].concat(),
        &["soon"],
    );

    // Refusals that come from the server name the entry too.
    admin_ok(&l, &server, &[&base[..], &["--spiffe-id", WEB]].concat());
    admin_refused(
        &l,
        &server,
        &[&base[..], &["--spiffe-id", WEB]].concat(),
        &[WEB],
    );
    let unknown = "00000000-0000-4000-8000-000000000000";
    admin_refused(
        &l,
        &server,
        &["entry", "show", "--entry-id", unknown],
        &[unknown],
    );
    admin_refused(
        &l,
        &server,
        &["entry", "update", "--entry-id", unknown, "--hint", "x"],
        &[unknown],
    );
    admin_refused(
        &l,
        &server,
        &["entry", "update", "--entry-id", unknown],
        &["nothing to update"],
    );
    admin_refused(
        &l,
        &server,
        &["entry", "delete", "--entry-id", unknown],
        &[unknown],
    );

    let data = l.path("no-id.json");
    std::fs::write(
        &data,
        r#"{"entries": [{"spiffe_id": "spiffe://example.org/a", "parent_id": "spiffe://example.org/b"}]}"#,
    )
    .unwrap();
    admin_refused(
        &l,
        &server,
        &["entry", "update", "--data", data.to_str().unwrap()],
        &["entries[0]", "id: missing"],
    );
    assert_eq!(admin_json(&l, &server, &["entry", "count"])["count"], 1);
}

/// `lanyard server <args> --output json` fails; its stdout parsed.
fn refused_json(
    l: &lanyard_testkit::Lanyard,
    server: &lanyard_testkit::Server,
    args: &[&str],
) -> Value {
    let mut full = args.to_vec();
    full.extend_from_slice(&["--output", "json"]);
    let out = admin(l, server, &full);
    assert!(!out.success, "{args:?} succeeded:\n{}", out.stdout);
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {}", out.stdout))
}

#[test]
fn json_output_reports_every_failed_item_and_command() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let web = create(
        &l,
        &server,
        &[
            "--spiffe-id",
            WEB,
            "--parent-id",
            AGENT,
            "--selector",
            "unix:uid:1",
        ],
    );

    // A batch in protobuf-JSON names: a duplicate, a good one, a client-side bad TTL, a bad
    // trust domain; each gets its own result, in order, and the good one is still created.
    let data = l.path("mixed.json");
    let item = |path: &str| {
        serde_json::json!({
            "spiffeId": {"trustDomain": "example.org", "path": path},
            "parentId": {"trustDomain": "example.org", "path": "/agent"},
            "selectors": [{"type": "unix", "value": "uid:1"}],
        })
    };
    let mut bad_ttl = item("/ttl");
    bad_ttl["x509SvidTtl"] = serde_json::json!(99_999_999_999_i64);
    let mut bad_td = item("/x");
    bad_td["federatesWith"] = serde_json::json!(["NOT a domain"]);
    std::fs::write(
        &data,
        serde_json::json!({"entries": [item("/web"), item("/new"), bad_ttl, bad_td]}).to_string(),
    )
    .unwrap();
    let v = refused_json(
        &l,
        &server,
        &["entry", "create", "--data", data.to_str().unwrap()],
    );
    let results = v["results"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(results.len(), 4, "{v}");
    assert_eq!(results[0]["status"]["code"], 6, "AlreadyExists: {v}");
    assert_eq!(results[1]["status"]["code"], 0, "{v}");
    assert_eq!(results[1]["entry"]["spiffe_id"]["path"], "/new");
    assert_eq!(results[2]["status"]["code"], 3, "{v}");
    assert!(
        results[2]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("x509_svid_ttl")
    );
    assert!(results[2]["entry"].is_null());
    assert_ne!(results[3]["status"]["code"], 0, "{v}");
    let new_id = id_of(&results[1]["entry"]);

    // Deleting two entries, one of them missing: a result per ID, in order, and a failed exit.
    let v = refused_json(
        &l,
        &server,
        &[
            "entry",
            "delete",
            "--entry-id",
            &new_id,
            "--entry-id",
            "no-such-entry",
        ],
    );
    let results = v["results"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(results.len(), 2, "{v}");
    assert_eq!(results[0]["status"]["code"], 0, "{v}");
    assert_eq!(results[0]["id"], new_id.as_str(), "{v}");
    assert_eq!(results[1]["status"]["code"], 5, "NotFound: {v}");
    assert_eq!(results[1]["id"], "no-such-entry", "{v}");
    assert_eq!(
        entry_ids(&admin_json(&l, &server, &["entry", "show"])),
        [id_of(&web)]
    );

    // A one-item update that fails is a batch too.
    let v = refused_json(
        &l,
        &server,
        &[
            "entry",
            "update",
            "--entry-id",
            "no-such-entry",
            "--hint",
            "h",
        ],
    );
    assert_eq!(v["results"][0]["status"]["code"], 5, "NotFound: {v}");

    // Other commands print one error object.
    let agent = "spiffe://example.org/spire/agent/nobody";
    for args in [
        &["agent", "show", "--spiffe-id", agent][..],
        &["agent", "evict", "--spiffe-id", agent],
        &["agent", "ban", "--spiffe-id", agent],
        &["bundle", "delete", "--id", "nowhere.org"],
        &["federation", "delete", "--id", "nowhere.org"],
    ] {
        let v = refused_json(&l, &server, args);
        assert_eq!(v["error"]["code"], "NotFound", "{args:?}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
    }
    assert_eq!(
        entry_ids(&admin_json(
            &l,
            &server,
            &["entry", "show", "--entry-id", &id_of(&web)]
        ))
        .len(),
        1
    );
    assert_serving(&l, &server);
}
