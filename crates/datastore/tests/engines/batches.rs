//! Creating entries in batches: one transaction, independent outcomes.

use lanyard_datastore::{ChangeKind, Datastore, DatastoreError, EntryId};

use crate::engine_tests;
use crate::support::{Ctx, entry};

engine_tests!(
    each_item_of_a_batch_succeeds_or_fails_on_its_own,
    a_batch_records_one_change_per_created_entry,
    an_empty_batch_creates_nothing,
);

async fn each_item_of_a_batch_succeeds_or_fails_on_its_own(ctx: Ctx) {
    let store = ctx.store;
    let existing = store
        .create_entry(entry("old", "node1", &["unix:uid:9"]))
        .await
        .unwrap();
    let mut taken_id = entry("other", "node1", &["unix:uid:8"]);
    taken_id.id = Some(existing.id.clone());

    let batch = vec![
        entry("a", "node1", &["unix:uid:1", "unix:gid:1"]),
        // A duplicate of the item before it, selectors reordered.
        entry("a", "node1", &["unix:gid:1", "unix:uid:1"]),
        entry("b", "node1", &[]),
        entry("old", "node1", &["unix:uid:9"]),
        taken_id,
        entry("c", "node1", &["unix:uid:3"]),
    ];
    let outcomes = store.create_entries(batch).await.unwrap();
    assert_eq!(outcomes.len(), 6);

    let first = outcomes[0].as_ref().unwrap().clone();
    assert!(
        matches!(&outcomes[1], Err(DatastoreError::AlreadyExists(e)) if **e == first),
        "{:?}",
        outcomes[1]
    );
    assert!(matches!(&outcomes[2], Err(DatastoreError::InvalidInput(_))));
    assert!(matches!(&outcomes[3], Err(DatastoreError::AlreadyExists(e)) if **e == existing));
    assert!(matches!(&outcomes[4], Err(DatastoreError::EntryIdInUse(id)) if *id == existing.id));
    let last = outcomes[5].as_ref().unwrap().clone();

    let mut all = store.all_entries().await.unwrap();
    all.sort_by(|a, b| a.spiffe_id.as_str().cmp(b.spiffe_id.as_str()));
    assert_eq!(all, vec![first, last, existing]);
}

async fn a_batch_records_one_change_per_created_entry(ctx: Ctx) {
    let store = ctx.store;
    let before = store.latest_change().await.unwrap();
    let mut named = entry("a", "node1", &["unix:uid:1"]);
    named.id = Some(EntryId::parse("batch-a").unwrap());
    let outcomes = store
        .create_entries(vec![
            named,
            entry("a", "node1", &["unix:uid:1"]),
            entry("b", "node1", &["unix:uid:2"]),
        ])
        .await
        .unwrap();
    let created: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok())
        .map(|e| e.id.as_str().to_owned())
        .collect();
    assert_eq!(created.len(), 2);
    let changes = store.changes_since(before, 0).await.unwrap();
    let keys: Vec<String> = changes.iter().map(|c| c.key.clone()).collect();
    assert_eq!(keys, created);
    assert!(changes.iter().all(|c| c.kind == ChangeKind::Entry));
}

async fn an_empty_batch_creates_nothing(ctx: Ctx) {
    assert!(
        ctx.store
            .create_entries(Vec::new())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(ctx.store.latest_change().await.unwrap(), 0);
}
