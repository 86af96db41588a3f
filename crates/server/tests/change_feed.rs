//! Agents are served from memory: writes made by another server on the same database reach
//! them through the change feed, GetAuthorizedEntries runs no query, and
//! SyncAuthorizedEntries follows SPIRE's revision-diff protocol.

#![expect(
    clippy::unwrap_used,
    reason = "integration test helpers assert by panicking"
)]

#[path = "support/poll.rs"]
mod poll;
mod support;
#[path = "support/tls.rs"]
mod tls;

use std::time::Duration;

use lanyard_datastore::{Datastore, EntryId, NewEntry, SqlDatastore};
use lanyard_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, GetAuthorizedEntriesRequest, SyncAuthorizedEntriesRequest,
    SyncAuthorizedEntriesResponse, entry_client::EntryClient,
};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::{Selector, SpiffeId, X509Svid};
use tokio::sync::mpsc;
use tonic::Code;
use tonic::transport::Channel;

const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

use support::{admin, config};
use tls::{AgentApi, wire};

async fn authorized(channel: &Channel) -> Result<Vec<String>, tonic::Status> {
    let mut paths: Vec<String> = EntryClient::new(channel.clone())
        .get_authorized_entries(GetAuthorizedEntriesRequest::default())
        .await?
        .into_inner()
        .entries
        .into_iter()
        .map(|e| e.spiffe_id.unwrap().path)
        .collect();
    paths.sort();
    Ok(paths)
}

fn workload(agent: &X509Svid, path: &str, uid: u32) -> NewEntry {
    NewEntry::new(
        SpiffeId::parse(&format!("spiffe://example.org{path}")).unwrap(),
        agent.spiffe_id().clone(),
        vec![Selector::new("unix", &format!("uid:{uid}")).unwrap()],
    )
}

#[tokio::test]
async fn writes_by_another_server_on_the_same_database_reach_agents() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let api = AgentApi::new(server.agent_addr(), admin(&config).await).await;
    let agent = api.attest(None).await;
    let channel = api.channel(Some(&agent)).await;
    assert!(authorized(&channel).await.unwrap().is_empty());

    // "Another server": a second handle on the same SQLite file, writing directly.
    let other = SqlDatastore::open(&config.data_dir.join("datastore.sqlite3"))
        .await
        .unwrap();
    let created = other
        .create_entry(workload(&agent, "/web", 1))
        .await
        .unwrap();
    poll::eventually("an entry created elsewhere", WAIT, || async {
        authorized(&channel).await.unwrap() == ["/web"]
    })
    .await;
    let metrics = server.metrics().encode();
    assert!(metrics.contains("lanyard_server_entries 1"), "{metrics}");
    assert!(metrics.contains("lanyard_server_agents 1"), "{metrics}");

    // An agent attested elsewhere counts here too.
    let mut elsewhere = other.get_agent(agent.spiffe_id()).await.unwrap().unwrap();
    elsewhere.id =
        SpiffeId::parse("spiffe://example.org/spire/agent/join_token/elsewhere").unwrap();
    other.create_agent(&elsewhere).await.unwrap();
    poll::eventually("an agent attested elsewhere", WAIT, || async {
        server
            .metrics()
            .encode()
            .contains("lanyard_server_agents 2")
    })
    .await;

    other.delete_entry(&created.id).await.unwrap();
    poll::eventually("an entry deleted elsewhere", WAIT, || async {
        authorized(&channel).await.unwrap().is_empty()
    })
    .await;

    other.set_agent_banned(agent.spiffe_id()).await.unwrap();
    poll::eventually("an agent banned elsewhere", WAIT, || async {
        authorized(&channel)
            .await
            .is_err_and(|e| e.code() == Code::PermissionDenied)
    })
    .await;
    other.close().await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_thousand_authorized_entries_calls_make_no_datastore_query() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // The feed poll would query; keep it out of the measured window.
    config.cache_reload_interval = Duration::from_secs(3600);
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let api = AgentApi::new(server.agent_addr(), admin(&config).await).await;
    let agent = api.attest(None).await;
    let entries: Vec<types::Entry> = (0..20)
        .map(|n| types::Entry {
            spiffe_id: Some(tls::id(&format!("/w/{n}"))),
            parent_id: Some(wire(agent.spiffe_id())),
            selectors: vec![types::Selector {
                r#type: "unix".into(),
                value: format!("uid:{n}"),
            }],
            ..Default::default()
        })
        .collect();
    EntryClient::new(api.admin.clone())
        .batch_create_entry(BatchCreateEntryRequest {
            entries,
            output_mask: None,
        })
        .await
        .unwrap();
    let channel = api.channel(Some(&agent)).await;
    assert_eq!(authorized(&channel).await.unwrap().len(), 20);

    let before = server.datastore_queries();
    for _ in 0..1000 {
        assert_eq!(authorized(&channel).await.unwrap().len(), 20);
    }
    assert_eq!(
        server.datastore_queries(),
        before,
        "queries ran while serving agents"
    );
    server.stop().await.unwrap();
}

/// Opens a sync stream; returns the request sender and the response stream.
async fn open_sync(
    channel: &Channel,
    first: SyncAuthorizedEntriesRequest,
) -> Result<
    (
        mpsc::Sender<SyncAuthorizedEntriesRequest>,
        tonic::Streaming<SyncAuthorizedEntriesResponse>,
    ),
    tonic::Status,
> {
    let (tx, rx) = mpsc::channel(4);
    tx.send(first).await.unwrap();
    let responses = EntryClient::new(channel.clone())
        .sync_authorized_entries(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok((tx, responses))
}

#[tokio::test]
async fn sync_sends_small_sets_whole_and_large_sets_as_revisions_then_asked_entries() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let api = AgentApi::new(server.agent_addr(), admin(&config).await).await;
    let agent = api.attest(None).await;
    let channel = api.channel(Some(&agent)).await;
    let other = SqlDatastore::open(&config.data_dir.join("datastore.sqlite3"))
        .await
        .unwrap();
    other
        .create_entries(
            (0..3)
                .map(|n| workload(&agent, &format!("/s/{n}"), n))
                .collect(),
        )
        .await
        .unwrap();
    poll::eventually("three entries", WAIT, || async {
        authorized(&channel).await.unwrap().len() == 3
    })
    .await;

    let (_tx, mut responses) = open_sync(&channel, SyncAuthorizedEntriesRequest::default())
        .await
        .unwrap();
    let whole = responses.message().await.unwrap().unwrap();
    assert_eq!(whole.entries.len(), 3);
    assert!(whole.entry_revisions.is_empty() && !whole.more);
    assert!(
        responses.message().await.unwrap().is_none(),
        "the stream ends"
    );

    let masked = SyncAuthorizedEntriesRequest {
        output_mask: Some(types::EntryMask::default()),
        ids: Vec::new(),
    };
    let refused = match open_sync(&channel, masked).await {
        Err(status) => status,
        Ok((_tx, mut responses)) => responses.message().await.unwrap_err(),
    };
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("revision_number"),
        "{}",
        refused.message()
    );

    // Past the page size (500) the server sends revisions first.
    other
        .create_entries(
            (3..600)
                .map(|n| workload(&agent, &format!("/s/{n}"), n))
                .collect(),
        )
        .await
        .unwrap();
    poll::eventually("six hundred entries", WAIT, || async {
        authorized(&channel).await.unwrap().len() == 600
    })
    .await;
    let (tx, mut responses) = open_sync(&channel, SyncAuthorizedEntriesRequest::default())
        .await
        .unwrap();
    let first = responses.message().await.unwrap().unwrap();
    assert_eq!(first.entry_revisions.len(), 500);
    assert!(first.more && first.entries.is_empty());
    let second = responses.message().await.unwrap().unwrap();
    assert_eq!(second.entry_revisions.len(), 100);
    assert!(!second.more);

    let wanted: Vec<String> = vec![
        first.entry_revisions[0].id.clone(),
        second.entry_revisions[99].id.clone(),
        EntryId::parse("not-authorized").unwrap().to_string(),
    ];
    tx.send(SyncAuthorizedEntriesRequest {
        output_mask: None,
        ids: wanted.clone(),
    })
    .await
    .unwrap();
    let asked = responses.message().await.unwrap().unwrap();
    assert!(!asked.more);
    let mut got: Vec<String> = asked.entries.iter().map(|e| e.id.clone()).collect();
    got.sort();
    let mut expected = wanted[..2].to_vec();
    expected.sort();
    assert_eq!(got, expected, "unknown IDs are skipped");
    drop(tx);
    assert!(responses.message().await.unwrap().is_none());
    other.close().await;
    server.stop().await.unwrap();
}
