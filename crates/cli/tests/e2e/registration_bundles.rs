//! `server bundle show|list|set|delete|count` through the binary against a real server: PEM
//! and SPIFFE formats both ways, the three delete modes, and refused input.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::*;
use crate::registration_common::*;

/// The trust domains of a `bundle list --output json` answer, sorted.
fn listed(v: &Value) -> Vec<String> {
    let mut tds: Vec<String> = v["bundles"]
        .as_array()
        .unwrap_or_else(|| panic!("no bundles array: {v}"))
        .iter()
        .map(|b| b["trust_domain"].as_str().unwrap().to_owned())
        .collect();
    tds.sort();
    tds
}

#[test]
fn bundle_commands_show_set_list_and_delete() {
    let l = lanyard();
    let server = l.start_server(Default::default());

    let own = admin_json(&l, &server, &["bundle", "show"]);
    assert_eq!(own["trust_domain"], TD);
    let authorities = own["x509_authorities"].as_array().unwrap();
    assert!(!authorities.is_empty(), "{own}");
    let first_der = authorities[0]["asn1"].as_str().unwrap().to_owned();
    let pem = admin_ok(&l, &server, &["bundle", "show"]);
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let doc: Value = serde_json::from_str(&admin_ok(
        &l,
        &server,
        &["bundle", "show", "--format", "spiffe"],
    ))
    .unwrap();
    let keys = doc["keys"].as_array().unwrap();
    let x5c: Vec<&str> = keys
        .iter()
        .filter(|k| k["use"] == "x509-svid")
        .map(|k| k["x5c"][0].as_str().unwrap())
        .collect();
    // The SPIFFE document and the API JSON carry the same certificate bytes (both base64).
    assert!(x5c.contains(&first_der.as_str()), "{doc}\n{own}");
    assert_eq!(admin_json(&l, &server, &["bundle", "count"])["count"], 1);
    assert_eq!(
        listed(&admin_json(&l, &server, &["bundle", "list"])),
        Vec::<String>::new()
    );

    // PEM from a file, a SPIFFE document from a file and from stdin.
    let pem_path = own_bundle_file(&l, &server, "own.pem", "pem");
    let doc_path = own_bundle_file(&l, &server, "own.json", "spiffe");
    let set = admin_json(
        &l,
        &server,
        &["bundle", "set", "--id", "other.org", "--path", &pem_path],
    );
    assert_eq!(set["results"][0]["status"]["code"], 0);
    assert_eq!(set["results"][0]["bundle"]["trust_domain"], "other.org");
    assert_eq!(
        set["results"][0]["bundle"]["x509_authorities"][0]["asn1"],
        first_der.as_str()
    );
    admin_ok(
        &l,
        &server,
        &[
            "bundle",
            "set",
            "--id",
            "spiffe://third.org",
            "--path",
            &doc_path,
            "--format",
            "spiffe",
        ],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_lanyard"))
        .args([
            "server",
            "bundle",
            "set",
            "--id",
            "fourth.org",
            "--format",
            "spiffe",
        ])
        .args(["--socket", &server.socket_str()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&doc_path).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(admin_json(&l, &server, &["bundle", "count"])["count"], 4);
    assert_eq!(
        admin_ok(&l, &server, &["bundle", "count"]).trim(),
        "4 bundles"
    );
    assert_eq!(
        listed(&admin_json(&l, &server, &["bundle", "list"])),
        ["fourth.org", "other.org", "third.org"]
    );
    let one = admin_json(&l, &server, &["bundle", "list", "--id", "third.org"]);
    assert_eq!(one["trust_domain"], "third.org");
    let text = admin_ok(&l, &server, &["bundle", "list"]);
    assert!(
        text.contains("* other.org") && text.contains("BEGIN CERTIFICATE"),
        "{text}"
    );
    let foreign_doc: Value = serde_json::from_str(&admin_ok(
        &l,
        &server,
        &["bundle", "list", "--id", "other.org", "--format", "spiffe"],
    ))
    .unwrap();
    assert!(
        !foreign_doc["keys"].as_array().unwrap().is_empty(),
        "{foreign_doc}"
    );

    // Delete modes, with entries that federate with the bundles.
    let entry = |td: &str| {
        admin_json(
            &l,
            &server,
            &[
                "entry",
                "create",
                "--spiffe-id",
                &format!("spiffe://{TD}/{td}"),
                "--parent-id",
                "spiffe://example.org/agent",
                "--selector",
                "unix:uid:1",
                "--federates-with",
                td,
            ],
        )["results"][0]["entry"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (kept, dropped) = (entry("other.org"), entry("third.org"));
    admin_refused(
        &l,
        &server,
        &["bundle", "delete", "--id", "other.org"],
        &["other.org"],
    );
    let deleted = admin_json(
        &l,
        &server,
        &[
            "bundle",
            "delete",
            "--id",
            "other.org",
            "--mode",
            "dissociate",
        ],
    );
    assert_eq!(deleted["results"][0]["trust_domain"], "other.org");
    let after = admin_json(&l, &server, &["entry", "show", "--entry-id", &kept]);
    assert_eq!(after["entries"][0]["federates_with"], serde_json::json!([]));
    admin_ok(
        &l,
        &server,
        &["bundle", "delete", "--id", "third.org", "--mode", "delete"],
    );
    admin_refused(
        &l,
        &server,
        &["entry", "show", "--entry-id", &dropped],
        &[&dropped],
    );
    admin_ok(&l, &server, &["bundle", "delete", "--id", "fourth.org"]);
    assert_eq!(admin_json(&l, &server, &["bundle", "count"])["count"], 1);
}

#[test]
fn bundle_commands_refuse_bad_input_naming_it() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let junk = l.path("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let junk = junk.to_str().unwrap();

    admin_refused(
        &l,
        &server,
        &["bundle", "show", "--format", "der"],
        &["der"],
    );
    admin_refused(
        &l,
        &server,
        &["bundle", "set", "--id", "Other.org", "--path", junk],
        &["Other.org"],
    );
    admin_refused(
        &l,
        &server,
        &["bundle", "set", "--id", "other.org", "--path", junk],
        &[junk],
    );
    admin_refused(
        &l,
        &server,
        &[
            "bundle",
            "set",
            "--id",
            "other.org",
            "--path",
            junk,
            "--format",
            "spiffe",
        ],
        &[junk],
    );
    admin_refused(
        &l,
        &server,
        &[
            "bundle",
            "set",
            "--id",
            "other.org",
            "--path",
            "/nonexistent/b.pem",
        ],
        &["/nonexistent/b.pem"],
    );
    let pem = own_bundle_file(&l, &server, "own.pem", "pem");
    admin_ok(
        &l,
        &server,
        &["bundle", "set", "--id", "other.org", "--path", &pem],
    );
    admin_refused(
        &l,
        &server,
        &["bundle", "delete", "--id", "other.org", "--mode", "purge"],
        &["purge", "dissociate"],
    );
    admin_refused(
        &l,
        &server,
        &["bundle", "delete", "--id", "none.org"],
        &["none.org"],
    );
    admin_refused(
        &l,
        &server,
        &["bundle", "list", "--id", "none.org"],
        &["none.org"],
    );
    // The server's own trust domain is not a foreign bundle to overwrite.
    admin_refused(
        &l,
        &server,
        &["bundle", "set", "--id", TD, "--path", &pem],
        &[TD],
    );
    assert_eq!(admin_json(&l, &server, &["bundle", "count"])["count"], 2);
}
