//! Push sync: with the periodic sync an hour away, entry changes still reach an open Workload
//! API stream within seconds, because the server tells the agent to sync now
//! (`lanyard.agent.v1.Notify/Watch`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lanyard_testkit::AgentOptions;

use crate::common::*;
use crate::registration_common::admin_json;

/// How long a pushed change may take to reach the workload.
const PUSHED: Duration = Duration::from_secs(5);

/// `server entry create` for this process's uid; returns the new entry's ID.
fn create_entry(
    l: &lanyard_testkit::Lanyard,
    server: &lanyard_testkit::Server,
    spiffe_id: &str,
    parent_id: &str,
) -> String {
    let selector = format!("unix:uid:{}", uid());
    let created = admin_json(
        l,
        server,
        &[
            "entry",
            "create",
            "--spiffe-id",
            spiffe_id,
            "--parent-id",
            parent_id,
            "--selector",
            &selector,
        ],
    );
    created["results"][0]["entry"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no entry ID in {created}"))
        .to_owned()
}

fn ids_of(ctx: &spiffe::X509Context) -> BTreeSet<String> {
    ctx.svids()
        .iter()
        .map(|s| s.spiffe_id().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn entry_changes_reach_an_open_stream_long_before_the_periodic_sync() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let token = l.generate_token(&server, &[]);
    let agent = l.start_agent(
        &server,
        AgentOptions {
            join_token: Some(token.clone()),
            sync_interval: "1h".into(),
            ..Default::default()
        },
    );
    let parent = agent_id(&token);

    // The first identity: the Workload API refuses a stream to a caller with none.
    let first = format!("spiffe://{TD}/push/first");
    let started = Instant::now();
    create_entry(&l, &server, &first, &parent);
    fetch_with_spiffe_crate(&agent, PUSHED).await;
    println!("first entry -> fetchable: {:?}", started.elapsed());

    let client = spiffe::WorkloadApiClient::connect_to(agent.endpoint())
        .await
        .unwrap();
    let mut stream = client.stream_x509_contexts().await.unwrap();
    let mut next = async |what: &str, started: Instant| -> spiffe::X509Context {
        let remaining = PUSHED.saturating_sub(started.elapsed());
        match tokio::time::timeout(remaining, stream.next()).await {
            Ok(Some(Ok(ctx))) => ctx,
            other => panic!(
                "{what}: no update within {PUSHED:?}: {:?}\nagent:\n{}\nserver:\n{}",
                other.map(|o| o.map(|r| r.map(|_| ()))),
                agent.logs(),
                server.logs()
            ),
        }
    };
    let opened = next("stream opened", Instant::now()).await;
    assert_eq!(ids_of(&opened), BTreeSet::from([first.clone()]));

    let second = format!("spiffe://{TD}/push/second");
    let started = Instant::now();
    let second_id = create_entry(&l, &server, &second, &parent);
    loop {
        let ctx = next("entry created", started).await;
        if ids_of(&ctx).contains(&second) {
            println!(
                "entry created -> new SVID on the open stream: {:?}",
                started.elapsed()
            );
            break;
        }
    }

    let started = Instant::now();
    admin_json(&l, &server, &["entry", "delete", "--entry-id", &second_id]);
    loop {
        let ctx = next("entry deleted", started).await;
        if !ids_of(&ctx).contains(&second) {
            assert_eq!(ids_of(&ctx), BTreeSet::from([first.clone()]));
            println!(
                "entry deleted -> SVID gone from the open stream: {:?}",
                started.elapsed()
            );
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_rides_out_a_killed_server_and_resumes_pushes_when_it_returns() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let bind = server.addr.clone();
    let token = l.generate_token(&server, &[]);
    let agent = l.start_agent(
        &server,
        AgentOptions {
            join_token: Some(token.clone()),
            sync_interval: "1h".into(),
            ..Default::default()
        },
    );
    let parent = agent_id(&token);
    let first = format!("spiffe://{TD}/outage/first");
    create_entry(&l, &server, &first, &parent);
    fetch_with_spiffe_crate(&agent, PUSHED).await;
    let client = spiffe::WorkloadApiClient::connect_to(agent.endpoint())
        .await
        .unwrap();
    let mut stream = client.stream_x509_contexts().await.unwrap();
    let opened = tokio::time::timeout(PUSHED, stream.next()).await.unwrap();
    assert_eq!(
        ids_of(&opened.unwrap().unwrap()),
        BTreeSet::from([first.clone()])
    );

    // SIGKILL: no goodbye to the agent. Workloads keep their cached identity meanwhile.
    server.kill();
    let during = fetch_with_spiffe_crate(&agent, PUSHED).await;
    assert_eq!(ids_of(&during), BTreeSet::from([first.clone()]));

    // The same data directory and address: the agent reconnects by itself.
    let server = l.start_server(lanyard_testkit::ServerOptions {
        bind: Some(bind),
        ..Default::default()
    });
    let second = format!("spiffe://{TD}/outage/second");
    let started = Instant::now();
    create_entry(&l, &server, &second, &parent);
    // The agent's push channel retries with backoff, so allow for its next attempt.
    let deadline = PUSHED + Duration::from_secs(10);
    loop {
        let remaining = deadline.saturating_sub(started.elapsed());
        match tokio::time::timeout(remaining, stream.next()).await {
            Ok(Some(Ok(ctx))) if ids_of(&ctx).contains(&second) => break,
            Ok(Some(Ok(_))) => {}
            other => panic!(
                "no new entry on the open stream within {deadline:?} after the restart: {:?}\nagent:\n{}\nserver:\n{}",
                other.map(|o| o.map(|r| r.map(|_| ()))),
                agent.logs(),
                server.logs()
            ),
        }
    }
    println!(
        "server restarted; entry created -> on the open stream: {:?}",
        started.elapsed()
    );
}
