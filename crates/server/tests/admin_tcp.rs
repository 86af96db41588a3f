//! Admin RPCs over the agent API (TLS): allowed for IDs in `admin_ids` and for entries with
//! `admin = true`, refused for everyone else with the caller's ID in the message.

#![expect(
    clippy::unwrap_used,
    reason = "integration test helpers assert by panicking"
)]

mod support;
#[path = "support/tls.rs"]
mod tls;

use lanyard_proto::spire::api::server::agent::v1::{CountAgentsRequest, agent_client::AgentClient};
use lanyard_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, GetAuthorizedEntriesRequest, ListEntriesRequest,
    entry_client::EntryClient,
};
use lanyard_proto::spire::api::server::trustdomain::v1::{
    ListFederationRelationshipsRequest, trust_domain_client::TrustDomainClient,
};
use lanyard_proto::spire::api::types;
use lanyard_spiffe::SpiffeId;
use tonic::Code;
use tonic::transport::Channel;

use support::{admin, config};
use tls::{AgentApi, id};

async fn list_entries(channel: &Channel) -> Result<usize, tonic::Status> {
    EntryClient::new(channel.clone())
        .list_entries(ListEntriesRequest::default())
        .await
        .map(|r| r.into_inner().entries.len())
}

#[tokio::test]
async fn admin_ids_and_admin_entries_may_administer_over_tls_and_others_may_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.admin_ids = vec![SpiffeId::parse("spiffe://example.org/ops").unwrap()];
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let api = AgentApi::new(server.agent_addr(), admin(&config).await).await;

    let ops = api
        .channel(Some(&api.mint("spiffe://example.org/ops").await))
        .await;
    assert_eq!(list_entries(&ops).await.unwrap(), 0);
    AgentClient::new(ops.clone())
        .count_agents(CountAgentsRequest::default())
        .await
        .unwrap();
    TrustDomainClient::new(ops.clone())
        .list_federation_relationships(ListFederationRelationshipsRequest::default())
        .await
        .unwrap();
    // An admin registers a workload that is itself an admin.
    let created = EntryClient::new(ops.clone())
        .batch_create_entry(BatchCreateEntryRequest {
            entries: vec![types::Entry {
                spiffe_id: Some(id("/registrar")),
                parent_id: Some(id("/agent")),
                selectors: vec![types::Selector {
                    r#type: "unix".into(),
                    value: "uid:0".into(),
                }],
                admin: true,
                ..Default::default()
            }],
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.results[0].status.as_ref().unwrap().code, 0);
    let registrar = api
        .channel(Some(&api.mint("spiffe://example.org/registrar").await))
        .await;
    assert_eq!(list_entries(&registrar).await.unwrap(), 1);

    let intruder = api
        .channel(Some(&api.mint("spiffe://example.org/intruder").await))
        .await;
    let err = list_entries(&intruder).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message()
            .contains("caller spiffe://example.org/intruder is not an admin"),
        "{}",
        err.message()
    );

    // Agents keep their own RPCs but are not admins.
    let agent = api.attest(None).await;
    let agent_channel = api.channel(Some(&agent)).await;
    EntryClient::new(agent_channel.clone())
        .get_authorized_entries(GetAuthorizedEntriesRequest::default())
        .await
        .unwrap();
    let err = list_entries(&agent_channel).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let anonymous = api.channel(None).await;
    let err = list_entries(&anonymous).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("no certificate"),
        "{}",
        err.message()
    );
    server.stop().await.unwrap();
}
