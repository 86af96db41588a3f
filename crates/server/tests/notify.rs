//! `lanyard.agent.v1.Notify/Watch`: an attested agent hears about changes to what it syncs
//! within a second; nobody else may watch.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration test helpers assert by panicking"
)]

mod support;
#[path = "support/tls.rs"]
mod tls;

use std::time::{Duration, Instant};

use lanyard_datastore::{Datastore, NewEntry, SqlDatastore};
use lanyard_proto::lanyard::agent::v1::{
    ChangeReason, WatchRequest, WatchResponse, notify_client::NotifyClient,
};
use lanyard_proto::spire::api::server::agent::v1::{BanAgentRequest, agent_client::AgentClient};
use lanyard_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, entry_client::EntryClient,
};
use lanyard_proto::spire::api::server::localauthority::v1::{
    PrepareX509AuthorityRequest, local_authority_client::LocalAuthorityClient,
};
use lanyard_proto::spire::api::types;
use lanyard_server::RunningServer;
use lanyard_spiffe::{Selector, SpiffeId, X509Svid};
use tonic::transport::Channel;
use tonic::{Code, Streaming};

use support::{admin, config};
use tls::{AgentApi, wire};

/// How long a notification may take in these tests.
const PROMPT: Duration = Duration::from_secs(1);

async fn start() -> (tempfile::TempDir, RunningServer, AgentApi) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // Only local writes here: the feed poll must not be what delivers them.
    config.cache_reload_interval = Duration::from_secs(3600);
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let api = AgentApi::new(server.agent_addr(), admin(&config).await).await;
    (dir, server, api)
}

async fn watch(channel: Channel) -> Result<Streaming<WatchResponse>, tonic::Status> {
    Ok(NotifyClient::new(channel)
        .watch(WatchRequest {})
        .await?
        .into_inner())
}

/// The next message, which must come within [`PROMPT`].
async fn next(stream: &mut Streaming<WatchResponse>) -> Result<WatchResponse, tonic::Status> {
    tokio::time::timeout(PROMPT, stream.message())
        .await
        .expect("no message within 1 s")
        .map(|m| m.expect("the stream ended"))
}

async fn create_entry(admin: &Channel, parent: &SpiffeId, path: &str) {
    let results = EntryClient::new(admin.clone())
        .batch_create_entry(BatchCreateEntryRequest {
            entries: vec![types::Entry {
                spiffe_id: Some(tls::id(path)),
                parent_id: Some(wire(parent)),
                selectors: vec![types::Selector {
                    r#type: "unix".into(),
                    value: "uid:1000".into(),
                }],
                ..Default::default()
            }],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results[0].status.as_ref().unwrap().code, 0, "{results:?}");
}

fn reasons(message: &WatchResponse) -> Vec<ChangeReason> {
    message
        .reasons
        .iter()
        .map(|r| ChangeReason::try_from(*r).unwrap())
        .collect()
}

async fn agent_watch(api: &AgentApi, agent: &X509Svid) -> (Streaming<WatchResponse>, u64) {
    let mut stream = watch(api.channel(Some(agent)).await).await.unwrap();
    let opened = next(&mut stream).await.unwrap();
    assert_eq!(reasons(&opened), [ChangeReason::Opened]);
    (stream, opened.revision)
}

#[tokio::test]
async fn an_entry_for_the_agent_is_announced_within_a_second() {
    let (_dir, server, api) = start().await;
    let agent = api.attest(None).await;
    let (mut stream, opened) = agent_watch(&api, &agent).await;

    let started = Instant::now();
    create_entry(&api.admin, agent.spiffe_id(), "/web").await;
    let message = next(&mut stream).await.unwrap();
    println!("entry created -> watch message: {:?}", started.elapsed());
    assert_eq!(reasons(&message), [ChangeReason::Entries]);
    assert!(
        message.revision > opened,
        "{} after {opened}",
        message.revision
    );

    // Descendants count too: an entry parented to the workload's ID.
    let web = SpiffeId::parse("spiffe://example.org/web").unwrap();
    create_entry(&api.admin, &web, "/web/child").await;
    let child = next(&mut stream).await.unwrap();
    assert_eq!(reasons(&child), [ChangeReason::Entries]);
    assert!(child.revision > message.revision);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_entry_written_by_another_server_is_announced_after_the_feed_poll() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.cache_reload_interval = Duration::from_millis(100);
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let api = AgentApi::new(server.agent_addr(), admin(&config).await).await;
    let agent = api.attest(None).await;
    let (mut stream, _) = agent_watch(&api, &agent).await;

    // "Another server": a second handle on the same SQLite file, writing directly.
    let other = SqlDatastore::open(&config.data_dir.join("datastore.sqlite3"))
        .await
        .unwrap();
    other
        .create_entry(NewEntry::new(
            SpiffeId::parse("spiffe://example.org/elsewhere").unwrap(),
            agent.spiffe_id().clone(),
            vec![Selector::new("unix", "uid:1").unwrap()],
        ))
        .await
        .unwrap();
    assert_eq!(
        reasons(&next(&mut stream).await.unwrap()),
        [ChangeReason::Entries]
    );
    other.close().await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn entries_of_other_agents_are_not_announced() {
    let (_dir, server, api) = start().await;
    let watcher = api.attest(None).await;
    let other = api.attest(None).await;
    let (mut stream, _) = agent_watch(&api, &watcher).await;

    create_entry(&api.admin, other.spiffe_id(), "/elsewhere").await;
    // A stream that announced everything would have spoken by now.
    let quiet = tokio::time::timeout(Duration::from_millis(500), stream.message()).await;
    assert!(quiet.is_err(), "announced another agent's entry: {quiet:?}");

    create_entry(&api.admin, watcher.spiffe_id(), "/mine").await;
    assert_eq!(
        reasons(&next(&mut stream).await.unwrap()),
        [ChangeReason::Entries]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_new_authority_in_the_bundle_is_announced() {
    let (_dir, server, api) = start().await;
    let agent = api.attest(None).await;
    let (mut stream, _) = agent_watch(&api, &agent).await;

    LocalAuthorityClient::new(api.admin.clone())
        .prepare_x509_authority(PrepareX509AuthorityRequest {})
        .await
        .unwrap();
    assert_eq!(
        reasons(&next(&mut stream).await.unwrap()),
        [ChangeReason::Bundle]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_banned_agent_loses_its_stream() {
    let (_dir, server, api) = start().await;
    let agent = api.attest(None).await;
    let (mut stream, _) = agent_watch(&api, &agent).await;

    AgentClient::new(api.admin.clone())
        .ban_agent(BanAgentRequest {
            id: Some(wire(agent.spiffe_id())),
        })
        .await
        .unwrap();
    let ended = next(&mut stream).await.unwrap_err();
    assert_eq!(ended.code(), Code::PermissionDenied, "{ended:?}");
    assert!(ended.message().contains("banned"), "{ended:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn only_agents_may_watch() {
    let (_dir, server, api) = start().await;

    let anonymous = watch(api.channel(None).await).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous:?}");

    let workload = api.mint("spiffe://example.org/web").await;
    let not_agent = watch(api.channel(Some(&workload)).await).await.unwrap_err();
    assert_eq!(not_agent.code(), Code::PermissionDenied, "{not_agent:?}");
    assert!(
        not_agent.message().contains("not attested"),
        "{not_agent:?}"
    );

    // The admin socket does not serve Notify at all.
    let admin = watch(api.admin.clone()).await.unwrap_err();
    assert_eq!(admin.code(), Code::Unimplemented, "{admin:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn open_streams_do_not_hold_up_shutdown() {
    let (_dir, server, api) = start().await;
    let agent = api.attest(None).await;
    let (mut stream, _) = agent_watch(&api, &agent).await;

    let started = Instant::now();
    server.stop().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        started.elapsed()
    );
    let end = stream.message().await;
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
}
