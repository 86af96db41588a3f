//! Several servers on one database (SPIRE's high-availability shape): each keeps its CA keys in
//! its own data directory and its CA journal under its own ID, so starting or restarting one
//! never takes over another's CA; entries written through one are served by the other, and
//! each serves a bundle holding both servers' authorities.
//!
//! The database here is one SQLite file opened by both servers; the datastore's own suite
//! proves the same statements on PostgreSQL and MySQL.

#![expect(
    clippy::unwrap_used,
    reason = "integration test helpers assert by panicking"
)]

#[path = "support/poll.rs"]
mod poll;
mod support;

use std::path::Path;

use lanyard_datastore::{DatabaseConfig, Engine};
use lanyard_proto::spire::api::server::bundle::v1::{
    GetBundleRequest, bundle_client::BundleClient,
};
use lanyard_proto::spire::api::server::entry::v1::{
    BatchCreateEntryRequest, ListEntriesRequest, entry_client::EntryClient,
};
use lanyard_proto::spire::api::types;
use lanyard_server::ServerConfig;
use tonic::transport::Channel;

const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

use support::{admin, config};

fn server_config(dir: &Path, db: &Path) -> ServerConfig {
    let mut config = config(dir);
    config.datastore = Some(DatabaseConfig::new(Engine::Sqlite, db.to_str().unwrap()));
    config
}

async fn authorities(ch: &Channel) -> Vec<Vec<u8>> {
    let mut ders: Vec<Vec<u8>> = BundleClient::new(ch.clone())
        .get_bundle(GetBundleRequest::default())
        .await
        .unwrap()
        .into_inner()
        .x509_authorities
        .into_iter()
        .map(|a| a.asn1)
        .collect();
    ders.sort();
    ders
}

async fn spiffe_ids(ch: &Channel) -> Vec<String> {
    EntryClient::new(ch.clone())
        .list_entries(ListEntriesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries
        .into_iter()
        .map(|e| e.spiffe_id.unwrap().path)
        .collect()
}

#[tokio::test]
async fn two_servers_share_a_database_without_taking_over_each_others_ca() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.sqlite3");
    let config_a = server_config(&dir.path().join("a"), &db);
    let config_b = server_config(&dir.path().join("b"), &db);

    let a = lanyard_server::start(config_a.clone()).await.unwrap();
    let ch_a = admin(&config_a).await;
    let own_a = authorities(&ch_a).await;
    assert_eq!(own_a.len(), 1, "a fresh server has one authority");

    let b = lanyard_server::start(config_b.clone()).await.unwrap();
    let ch_b = admin(&config_b).await;
    let own_b = authorities(&ch_b).await;
    assert!(
        own_b.iter().any(|der| !own_a.contains(der)),
        "the second server made its own CA instead of taking over the first one's"
    );

    // Each server's bundle comes to hold both authorities: agents of either accept both.
    let both: Vec<Vec<u8>> = {
        let mut all = own_a.clone();
        all.extend(own_b.iter().filter(|d| !own_a.contains(d)).cloned());
        all.sort();
        all
    };
    for (name, ch) in [("a", &ch_a), ("b", &ch_b)] {
        poll::eventually(
            &format!("server {name} serving both authorities"),
            WAIT,
            || async { authorities(ch).await == both },
        )
        .await;
    }

    // An entry written through one server is listed by the other.
    let created = EntryClient::new(ch_a.clone())
        .batch_create_entry(BatchCreateEntryRequest {
            entries: vec![types::Entry {
                spiffe_id: Some(types::Spiffeid {
                    trust_domain: "example.org".into(),
                    path: "/web".into(),
                }),
                parent_id: Some(types::Spiffeid {
                    trust_domain: "example.org".into(),
                    path: "/spire/agent/x".into(),
                }),
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
        .into_inner();
    assert_eq!(created.results[0].status.as_ref().unwrap().code, 0);
    assert_eq!(spiffe_ids(&ch_b).await, ["/web"]);

    // Restarting the first server (the one whose journal a single shared row used to lose)
    // brings back its own CA, not the other server's and not a new one.
    a.stop().await.unwrap();
    let a = lanyard_server::start(config_a.clone()).await.unwrap();
    let ch_a = admin(&config_a).await;
    poll::eventually(
        "the restarted server serving both authorities again",
        WAIT,
        || async { authorities(&ch_a).await == both },
    )
    .await;
    let b_restarted = {
        b.stop().await.unwrap();
        lanyard_server::start(config_b.clone()).await.unwrap()
    };
    let ch_b = admin(&config_b).await;
    assert_eq!(
        authorities(&ch_b).await,
        both,
        "b kept its CA across a restart"
    );

    a.stop().await.unwrap();
    b_restarted.stop().await.unwrap();
}

#[tokio::test]
async fn a_server_of_another_trust_domain_is_refused_on_a_shared_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.sqlite3");
    let config_a = server_config(&dir.path().join("a"), &db);
    let a = lanyard_server::start(config_a.clone()).await.unwrap();

    // Same database, another trust domain: it would read example.org's entries and publish its
    // CA into their bundles.
    let mut other = server_config(&dir.path().join("c"), &db);
    other.trust_domain = lanyard_spiffe::TrustDomain::new("other.org").unwrap();
    let err = lanyard_server::start(other)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("belongs to trust domain 'example.org', not 'other.org'"),
        "{err}"
    );
    // The first server is untouched.
    assert_eq!(authorities(&admin(&config_a).await).await.len(), 1);
    a.stop().await.unwrap();
}
