//! Interop with rust-spiffe's higher layers: `spiffe`'s X509Source and JwtSource, its offline
//! JWT-SVID validation, and an mTLS handshake between two workloads whose rustls configs come
//! from `spiffe-rustls`, all fed by a real Lanyard agent.
//!
//! Both workloads live in this test process, so the agent gives it both identities (one
//! `unix:uid` selector matches both entries); each side picks its own SVID from the source.

use std::sync::Arc;
use std::time::Duration;

use lanyard_testkit::{Agent, Lanyard};
use rustls::pki_types::ServerName;
use spiffe::X509Svid;
use spiffe::x509_source::SvidPicker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::common::*;

const SERVER_ID: &str = "spiffe://example.org/rustls/server";
const CLIENT_ID: &str = "spiffe://example.org/rustls/client";

/// Picks the SVID with one SPIFFE ID out of those the agent serves.
#[derive(Debug)]
struct ById(&'static str);

impl SvidPicker for ById {
    fn pick_svid(&self, svids: &[Arc<X509Svid>]) -> Option<usize> {
        svids
            .iter()
            .position(|s| s.spiffe_id().to_string() == self.0)
    }
}

/// A server and an agent that serve this process both `/rustls/server` and `/rustls/client`;
/// the [`Lanyard`] holds their directory, so it lives as long as they do.
async fn two_workloads() -> (Lanyard, lanyard_testkit::Server, Agent) {
    let l = lanyard();
    let (server, agent, token) = server_and_agent(&l, &[]);
    register(&l, &server, SERVER_ID, &agent_id(&token));
    register(&l, &server, CLIENT_ID, &agent_id(&token));
    // The entries may reach the agent in different syncs: wait until both SVIDs are served.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ctx = fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;
        let mut ids: Vec<String> = ctx
            .svids()
            .iter()
            .map(|s| s.spiffe_id().to_string())
            .collect();
        ids.sort();
        if ids == [CLIENT_ID, SERVER_ID] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent serves {ids:?}, not both identities\n{}",
            agent.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (l, server, agent)
}

/// An X509Source on the agent's socket that presents `id`.
async fn source_for(agent: &Agent, id: &'static str) -> spiffe::X509Source {
    let source = spiffe::X509Source::builder()
        .endpoint(agent.endpoint())
        .picker(ById(id))
        .build()
        .await
        .unwrap_or_else(|e| panic!("X509Source for {id}: {e}"));
    assert_eq!(source.svid().unwrap().spiffe_id().to_string(), id);
    source
}

/// Accepts one connection on `listener` with `config`, reads a line, answers it.
async fn serve_once(
    listener: TcpListener,
    config: rustls::ServerConfig,
) -> Result<Vec<u8>, std::io::Error> {
    let (tcp, _) = listener.accept().await?;
    let mut tls = TlsAcceptor::from(Arc::new(config)).accept(tcp).await?;
    let mut got = vec![0u8; 5];
    tls.read_exact(&mut got).await?;
    tls.write_all(b"pong!").await?;
    tls.shutdown().await?;
    Ok(got)
}

/// Connects to `port` with `config`, sends a line, reads the answer.
async fn call(port: u16, config: rustls::ClientConfig) -> Result<Vec<u8>, std::io::Error> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    // spiffe-rustls authenticates the server by the SPIFFE ID in its SVID, not by this name.
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    tls.write_all(b"ping!").await?;
    let mut got = Vec::new();
    tls.read_to_end(&mut got).await?;
    Ok(got)
}

fn server_config(source: spiffe::X509Source) -> rustls::ServerConfig {
    spiffe_rustls::mtls_server(source)
        .trust_domain_policy(spiffe_rustls::LocalOnly(
            spiffe::TrustDomain::new(TD).unwrap(),
        ))
        .authorize(spiffe_rustls::exact([CLIENT_ID]).unwrap())
        .build()
        .unwrap()
}

fn client_config(source: spiffe::X509Source, server: &str) -> rustls::ClientConfig {
    spiffe_rustls::mtls_client(source)
        .trust_domain_policy(spiffe_rustls::LocalOnly(
            spiffe::TrustDomain::new(TD).unwrap(),
        ))
        .authorize(spiffe_rustls::exact([server]).unwrap())
        .build()
        .unwrap()
}

/// One handshake: the server's result and the client's.
async fn handshake(
    server: rustls::ServerConfig,
    client: rustls::ClientConfig,
) -> (
    Result<Vec<u8>, std::io::Error>,
    Result<Vec<u8>, std::io::Error>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = tokio::spawn(serve_once(listener, server));
    let called = tokio::time::timeout(Duration::from_secs(10), call(port, client))
        .await
        .expect("the client finishes");
    let served = tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("the server finishes")
        .unwrap();
    (served, called)
}

#[tokio::test(flavor = "multi_thread")]
async fn spiffe_rustls_workloads_authenticate_each_other_with_agent_svids() {
    let (_l, _server, agent) = two_workloads().await;
    let server_source = source_for(&agent, SERVER_ID).await;
    let client_source = source_for(&agent, CLIENT_ID).await;

    let (served, called) = handshake(
        server_config(server_source.clone()),
        client_config(client_source.clone(), SERVER_ID),
    )
    .await;
    assert_eq!(
        served.unwrap(),
        b"ping!",
        "the server read the client's bytes"
    );
    assert_eq!(
        called.unwrap(),
        b"pong!",
        "the client read the server's bytes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn spiffe_rustls_refuses_a_peer_that_is_not_the_authorized_id() {
    let (_l, _server, agent) = two_workloads().await;
    let server_source = source_for(&agent, SERVER_ID).await;
    let client_source = source_for(&agent, CLIENT_ID).await;

    // The client expects another service: its verifier rejects the server's SVID.
    let (served, called) = handshake(
        server_config(server_source.clone()),
        client_config(
            client_source.clone(),
            "spiffe://example.org/rustls/elsewhere",
        ),
    )
    .await;
    let err = called.expect_err("the client must refuse /rustls/server");
    assert!(
        err.to_string()
            .contains("not authorized: spiffe://example.org/rustls/server"),
        "{err}"
    );
    assert!(served.is_err(), "the server sees the handshake fail");

    // The server accepts only /rustls/client: a client presenting /rustls/server is refused.
    let (served, called) = handshake(
        server_config(server_source.clone()),
        client_config(server_source.clone(), SERVER_ID),
    )
    .await;
    let err = served.expect_err("the server must refuse /rustls/server");
    assert!(
        format!("{err:?}").contains("UnauthorizedSpiffeId"),
        "{err:?}"
    );
    assert!(called.is_err(), "the client sees the handshake fail");
}

#[tokio::test(flavor = "multi_thread")]
async fn spiffe_jwt_source_fetches_svids_that_validate_offline_against_its_bundles() {
    let (_l, _server, agent) = two_workloads().await;
    let source = spiffe::JwtSource::builder()
        .endpoint(agent.endpoint())
        .build()
        .await
        .unwrap();
    let td = spiffe::TrustDomain::new(TD).unwrap();
    assert!(source.try_bundle_for_trust_domain(&td).is_some());

    let client_id = spiffe::SpiffeId::new(CLIENT_ID).unwrap();
    let svid = source
        .fetch_jwt_svid_with_id(["rustls-jwt", "second"], Some(&client_id))
        .await
        .unwrap();
    assert_eq!(svid.spiffe_id(), &client_id);

    // Offline validation with the source as the bundle source: signature, audience, expiry.
    let checked = spiffe::JwtSvid::parse_and_validate(svid.token(), &source, &["rustls-jwt"])
        .expect("the token validates against the agent's JWT bundle");
    assert_eq!(checked.spiffe_id(), &client_id);
    assert_eq!(checked.audience(), ["rustls-jwt", "second"]);
    assert!(
        spiffe::JwtSvid::parse_and_validate(svid.token(), &source, &["someone-else"]).is_err(),
        "a token is refused for an audience it does not carry"
    );

    // A token whose signature does not verify is refused: change a character in the middle
    // of the signature (the last one may only carry padding bits).
    let token = svid.token();
    let at = token.rfind('.').unwrap() + 10;
    let swapped = if &token[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{swapped}{}", &token[..at], &token[at + 1..]);
    assert!(spiffe::JwtSvid::parse_and_validate(&forged, &source, &["rustls-jwt"]).is_err());
}
