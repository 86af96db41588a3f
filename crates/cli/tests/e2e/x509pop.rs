//! x509pop node attestation between real processes, configured as in SPIRE: the server trusts
//! an operator's CA (`ca_bundle_path`), the agent holds a certificate of that CA and its key
//! (`certificate_path`, `private_key_path`) and attests without a join token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lanyard_testkit::{AgentOptions, Lanyard, ServerOptions, wait_until};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::common::*;

/// An operator's CA for node certificates, its PEM in the test directory.
struct NodeCa {
    params: CertificateParams,
    key: KeyPair,
    pem_path: PathBuf,
}

impl NodeCa {
    fn new(dir: &Path, name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let pem_path = dir.join(format!("{name}.pem"));
        std::fs::write(&pem_path, params.self_signed(&key).unwrap().pem()).unwrap();
        Self {
            params,
            key,
            pem_path,
        }
    }

    /// Writes a node certificate and key and an agent config naming them; returns the config
    /// path and the certificate's SHA-1 fingerprint.
    fn node(&self, dir: &Path, cn: &str) -> (PathBuf, String) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap();
        let cert_path = dir.join(format!("{cn}.crt.pem"));
        let key_path = dir.join(format!("{cn}.key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let conf = dir.join(format!("{cn}.conf"));
        std::fs::write(
            &conf,
            format!(
                "plugins {{\n  NodeAttestor \"x509pop\" {{\n    plugin_data {{\n      \
                 private_key_path = \"{}\"\n      certificate_path = \"{}\"\n    }}\n  }}\n}}\n",
                key_path.display(),
                cert_path.display()
            ),
        )
        .unwrap();
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            cert.der().as_ref(),
        );
        let fingerprint = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        (conf, fingerprint)
    }
}

/// A server whose config file enables x509pop with `ca`'s bundle.
fn server_trusting(l: &Lanyard, ca: &NodeCa) -> lanyard_testkit::Server {
    let conf = l.path("server.conf");
    std::fs::write(
        &conf,
        format!(
            "plugins {{\n  NodeAttestor \"x509pop\" {{\n    plugin_data {{\n      \
             ca_bundle_path = \"{}\"\n    }}\n  }}\n}}\n",
            ca.pem_path.display()
        ),
    )
    .unwrap();
    l.start_server(ServerOptions {
        extra_args: vec!["--config".into(), conf.display().to_string()],
        ..Default::default()
    })
}

fn agent_options(conf: &Path, name: &str, l: &Lanyard, wait_ready: bool) -> AgentOptions {
    AgentOptions {
        data_dir: Some(l.path(&format!("{name}-data"))),
        socket: Some(l.path(&format!("{name}.sock"))),
        wait_ready,
        extra_args: vec!["--config".into(), conf.display().to_string()],
        ..Default::default()
    }
}

#[test]
fn agent_attests_with_its_certificate_and_serves_workloads() {
    let l = lanyard();
    let ca = NodeCa::new(l.dir(), "node-ca");
    let server = server_trusting(&l, &ca);
    let (conf, fingerprint) = ca.node(l.dir(), "node-1");
    let agent = l.start_agent(&server, agent_options(&conf, "agent", &l, true));
    let agent_id = format!("spiffe://{TD}/spire/agent/x509pop/{fingerprint}");
    assert!(agent.logs().contains(&agent_id), "{}", agent.logs());

    // The node selectors are on the attested agent, as `agent show` prints them.
    let out = l.cli(&[
        "server",
        "agent",
        "show",
        "--socket",
        &server.socket_str(),
        "--spiffe-id",
        &agent_id,
        "--output",
        "json",
    ]);
    assert!(out.success, "{}", out.stderr);
    let shown: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(shown["attestation_type"], "x509pop", "{shown}");
    let selectors: Vec<String> = shown["selectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}:{}",
                s["type"].as_str().unwrap(),
                s["value"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        selectors.contains(&"x509pop:subject:cn:node-1".to_owned()),
        "{selectors:?}"
    );
    assert!(
        selectors
            .iter()
            .any(|s| s.starts_with("x509pop:ca:fingerprint:")),
        "{selectors:?}"
    );

    // A workload registered under the agent gets its identity.
    let workload = format!("spiffe://{TD}/x509pop-workload");
    register(&l, &server, &workload, &agent_id);
    wait_until(Duration::from_secs(30), "the workload SVID", || {
        let out = l.cli(&[
            "agent",
            "api",
            "fetch",
            "x509",
            "--socket",
            &agent.endpoint(),
        ]);
        out.success && out.stdout.contains(&workload)
    });

    // The same node attests again with a fresh data directory: x509pop re-attests.
    let again = l.start_agent(&server, agent_options(&conf, "again", &l, true));
    assert!(again.logs().contains(&agent_id), "{}", again.logs());
    assert!(
        server.logs().contains("Agent re-attested"),
        "{}",
        server.logs()
    );
}

#[test]
fn agent_with_a_certificate_of_another_ca_is_refused_with_the_reason() {
    let l = lanyard();
    let trusted = NodeCa::new(l.dir(), "node-ca");
    let stranger = NodeCa::new(l.dir(), "stranger-ca");
    let server = server_trusting(&l, &trusted);
    let (conf, _) = stranger.node(l.dir(), "intruder");
    let agent = l.start_agent(&server, agent_options(&conf, "intruder", &l, false));
    let logs = agent.wait_exit(Duration::from_secs(60));
    for part in [
        "the server refused x509pop attestation",
        "does not chain to the x509pop CA bundle",
        trusted.pem_path.to_str().unwrap(),
    ] {
        assert!(logs.contains(part), "{part:?} missing from {logs}");
    }
}
