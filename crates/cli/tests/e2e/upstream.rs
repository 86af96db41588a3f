//! `UpstreamAuthority "disk"`: the server's CA is an intermediate under an operator's CA, and
//! what the server and the agent hand out validates against the operator's root alone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lanyard_testkit::{AgentOptions, Lanyard, Server, ServerOptions};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::CertificateDer;

use crate::common::*;

/// The operator's root and the intermediate the server's CA is signed by, as PEM files.
struct OperatorPki {
    root: PathBuf,
    intermediate: PathBuf,
    intermediate_key: PathBuf,
    root_der: CertificateDer<'static>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = true;
    params
}

fn operator_pki(dir: &Path) -> OperatorPki {
    let root_key = KeyPair::generate().unwrap();
    let root_params = ca_params("Operator Root");
    let root = root_params.self_signed(&root_key).unwrap();
    let mid_key = KeyPair::generate().unwrap();
    let mid = ca_params("Operator Intermediate")
        .signed_by(&mid_key, &Issuer::from_params(&root_params, &root_key))
        .unwrap();

    let pki = OperatorPki {
        root: dir.join("root.crt"),
        intermediate: dir.join("intermediate.crt"),
        intermediate_key: dir.join("intermediate.key"),
        root_der: root.der().clone(),
    };
    write_pem(&pki.root, &[root.der()]);
    write_pem(&pki.intermediate, &[mid.der()]);
    std::fs::write(&pki.intermediate_key, mid_key.serialize_pem()).unwrap();
    pki
}

fn upstream_file(l: &Lanyard, pki: &OperatorPki, key: &Path) -> String {
    let text = format!(
        r#"
plugins {{
    UpstreamAuthority "disk" {{
        plugin_data {{
            cert_file_path = "{cert}"
            key_file_path = "{key}"
            bundle_file_path = "{bundle}"
        }}
    }}
}}
"#,
        cert = pki.intermediate.display(),
        key = key.display(),
        bundle = pki.root.display(),
    );
    let path = l.path("upstream.conf");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `openssl verify -CAfile root -untrusted chain chain` prints `OK` (the leaf is the first
/// certificate of `chain`; the rest are intermediates).
fn openssl_verify_chain(root: &Path, chain: &Path) {
    openssl_verify_with(root, Some(chain), chain);
}

fn start(l: &Lanyard, conf: &str) -> Server {
    l.start_server(ServerOptions {
        extra_args: vec!["--config".into(), conf.into()],
        ..Default::default()
    })
}

#[test]
fn validate_loads_the_upstream_files() {
    let l = lanyard();
    let pki = operator_pki(l.dir());
    let data = l.path("data");
    let data = data.to_str().unwrap();

    let good = upstream_file(&l, &pki, &pki.intermediate_key);
    let out = l.cli(&["server", "validate", "--config", &good, "--data-dir", data]);
    assert!(out.success, "{}\n{}", out.stdout, out.stderr);

    // SEC1 ("EC PRIVATE KEY"), as openssl writes EC keys by default.
    if openssl_available() {
        let sec1 = l.path("intermediate.sec1.key");
        let converted = Command::new("openssl")
            .args(["ec", "-in"])
            .arg(&pki.intermediate_key)
            .arg("-out")
            .arg(&sec1)
            .output()
            .expect("run openssl");
        assert!(converted.status.success());
        assert!(
            std::fs::read_to_string(&sec1)
                .unwrap()
                .contains("BEGIN EC PRIVATE KEY")
        );
        let conf = upstream_file(&l, &pki, &sec1);
        let out = l.cli(&["server", "validate", "--config", &conf, "--data-dir", data]);
        assert!(out.success, "{}\n{}", out.stdout, out.stderr);
    }

    let wrong_key = l.path("wrong.key");
    std::fs::write(&wrong_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let bad = upstream_file(&l, &pki, &wrong_key);
    let out = l.cli(&["server", "validate", "--config", &bad, "--data-dir", data]);
    assert!(!out.success, "{}", out.stdout);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("does not match the public key of the certificate"),
        "{text}"
    );
}

#[test]
fn validate_refuses_an_upstream_key_that_is_a_fifo_without_hanging() {
    let l = lanyard();
    let pki = operator_pki(l.dir());
    let data = l.path("data");
    let fifo = l.path("upstream.fifo");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    let conf = upstream_file(&l, &pki, &fifo);
    let out = l.cli(&[
        "server",
        "validate",
        "--config",
        &conf,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(!out.success, "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!(
            "cannot read upstream key {}: it is a FIFO: only a regular file is read",
            fifo.display()
        )),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn svids_of_an_upstream_signed_server_verify_against_the_upstream_root() {
    let l = lanyard();
    let pki = operator_pki(l.dir());
    let conf = upstream_file(&l, &pki, &pki.intermediate_key);
    let server = start(&l, &conf);

    // The bundle is the operator's root, not the server's CA.
    let out = l.cli(&["server", "bundle", "show", "--socket", &server.socket_str()]);
    assert!(out.success, "{}", out.stderr);
    let shown = lanyard_spiffe::x509::parse_pem_certs(out.stdout.as_bytes()).unwrap();
    assert_eq!(shown, vec![pki.root_der.clone()]);

    // An operator-minted SVID: leaf, server CA, upstream intermediate.
    let dir = l.path("minted");
    let out = mint_x509(&l, &server, &format!("spiffe://{TD}/x"), &dir, &[]);
    assert!(out.success, "{}\n{}", out.stdout, out.stderr);
    let chain =
        lanyard_spiffe::x509::parse_pem_certs(&std::fs::read(dir.join("svid.pem")).unwrap())
            .unwrap();
    assert_eq!(chain.len(), 3, "leaf, server CA, upstream intermediate");
    if openssl_available() {
        openssl_verify_chain(&pki.root, &dir.join("svid.pem"));
        openssl_verify_chain(&dir.join("bundle.pem"), &dir.join("svid.pem"));
    }

    // The agent path: the agent trusts the root only, and so do its workloads.
    let token = l.generate_token(&server, &[]);
    let agent = l.start_agent(
        &server,
        AgentOptions {
            join_token: Some(token.clone()),
            ..Default::default()
        },
    );
    register(
        &l,
        &server,
        &format!("spiffe://{TD}/web"),
        &agent_id(&token),
    );
    fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;
    let out_dir = l.path("fetched");
    let out = fetch_x509(&l, &agent, &out_dir);
    assert!(out.success, "{}\n{}", out.stdout, out.stderr);
    let bundle = lanyard_spiffe::x509::parse_pem_certs(
        &std::fs::read(out_dir.join("bundle.0.pem")).unwrap(),
    )
    .unwrap();
    assert_eq!(bundle, vec![pki.root_der.clone()]);
    if openssl_available() {
        openssl_verify_chain(&pki.root, &out_dir.join("svid.0.pem"));
    }
}
