//! `NodeAttestor "x509pop"` blocks: SPIRE's keys load on both sides, and every refusal names
//! the key or file with its line.

use std::path::Path;

use super::super::agent::AgentFlags;
use super::super::server::ServerFlags;

/// A CA certificate in `dir`, as an operator's agent CA bundle.
fn ca_file(dir: &Path) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let path = dir.join("agent-ca.pem");
    std::fs::write(&path, params.self_signed(&key).unwrap().pem()).unwrap();
    path.display().to_string()
}

fn server(plugin_data: &str) -> Result<lanyard_server::ServerConfig, String> {
    let text = format!(
        "server {{\n  trust_domain = \"example.org\"\n}}\nplugins {{\n  NodeAttestor \
         \"x509pop\" {{\n    plugin_data {{\n{plugin_data}\n    }}\n  }}\n}}\n"
    );
    ServerFlags::default()
        .load_text(&text, |_| None)
        .map(|s| s.config)
        .map_err(|e| e.to_string())
}

fn agent(plugin_data: &str) -> Result<lanyard_agent::AgentConfig, String> {
    let text = format!(
        "agent {{\n  trust_domain = \"example.org\"\n  server_address = \"127.0.0.1\"\n  \
         server_port = 8081\n  insecure_bootstrap = true\n}}\nplugins {{\n  NodeAttestor \
         \"x509pop\" {{\n    plugin_data {{\n{plugin_data}\n    }}\n  }}\n}}\n"
    );
    AgentFlags::default()
        .load_text(&text, |_| None)
        .map(|s| s.config)
        .map_err(|e| e.to_string())
}

#[test]
fn server_reads_spires_keys_and_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_file(dir.path());
    let config = server(&format!(
        "ca_bundle_path = \"{ca}\"\nagent_path_template = \"/cn/{{{{ .Subject.CommonName }}}}\"\n\
         max_intermediates = 2\nmode = \"external_pki\"\nverify_client_ip = false"
    ))
    .unwrap();
    let shown = format!("{:?}", config.x509pop.unwrap());
    assert!(shown.contains("roots: 1"), "{shown}");
    assert!(shown.contains("/cn/{{ .Subject.CommonName }}"), "{shown}");
    assert!(shown.contains("max_intermediates: 2"), "{shown}");

    let config = server(&format!("ca_bundle_paths = [\"{ca}\", \"{ca}\"]")).unwrap();
    let shown = format!("{:?}", config.x509pop.unwrap());
    assert!(shown.contains("roots: 2"), "{shown}");
}

#[test]
fn server_without_the_block_accepts_join_tokens_only() {
    let text = "server {\n  trust_domain = \"example.org\"\n}\n";
    let settings = ServerFlags::default().load_text(text, |_| None).unwrap();
    assert!(settings.config.x509pop.is_none());
}

#[test]
fn server_refusals_name_the_key_file_or_rule() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_file(dir.path());
    let missing = dir.path().join("missing.pem");
    for (data, expected) in [
        (
            String::new(),
            "NodeAttestor \"x509pop\" (line 5): NodeAttestor \"x509pop\" needs ca_bundle_path or \
             ca_bundle_paths"
                .to_owned(),
        ),
        (
            format!("ca_bundle_path = \"{}\"", missing.display()),
            format!(
                "NodeAttestor \"x509pop\" (line 5): x509pop CA bundle {}: cannot read it: No such \
                 file or directory",
                missing.display()
            ),
        ),
        (
            format!("ca_bundle_path = \"{ca}\"\nca_bundle_paths = [\"{ca}\"]"),
            "sets both ca_bundle_path and ca_bundle_paths (line 8): give one".to_owned(),
        ),
        (
            format!("ca_bundle_path = \"{ca}\"\nagent_path_template = \"/{{{{ .Nope }}}}\""),
            "{{ .Nope }} is not supported: Lanyard fills in only .PluginName".to_owned(),
        ),
        (
            format!("ca_bundle_path = \"{ca}\"\nmode = \"spiffe\""),
            "NodeAttestor \"x509pop\" mode \"spiffe\" (line 8) is not supported yet".to_owned(),
        ),
        (
            format!("ca_bundle_path = \"{ca}\"\nmax_intermediates = 0"),
            "max_intermediates is a whole number of at least 1".to_owned(),
        ),
        (
            format!("ca_bundle_path = \"{ca}\"\nverify_client_ip = true"),
            "\"plugin_data.verify_client_ip\" (line 8) is a SPIRE NodeAttestor \"x509pop\" key \
             that Lanyard does not implement yet"
                .to_owned(),
        ),
        (
            format!("ca_bundle_path = \"{ca}\"\ncab_bundle = 1"),
            "unknown key \"cab_bundle\" at line 8 in NodeAttestor \"x509pop\"".to_owned(),
        ),
    ] {
        let err = server(&data).unwrap_err();
        assert!(err.contains(&expected), "{expected:?} missing from {err}");
    }
}

#[test]
fn agent_reads_spires_keys() {
    let config = agent(
        "private_key_path = \"/etc/agent.key.pem\"\ncertificate_path = \"/etc/agent.crt.pem\"\n\
         intermediates_path = \"/etc/chain.pem\"",
    )
    .unwrap();
    assert_eq!(
        config.x509pop,
        Some(lanyard_agent::X509popAgentConfig {
            private_key_path: "/etc/agent.key.pem".into(),
            certificate_path: "/etc/agent.crt.pem".into(),
            intermediates_path: Some("/etc/chain.pem".into()),
        })
    );
}

#[test]
fn agent_needs_key_and_certificate() {
    let err = agent("certificate_path = \"/etc/agent.crt.pem\"").unwrap_err();
    assert_eq!(
        err,
        "NodeAttestor \"x509pop\" at line 8 has no plugin_data.private_key_path: set it to the \
         PEM file of the agent's key"
    );
    let err = agent("private_key_path = \"/k\"\nspiffe_endpoint_socket = \"/s\"").unwrap_err();
    assert!(err.contains("spiffe_endpoint_socket"), "{err}");
}

/// What `agent validate` finds wrong with the x509pop files named by `plugin_data`.
fn validate_agent(plugin_data: &str) -> Vec<String> {
    let text = format!(
        "agent {{\n  trust_domain = \"example.org\"\n  server_address = \"127.0.0.1\"\n  \
         server_port = 8081\n  insecure_bootstrap = true\n}}\nplugins {{\n  NodeAttestor \
         \"x509pop\" {{\n    plugin_data {{\n{plugin_data}\n    }}\n  }}\n}}\n"
    );
    let settings = AgentFlags::default().load_text(&text, |_| None).unwrap();
    super::super::validate::agent(&settings)
        .problems
        .into_iter()
        .filter(|p| p.starts_with("x509pop "))
        .collect()
}

/// An agent key and a certificate for it signed by a CA, as PEM files in `dir`: (ca, cert, key).
fn agent_files(dir: &Path) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["node-1".to_owned()])
        .unwrap()
        .signed_by(&key, &rcgen::Issuer::from_params(&ca_params, &ca_key))
        .unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    (
        write("ca.pem", ca.pem()),
        write("agent.crt.pem", cert.pem()),
        write("agent.key.pem", key.serialize_pem()),
    )
}

#[test]
fn validate_accepts_a_certificate_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = agent_files(dir.path());
    let problems = validate_agent(&format!(
        "private_key_path = \"{key}\"\ncertificate_path = \"{cert}\""
    ));
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn validate_refuses_the_x509pop_files_run_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = agent_files(dir.path());
    let missing = dir.path().join("missing.key.pem").display().to_string();
    for (plugin_data, expected) in [
        (
            format!("private_key_path = \"{missing}\"\ncertificate_path = \"{cert}\""),
            format!("x509pop private_key_path {missing}: cannot read it: No such file"),
        ),
        (
            format!("private_key_path = \"{ca}\"\ncertificate_path = \"{cert}\""),
            format!("x509pop private_key_path {ca}: "),
        ),
        (
            format!("private_key_path = \"{key}\"\ncertificate_path = \"/dev/null\""),
            "x509pop certificate_path /dev/null: ".to_owned(),
        ),
        (
            format!("private_key_path = \"{key}\"\ncertificate_path = \"{ca}\""),
            format!("x509pop private_key_path {key}: it is not the key of the first certificate"),
        ),
    ] {
        let problems = validate_agent(&plugin_data);
        assert!(
            problems.len() == 1 && problems[0].starts_with(&expected),
            "{expected:?} not the problem found in {problems:?}"
        );
    }
}
