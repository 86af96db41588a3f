//! Forced rotation through the CLI against a real server: prepare, activate, taint and revoke
//! the X.509 authority, then check what `server bundle show` prints (with `openssl`), and the
//! same sequence for JWT keys.

use std::process::Command;

use lanyard_testkit::{Lanyard, Server, ServerOptions};
use serde_json::Value;

use crate::common::*;

fn la_fails(l: &Lanyard, server: &Server, args: &[&str]) -> String {
    let socket = server.socket_str();
    let mut full = vec!["server", "localauthority"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--socket", &socket]);
    let out = l.cli(&full);
    assert!(!out.success, "{full:?} succeeded:\n{}", out.stdout);
    out.stderr
}

/// The PEM blocks `server bundle show` prints.
fn bundle_pems(l: &Lanyard, server: &Server) -> Vec<String> {
    let out = l.cli(&["server", "bundle", "show", "--socket", &server.socket_str()]);
    assert!(out.success, "{}", out.stderr);
    out.stdout
        .split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|b| b.trim_start().to_owned())
        .collect()
}

/// The subject key identifier openssl reads from a PEM certificate, as lowercase hex.
fn openssl_ski(l: &Lanyard, pem: &str) -> String {
    let path = l.path("one.pem");
    std::fs::write(&path, pem).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&path)
        .output()
        .expect("run openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "openssl x509 failed: {text}");
    let mut lines = text.lines();
    lines
        .find(|l| l.contains("X509v3 Subject Key Identifier"))
        .and_then(|_| lines.next())
        .unwrap_or_else(|| panic!("no subject key identifier in:\n{text}"))
        .trim()
        .replace(':', "")
        .to_lowercase()
}

#[test]
fn x509_prepare_activate_taint_revoke_through_the_cli() {
    let l = lanyard();
    let server = l.start_server(ServerOptions::default());

    let shown = localauthority(&l, &server, &["x509", "show"]);
    let first = authority_id(&shown["active"]);
    assert_eq!(shown["prepared"], Value::Null);
    assert_eq!(shown["active"]["tainted"], false);

    let stderr = la_fails(&l, &server, &["x509", "taint", "--authority-id", &first]);
    assert!(stderr.contains("the active authority"), "{stderr}");

    let prepared = authority_id(&localauthority(&l, &server, &["x509", "prepare"]));
    assert_eq!(bundle_pems(&l, &server).len(), 2);
    localauthority(
        &l,
        &server,
        &["x509", "activate", "--authority-id", &prepared],
    );
    let stderr = la_fails(&l, &server, &["x509", "revoke", "--authority-id", &first]);
    assert!(stderr.contains("not tainted"), "{stderr}");
    let tainted = localauthority(&l, &server, &["x509", "taint", "--authority-id", &first]);
    assert_eq!(tainted["tainted"], true);

    let shown = localauthority(&l, &server, &["x509", "show"]);
    assert_eq!(authority_id(&shown["active"]), prepared);
    assert_eq!(authority_id(&shown["old"]), first);
    assert_eq!(shown["old"]["tainted"], true);
    assert_eq!(shown["active"]["tainted"], false);

    // The pretty form names every slot.
    let out = l.cli(&[
        "server",
        "localauthority",
        "x509",
        "show",
        "--socket",
        &server.socket_str(),
    ]);
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout.contains("Old X.509 authority:") && out.stdout.contains("Tainted      : true"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Prepared X.509 authority: none"),
        "{}",
        out.stdout
    );

    localauthority(&l, &server, &["x509", "revoke", "--authority-id", &first]);
    let pems = bundle_pems(&l, &server);
    assert_eq!(pems.len(), 1, "the revoked certificate is gone");
    if openssl_available() {
        let skis: Vec<String> = pems.iter().map(|p| openssl_ski(&l, p)).collect();
        assert_eq!(skis, vec![prepared.clone()]);
    }
    let shown = localauthority(&l, &server, &["x509", "show"]);
    assert_eq!(shown["old"], Value::Null);
}

#[test]
fn jwt_prepare_activate_taint_revoke_through_the_cli() {
    let l = lanyard();
    let server = l.start_server(ServerOptions::default());

    let first = authority_id(&localauthority(&l, &server, &["jwt", "show"])["active"]);
    let prepared = authority_id(&localauthority(&l, &server, &["jwt", "prepare"]));
    let stderr = la_fails(&l, &server, &["jwt", "activate", "--authority-id", &first]);
    assert!(stderr.contains("not the prepared authority"), "{stderr}");
    localauthority(
        &l,
        &server,
        &["jwt", "activate", "--authority-id", &prepared],
    );
    localauthority(&l, &server, &["jwt", "taint", "--authority-id", &first]);
    let shown = localauthority(&l, &server, &["jwt", "show"]);
    assert_eq!(shown["old"]["tainted"], true);
    localauthority(&l, &server, &["jwt", "revoke", "--authority-id", &first]);
    let shown = localauthority(&l, &server, &["jwt", "show"]);
    assert_eq!(authority_id(&shown["active"]), prepared);
    assert_eq!(shown["old"], Value::Null);
}
