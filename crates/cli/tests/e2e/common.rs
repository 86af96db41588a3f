//! Helpers shared by the end-to-end tests.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lanyard_testkit::{Agent, AgentOptions, CliOutput, Lanyard, Server, ServerOptions};
use serde_json::Value;

pub const TD: &str = "example.org";

/// The lanyard binary built for this test run.
pub fn lanyard() -> Lanyard {
    Lanyard::new(env!("CARGO_BIN_EXE_lanyard"))
}

/// This test process's uid, for `unix:uid:` selectors.
pub fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// `spiffe://example.org/spire/agent/join_token/<token>`.
pub fn agent_id(token: &str) -> String {
    format!("spiffe://{TD}/spire/agent/join_token/{token}")
}

/// A server and an agent attested with a fresh join token.
pub fn server_and_agent(l: &Lanyard, server_args: &[&str]) -> (Server, Agent, String) {
    let server = l.start_server(ServerOptions {
        extra_args: server_args.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    });
    let token = l.generate_token(&server, &[]);
    let agent = l.start_agent(
        &server,
        AgentOptions {
            join_token: Some(token.clone()),
            ..Default::default()
        },
    );
    (server, agent, token)
}

/// `server entry create` for this process's uid; returns the CLI output.
pub fn register(l: &Lanyard, server: &Server, spiffe_id: &str, parent_id: &str) {
    let selector = format!("unix:uid:{}", uid());
    let out = l.cli(&[
        "server",
        "entry",
        "create",
        "--socket",
        &server.socket_str(),
        "--spiffe-id",
        spiffe_id,
        "--parent-id",
        parent_id,
        "--selector",
        &selector,
    ]);
    assert!(
        out.success,
        "entry create failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.contains(spiffe_id), "{}", out.stdout);
}

/// Fetches an X.509 context with the independent `spiffe` crate, retrying until the agent
/// has synced an identity for this process or `timeout` passes.
pub async fn fetch_with_spiffe_crate(agent: &Agent, timeout: Duration) -> spiffe::X509Context {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        match spiffe::WorkloadApiClient::connect_to(agent.endpoint()).await {
            Ok(client) => match client.fetch_x509_context().await {
                Ok(ctx) => return ctx,
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no X.509 context within {timeout:?}: {last}\nagent logs:\n{}",
        agent.logs()
    );
}

/// Writes DER certificates as a PEM file.
pub fn write_pem(path: &Path, ders: &[&[u8]]) {
    let certs: Vec<_> = ders
        .iter()
        .map(|d| rustls::pki_types::CertificateDer::from(d.to_vec()))
        .collect();
    std::fs::write(path, lanyard_spiffe::x509::certs_to_pem(&certs)).unwrap();
}

/// Whether `openssl` is on the PATH; CI (LANYARD_CI=1) requires it.
pub fn openssl_available() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("LANYARD_CI").is_err(),
            "LANYARD_CI is set but openssl is missing"
        );
        // Written past libtest's capture so that the skip shows in the run's output.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: openssl is not installed");
    }
    found
}

/// `openssl verify -CAfile bundle svid` prints `OK`.
pub fn openssl_verify(bundle: &Path, svid: &Path) {
    openssl_verify_with(bundle, None, svid);
}

/// `openssl verify -CAfile bundle [-untrusted chain] svid` prints `OK`.
pub fn openssl_verify_with(bundle: &Path, untrusted: Option<&Path>, svid: &Path) {
    let mut command = Command::new("openssl");
    command.args(["verify", "-CAfile"]).arg(bundle);
    if let Some(chain) = untrusted {
        command.arg("-untrusted").arg(chain);
    }
    let out = command.arg(svid).output().expect("run openssl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with(": OK"),
        "openssl verify failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Checks that the SVID's private key belongs to its leaf certificate, independently of
/// Lanyard's code: derive the public key with rcgen and compare with the certificate's.
pub fn assert_key_matches(svid: &spiffe::X509Svid) {
    let key = rcgen::KeyPair::try_from(svid.private_key().as_bytes()).expect("parse PKCS#8 key");
    let (_, cert) =
        x509_parser::parse_x509_certificate(svid.leaf().as_bytes()).expect("parse leaf");
    assert_eq!(
        cert.public_key().raw,
        rcgen::PublicKeyData::subject_public_key_info(&key).as_slice(),
        "the private key does not match the leaf certificate"
    );
}

/// `server x509 mint` of `spiffe_id` with `extra` flags, writing its files to `dir`.
pub fn mint_x509(
    l: &Lanyard,
    server: &Server,
    spiffe_id: &str,
    dir: &Path,
    extra: &[&str],
) -> CliOutput {
    let socket = server.socket_str();
    let mut args = vec!["server", "x509", "mint", "--socket", &socket];
    args.extend_from_slice(&["--spiffe-id", spiffe_id]);
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--write", dir.to_str().unwrap()]);
    l.cli(&args)
}

/// `agent api fetch x509` from `agent`, writing its files to `dir`.
pub fn fetch_x509(l: &Lanyard, agent: &Agent, dir: &Path) -> CliOutput {
    l.cli(&[
        "agent",
        "api",
        "fetch",
        "x509",
        "--socket",
        &agent.endpoint(),
        "--write",
        dir.to_str().unwrap(),
    ])
}

/// `server localauthority <args> --output json` succeeds; what it prints.
pub fn localauthority(l: &Lanyard, server: &Server, args: &[&str]) -> Value {
    let socket = server.socket_str();
    let mut full = vec!["server", "localauthority"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--socket", &socket, "--output", "json"]);
    let out = l.cli(&full);
    assert!(
        out.success,
        "{full:?} failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// The `authority_id` of one authority `localauthority` printed.
pub fn authority_id(v: &Value) -> String {
    v["authority_id"].as_str().unwrap().to_owned()
}
