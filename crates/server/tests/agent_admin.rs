//! The Agent API's admin RPCs: list, count and read attested agents, ban and evict them, and
//! join tokens with an alias ID; a banned or evicted agent is refused afterwards.

#![expect(
    clippy::unwrap_used,
    reason = "integration test helpers assert by panicking"
)]

mod support;
#[path = "support/tls.rs"]
mod tls;

use lanyard_proto::spire::api::server::agent::v1::{
    BanAgentRequest, CountAgentsRequest, DeleteAgentRequest, GetAgentRequest, ListAgentsRequest,
    PostStatusRequest, agent_client::AgentClient, list_agents_request,
};
use lanyard_proto::spire::api::server::entry::v1::{
    GetAuthorizedEntriesRequest, ListEntriesRequest, entry_client::EntryClient,
};
use lanyard_proto::spire::api::types;
use tonic::Code;

use support::{admin, config};
use tls::{AgentApi, wire};

#[tokio::test]
async fn lists_counts_and_reads_agents_with_filters_paging_and_masks() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let api = AgentApi::new(server.agent_addr(), admin(&config).await).await;
    let a = api.attest(None).await;
    let b = api.attest(None).await;
    let c = api.attest(None).await;
    let mut agents = AgentClient::new(api.admin.clone());

    let count = agents
        .count_agents(CountAgentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .count;
    assert_eq!(count, 3);

    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = agents
            .list_agents(ListAgentsRequest {
                page_size: 2,
                page_token: token.clone(),
                output_mask: Some(types::AgentMask {
                    attestation_type: true,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for agent in &page.agents {
            assert_eq!(agent.attestation_type, "join_token");
            assert!(agent.x509svid_serial_number.is_empty(), "masked");
            ids.push(agent.id.clone().unwrap().path);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(ids.len(), 3);

    agents
        .ban_agent(BanAgentRequest {
            id: Some(wire(b.spiffe_id())),
        })
        .await
        .unwrap();
    let banned = agents
        .list_agents(ListAgentsRequest {
            filter: Some(list_agents_request::Filter {
                by_banned: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .agents;
    assert_eq!(banned.len(), 1);
    assert_eq!(banned[0].id, Some(wire(b.spiffe_id())));
    let other_type = agents
        .list_agents(ListAgentsRequest {
            filter: Some(list_agents_request::Filter {
                by_attestation_type: "x509pop".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .agents;
    assert!(other_type.is_empty());
    let expiring = agents
        .list_agents(ListAgentsRequest {
            filter: Some(list_agents_request::Filter {
                by_expires_before: "2100-01-01 00:00:00 +0000 UTC".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .agents;
    // The banned agent's SVID no longer counts: its serials were cleared.
    assert!(expiring.len() >= 2, "{expiring:?}");
    let err = agents
        .list_agents(ListAgentsRequest {
            filter: Some(list_agents_request::Filter {
                by_expires_before: "next week".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("by_expires_before"),
        "{}",
        err.message()
    );

    let got = agents
        .get_agent(GetAgentRequest {
            id: Some(wire(a.spiffe_id())),
            output_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.attestation_type, "join_token");
    assert!(!got.x509svid_serial_number.is_empty());
    let err = agents
        .get_agent(GetAgentRequest {
            id: Some(tls::id("/spire/agent/join_token/nobody")),
            output_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    drop(c);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn banned_and_evicted_agents_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let api = AgentApi::new(server.agent_addr(), admin(&config).await).await;
    let banned = api.attest(None).await;
    let evicted = api.attest(None).await;
    let mut agents = AgentClient::new(api.admin.clone());
    let authorized = |svid| {
        let api = &api;
        async move {
            EntryClient::new(api.channel(Some(svid)).await)
                .get_authorized_entries(GetAuthorizedEntriesRequest::default())
                .await
        }
    };
    authorized(&banned).await.unwrap();
    authorized(&evicted).await.unwrap();

    agents
        .ban_agent(BanAgentRequest {
            id: Some(wire(banned.spiffe_id())),
        })
        .await
        .unwrap();
    let err = authorized(&banned).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message()
            .contains(&format!("agent {} is banned", banned.spiffe_id())),
        "{}",
        err.message()
    );

    agents
        .delete_agent(DeleteAgentRequest {
            id: Some(wire(evicted.spiffe_id())),
        })
        .await
        .unwrap();
    let err = authorized(&evicted).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("is not attested"),
        "{}",
        err.message()
    );
    let err = agents
        .delete_agent(DeleteAgentRequest {
            id: Some(wire(evicted.spiffe_id())),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = agents
        .ban_agent(BanAgentRequest {
            id: Some(wire(evicted.spiffe_id())),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn join_token_alias_gives_the_agent_the_alias_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = lanyard_server::start(config.clone()).await.unwrap();
    let api = AgentApi::new(server.agent_addr(), admin(&config).await).await;
    let agent = api.attest(Some("/node/web-1")).await;

    let aliases = EntryClient::new(api.admin.clone())
        .list_entries(ListEntriesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(aliases.len(), 1);
    assert_eq!(aliases[0].spiffe_id, Some(tls::id("/node/web-1")));
    assert_eq!(aliases[0].parent_id, Some(wire(agent.spiffe_id())));
    assert_eq!(aliases[0].selectors[0].r#type, "spiffe_id");

    let child = types::Entry {
        spiffe_id: Some(tls::id("/web")),
        parent_id: Some(tls::id("/node/web-1")),
        selectors: vec![types::Selector {
            r#type: "unix".into(),
            value: "uid:1".into(),
        }],
        ..Default::default()
    };
    EntryClient::new(api.admin.clone())
        .batch_create_entry(
            lanyard_proto::spire::api::server::entry::v1::BatchCreateEntryRequest {
                entries: vec![child],
                output_mask: None,
            },
        )
        .await
        .unwrap();
    let mut got: Vec<String> = EntryClient::new(api.channel(Some(&agent)).await)
        .get_authorized_entries(GetAuthorizedEntriesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries
        .into_iter()
        .map(|e| e.spiffe_id.unwrap().path)
        .collect();
    got.sort();
    assert_eq!(got, ["/node/web-1", "/web"]);

    let err = AgentClient::new(api.channel(Some(&agent)).await)
        .post_status(PostStatusRequest {
            current_bundle_serial: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    server.stop().await.unwrap();
}
