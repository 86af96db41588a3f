//! Tests of the sync steps against the fake server in `sync_fake.rs`: entries by revision,
//! the fallback for older servers, CSR batches, and the SVID cache bound with signing on demand.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use lanyard_spiffe::Selector;
use tokio_util::sync::CancellationToken;

use super::fake::{FakeServer, PAGE, wire_entry};
use super::sign::MAX_BATCH;
use super::{SyncError, Syncer};
use crate::client::RpcError;
use crate::test_support::TestCa;

/// `n` entries `e0000...`, entry `i` at `revision` for workloads with `unix:uid:<i>`.
fn entries(n: usize, revision: i64) -> Vec<lanyard_proto::spire::api::types::Entry> {
    (0..n)
        .map(|i| {
            let uid = u32::try_from(i).unwrap();
            wire_entry(&format!("e{i:04}"), &format!("/w{i}"), uid, revision)
        })
        .collect()
}

async fn fixture(n: usize) -> (FakeServer, Syncer, tempfile::TempDir) {
    let ca = Arc::new(TestCa::new());
    let (fake, client) = FakeServer::start(Arc::clone(&ca)).await;
    fake.set_entries(entries(n, 1));
    let (syncer, dir) = super::fake::syncer(&ca, client);
    (fake, syncer, dir)
}

/// One entries step, as a sync round runs it.
async fn sync_entries(syncer: &mut Syncer) -> Result<(), SyncError> {
    let fetched = syncer.fetch_entries().await?;
    syncer.apply_entries(fetched);
    Ok(())
}

/// The IDs of the cached entries, and of those with an SVID.
fn cached(syncer: &Syncer) -> (BTreeSet<String>, BTreeSet<String>) {
    let snapshot = syncer.p.cache.snapshot();
    let ids = snapshot.identities.iter().map(|i| i.entry.id.clone());
    let signed = snapshot
        .identities
        .iter()
        .filter(|i| i.svid.is_some())
        .map(|i| i.entry.id.clone());
    (ids.collect(), signed.collect())
}

#[tokio::test]
async fn an_unchanged_large_entry_set_moves_revisions_not_entries() {
    let (fake, mut syncer, _dir) = fixture(1_200).await;
    sync_entries(&mut syncer).await.unwrap();
    assert_eq!(
        fake.take_counts().0,
        1_200,
        "the first sync needs every entry"
    );
    assert_eq!(cached(&syncer).0.len(), 1_200);

    sync_entries(&mut syncer).await.unwrap();
    let (entries_sent, revisions_sent, _) = fake.take_counts();
    assert_eq!((entries_sent, revisions_sent), (0, 1_200));

    let mut next = entries(1_200, 1);
    next[7].revision_number = 2;
    next[7].spiffe_id.as_mut().unwrap().path = "/moved".into();
    next.remove(8);
    next.push(wire_entry("new", "/new", 5_000, 1));
    fake.set_entries(next);
    sync_entries(&mut syncer).await.unwrap();
    assert_eq!(
        fake.take_counts().0,
        2,
        "the changed and the new entry only"
    );
    let ids = cached(&syncer).0;
    assert_eq!(ids.len(), 1_200);
    assert!(ids.contains("new") && !ids.contains("e0008"));
    let moved = syncer.p.cache.snapshot();
    let moved = moved.identities.iter().find(|i| i.entry.id == "e0007");
    assert_eq!(moved.unwrap().entry.spiffe_id.path(), "/moved");
}

#[tokio::test]
async fn a_set_of_one_page_comes_in_full_and_replaces_the_cache() {
    let (fake, mut syncer, _dir) = fixture(PAGE).await;
    sync_entries(&mut syncer).await.unwrap();
    assert_eq!(fake.take_counts(), (PAGE, 0, vec![]));

    fake.set_entries(entries(3, 1));
    sync_entries(&mut syncer).await.unwrap();
    assert_eq!(cached(&syncer).0.len(), 3, "the others were removed");
}

#[tokio::test]
async fn a_server_without_the_sync_rpc_gets_get_authorized_entries() {
    let (fake, mut syncer, _dir) = fixture(600).await;
    fake.state.lock().unwrap().no_sync_rpc = true;
    sync_entries(&mut syncer).await.unwrap();
    sync_entries(&mut syncer).await.unwrap();
    assert_eq!(fake.state.lock().unwrap().legacy_calls, 2);
    assert_eq!(cached(&syncer).0.len(), 600);
}

#[tokio::test]
async fn an_entry_announced_but_not_sent_fails_the_step_and_keeps_the_cache() {
    let (fake, mut syncer, _dir) = fixture(PAGE + 1).await;
    sync_entries(&mut syncer).await.unwrap();
    fake.set_entries(entries(PAGE + 1, 2));
    fake.state.lock().unwrap().withhold = Some("e0003".into());

    let err = sync_entries(&mut syncer).await.unwrap_err();
    let SyncError::Rpc(RpcError { detail, .. }) = &err else {
        panic!("expected a protocol error, got {err}");
    };
    assert!(
        detail.contains("\"e0003\" was announced but not sent"),
        "{detail}"
    );
    assert_eq!(cached(&syncer).0.len(), PAGE + 1, "the cache is untouched");
    assert_eq!(syncer.p.cache.revision("e0000"), Some(1));
}

#[tokio::test]
async fn twelve_hundred_due_entries_are_signed_in_three_batches() {
    let (fake, mut syncer, _dir) = fixture(1_200).await;
    sync_entries(&mut syncer).await.unwrap();
    fake.take_counts();

    syncer.sign_and_evict().await.unwrap();
    let (_, _, batches) = fake.take_counts();
    assert_eq!(batches, [MAX_BATCH, MAX_BATCH, 200]);
    let (ids, signed) = cached(&syncer);
    assert_eq!(signed, ids, "every entry has its SVID");
    assert_eq!(signed.len(), 1_200);
}

fn uid(n: u32) -> Arc<BTreeSet<Selector>> {
    Arc::new([Selector::parse(&format!("unix:uid:{n}")).unwrap()].into())
}

#[tokio::test]
async fn a_bounded_cache_signs_ahead_only_its_size_and_the_rest_on_demand() {
    let (_fake, syncer, _dir) = fixture(4).await;
    let mut syncer = syncer.with_svid_cache_max_size(2);
    sync_entries(&mut syncer).await.unwrap();
    let demand = syncer.demand();
    let watching = demand.watch(uid(0));
    syncer.sign_and_evict().await.unwrap();
    assert_eq!(
        cached(&syncer).1,
        ["e0000", "e0001"].map(String::from).into()
    );

    // A workload of entry 3 calls: the loop signs its SVID without waiting for a round, and
    // drops the least recently used one that nobody watches (e0001), never e0000.
    let asking = demand.watch(uid(3));
    demand.sign_now();
    let mut published = syncer.p.published.subscribe();
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        published.changed().await.unwrap();
        stop.cancel();
    });
    let waited = tokio::time::timeout(
        Duration::from_secs(10),
        syncer.wait(Duration::from_secs(3_600), &cancel),
    )
    .await
    .expect("signed on demand, not at the next round");
    assert!(!waited, "stopped by the test once published");
    assert_eq!(
        cached(&syncer).1,
        ["e0000", "e0003"].map(String::from).into()
    );
    let snapshot = syncer.p.published.load();
    assert!(
        snapshot
            .identities
            .iter()
            .any(|i| i.entry.id == "e0003" && i.svid.is_some())
    );
    drop((watching, asking));
}
