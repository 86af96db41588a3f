//! The change feed: what is recorded, in which order, and how readers follow it.

use std::collections::BTreeSet;

use lanyard_datastore::{AttestedAgent, ChangeKind, Datastore, EntryUpdate, StoredBundle};
use lanyard_spiffe::TrustDomain;

use crate::engine_tests;
use crate::support::{Ctx, entry, id};

engine_tests!(
    records_each_write_in_order_with_kind_and_key,
    failed_and_empty_writes_record_nothing,
    snapshot_position_plus_replay_misses_nothing,
    pruning_keeps_the_newest_change,
    concurrent_writers_never_let_a_follower_skip_a_change,
);

async fn records_each_write_in_order_with_kind_and_key(ctx: Ctx) {
    let store = ctx.store;
    assert_eq!(store.latest_change().await.unwrap(), 0);
    let td = TrustDomain::new("example.org").unwrap();
    let e = store
        .create_entry(entry("web", "node1", &["unix:uid:1"]))
        .await
        .unwrap();
    let agent = AttestedAgent {
        id: id("spiffe://example.org/spire/agent/a"),
        attestation_type: "join_token".into(),
        serial: "1".into(),
        expires_at: 10,
        new_serial: None,
        new_expires_at: 0,
        banned: false,
        can_reattest: false,
        selectors: Vec::new(),
    };
    store.create_agent(&agent).await.unwrap();
    store
        .set_bundle_authorities(&td, vec![vec![1]])
        .await
        .unwrap();
    store
        .update_entry(&e.id, EntryUpdate::default())
        .await
        .unwrap();
    store
        .set_agent_new_serial(&agent.id, "2", 20)
        .await
        .unwrap();
    store.bump_bundle_sequence(&td).await.unwrap();
    store.delete_entry(&e.id).await.unwrap();

    let all = store.changes_since(0, 0).await.unwrap();
    let seen: Vec<(ChangeKind, &str)> = all.iter().map(|c| (c.kind, c.key.as_str())).collect();
    assert_eq!(
        seen,
        [
            (ChangeKind::Entry, e.id.as_str()),
            (ChangeKind::Agent, agent.id.as_str()),
            (ChangeKind::Bundle, "example.org"),
            (ChangeKind::Entry, e.id.as_str()),
            (ChangeKind::Agent, agent.id.as_str()),
            (ChangeKind::Bundle, "example.org"),
            (ChangeKind::Entry, e.id.as_str()),
        ]
    );
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "{all:?}");
    assert_eq!(store.latest_change().await.unwrap(), all[6].seq);

    let limited = store.changes_since(all[1].seq, 2).await.unwrap();
    assert_eq!(limited, all[2..4]);
    assert!(store.changes_since(all[6].seq, 0).await.unwrap().is_empty());
}

async fn failed_and_empty_writes_record_nothing(ctx: Ctx) {
    let store = ctx.store;
    let td = TrustDomain::new("example.org").unwrap();
    store
        .create_entry(entry("web", "node1", &["unix:uid:1"]))
        .await
        .unwrap();
    store
        .set_bundle_authorities(&td, vec![vec![1]])
        .await
        .unwrap();
    let position = store.latest_change().await.unwrap();

    // A duplicate, an invalid entry, an unchanged bundle: no change rows.
    assert!(
        store
            .create_entry(entry("web", "node1", &["unix:uid:1"]))
            .await
            .is_err()
    );
    assert!(store.create_entry(entry("x", "node1", &[])).await.is_err());
    store
        .set_bundle_authorities(&td, vec![vec![1]])
        .await
        .unwrap();
    store
        .put_bundle(&StoredBundle::new(td.clone(), vec![vec![1]]))
        .await
        .unwrap();
    assert_eq!(store.latest_change().await.unwrap(), position);
}

async fn snapshot_position_plus_replay_misses_nothing(ctx: Ctx) {
    let store = ctx.store;
    let a = store
        .create_entry(entry("a", "node1", &["unix:uid:1"]))
        .await
        .unwrap();
    let (snapshot, position) = store.entries_snapshot().await.unwrap();
    assert_eq!(snapshot, vec![a.clone()]);
    assert_eq!(position, store.latest_change().await.unwrap());

    let b = store
        .create_entry(entry("b", "node1", &["unix:uid:2"]))
        .await
        .unwrap();
    store.delete_entry(&a.id).await.unwrap();

    // Replay: reload every changed key. Applying a change twice gives the same result.
    let mut current = snapshot;
    let changes = store.changes_since(position, 0).await.unwrap();
    for change in changes.iter().chain(changes.iter()) {
        assert_eq!(change.kind, ChangeKind::Entry);
        current.retain(|e| e.id.as_str() != change.key);
        let id = lanyard_datastore::EntryId::parse(&change.key).unwrap();
        if let Some(e) = store.get_entry(&id).await.unwrap() {
            current.push(e);
        }
    }
    assert_eq!(current, vec![b]);
    assert_eq!(current, store.all_entries().await.unwrap());
}

async fn pruning_keeps_the_newest_change(ctx: Ctx) {
    let store = ctx.store;
    for i in 0..4 {
        store
            .create_entry(entry(&format!("e{i}"), "node1", &["unix:uid:1"]))
            .await
            .unwrap();
    }
    let latest = store.latest_change().await.unwrap();
    assert_eq!(
        store.prune_changes(0).await.unwrap(),
        0,
        "nothing is that old"
    );
    let far_future = 4_000_000_000;
    assert_eq!(store.prune_changes(far_future).await.unwrap(), 3);
    let left = store.changes_since(0, 0).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].seq, latest);
    assert_eq!(store.latest_change().await.unwrap(), latest);
    assert_eq!(store.prune_changes(far_future).await.unwrap(), 0);

    // Numbers keep growing after a prune.
    store
        .create_entry(entry("late", "node1", &["unix:uid:1"]))
        .await
        .unwrap();
    assert_eq!(store.latest_change().await.unwrap(), latest + 1);
}

async fn concurrent_writers_never_let_a_follower_skip_a_change(ctx: Ctx) {
    let store = ctx.store;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    store
                        .create_entry(entry(&format!("w{w}-{i}"), "node1", &["unix:uid:1"]))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();

    // A follower that only ever asks for changes after the last one it saw.
    let mut seen = BTreeSet::new();
    let mut position = 0;
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        for change in store.changes_since(position, 0).await.unwrap() {
            position = change.seq;
            seen.insert(change.key);
        }
        if done {
            break;
        }
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    let all: BTreeSet<String> = store
        .all_entries()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id.into_string())
        .collect();
    assert_eq!(all.len(), 40);
    assert_eq!(seen, all);
}
