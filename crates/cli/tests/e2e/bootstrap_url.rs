//! `trust_bundle_url` between real processes: the agent fetches the server's bundle over HTTPS
//! from a web server started here (its certificate from a web CA the agent is told to trust
//! through `SSL_CERT_FILE`), in PEM and in SPIFFE format, and attests with it; a plain http URL,
//! a body that is no bundle and a web server nobody vouches for are refused with the reason.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use lanyard_testkit::{Lanyard, Server, wait_until};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use crate::registration_common::admin_ok;

/// A web CA (its PEM written to `ca_pem`) and an HTTPS server on 127.0.0.1 serving `pages`.
struct WebServer {
    addr: SocketAddr,
    ca_pem: PathBuf,
}

impl WebServer {
    async fn start(dir: &Path, name: &str, pages: HashMap<&'static str, Vec<u8>>) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let ca_pem = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_pem, ca.pem()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
        let leaf = params
            .signed_by(&key, &Issuer::from_params(&ca_params, &ca_key))
            .unwrap();
        let key: PrivateKeyDer<'static> = PrivatePkcs8KeyDer::from(key.serialize_der()).into();
        let config =
            rustls::ServerConfig::builder_with_provider(lanyard_spiffe::tls::crypto_provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![CertificateDer::from(leaf.der().to_vec())], key)
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pages = Arc::new(pages);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, pages) = (acceptor.clone(), Arc::clone(&pages));
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.ends_with(b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let path = text.split(' ').nth(1).unwrap_or("/");
                    let (status, body) = match pages.get(path) {
                        Some(body) => ("200 OK", body.as_slice()),
                        None => ("404 Not Found", b"".as_slice()),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = tls.write_all(head.as_bytes()).await;
                    let _ = tls.write_all(body).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self { addr, ca_pem }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

/// `agent run` flags against `server` with `url` as the only bootstrap source.
fn agent_args(l: &Lanyard, server: &Server, name: &str, url: &str, token: &str) -> Vec<String> {
    [
        "agent",
        "run",
        "--data-dir",
        &l.path(&format!("{name}-data")).display().to_string(),
        "--socket",
        &l.path(&format!("{name}.sock")).display().to_string(),
        "--server-address",
        &server.addr,
        "--trust-bundle-url",
        url,
        "--join-token",
        token,
        "--log-level",
        "debug",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// An agent process started here, killed when dropped; its output goes to a file.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn spawn(l: &Lanyard, name: &str, args: &[String], ssl_cert_file: &Path) -> Self {
        let log = l.path(&format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_lanyard"))
            .args(args)
            .env("SSL_CERT_FILE", ssl_cert_file)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Self { child, log }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_attests_with_a_bundle_fetched_over_https_in_either_format() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let pem = admin_ok(&l, &server, &["bundle", "show"]);
    let spiffe = admin_ok(&l, &server, &["bundle", "show", "--format", "spiffe"]);
    let web = WebServer::start(
        l.dir(),
        "web",
        HashMap::from([
            ("/bundle.pem", pem.into_bytes()),
            ("/bundle.json", spiffe.into_bytes()),
        ]),
    )
    .await;

    for (name, path, format) in [
        ("pem", "/bundle.pem", None),
        ("spiffe", "/bundle.json", Some("spiffe")),
    ] {
        let token = l.generate_token(&server, &[]);
        let mut args = agent_args(&l, &server, name, &web.url(path), &token);
        if let Some(format) = format {
            args.extend(["--trust-bundle-format".into(), format.into()]);
        }
        let agent = Running::spawn(&l, name, &args, &web.ca_pem);
        wait_until(Duration::from_secs(60), "the agent to attest", || {
            agent.logs().contains("Agent started")
        });
        let logs = agent.logs();
        assert!(logs.contains("Fetched the bootstrap bundle"), "{logs}");
        assert!(logs.contains(&agent_id(&token)), "{logs}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_bundle_urls_are_refused_with_the_url_and_the_reason() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let web = WebServer::start(
        l.dir(),
        "web",
        HashMap::from([("/login", b"<html>sign in</html>".to_vec())]),
    )
    .await;
    let stranger = WebServer::start(l.dir(), "stranger", HashMap::new()).await;
    let ca = web.ca_pem.display().to_string();
    let token = l.generate_token(&server, &[]);

    let http = web.url("/login").replacen("https", "http", 1);
    let cases = [
        (
            http.clone(),
            ca.clone(),
            vec![http.as_str(), "plain http is refused"],
        ),
        (
            web.url("/login"),
            ca.clone(),
            vec!["is not a usable PEM bundle", "/login"],
        ),
        (
            web.url("/missing"),
            ca.clone(),
            vec!["answered HTTP 404", "/missing"],
        ),
        (
            web.url("/login"),
            stranger.ca_pem.display().to_string(),
            vec!["cannot connect", "invalid peer certificate"],
        ),
    ];
    for (i, (url, roots, says)) in cases.iter().enumerate() {
        let args = agent_args(&l, &server, &format!("refused-{i}"), url, &token);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = l.cli_with_env(&args, &[("SSL_CERT_FILE", roots)]);
        assert!(!out.success, "{url}: {}", out.stdout);
        let text = format!("{}{}", out.stdout, out.stderr);
        for part in says {
            assert!(text.contains(part), "{url}: {part:?} missing from {text}");
        }
    }
    // None of them reached the server.
    assert!(
        !server.logs().contains("Agent attested"),
        "{}",
        server.logs()
    );
}
