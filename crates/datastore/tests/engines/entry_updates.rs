//! Updating entries field by field.

use lanyard_datastore::{ChangeKind, Datastore, DatastoreError, EntryId, EntryUpdate};
use lanyard_spiffe::TrustDomain;

use crate::engine_tests;
use crate::support::{Ctx, entry, id, sels};

engine_tests!(
    updates_only_the_given_fields_and_bumps_the_revision,
    an_empty_update_changes_nothing_but_the_revision,
    updating_a_missing_entry_is_not_found,
    refuses_an_update_that_collides_with_another_entry,
    refuses_an_update_that_breaks_a_creation_rule,
);

async fn updates_only_the_given_fields_and_bumps_the_revision(ctx: Ctx) {
    let store = ctx.store;
    let mut new = entry("web", "node1", &["unix:uid:1"]);
    new.dns_names = vec!["a.example.org".into()];
    new.hint = "old".into();
    let created = store.create_entry(new).await.unwrap();
    let before = store.latest_change().await.unwrap();

    let updated = store
        .update_entry(
            &created.id,
            EntryUpdate {
                selectors: Some(sels(&["unix:uid:2", "unix:gid:2", "unix:uid:2"])),
                federates_with: Some(vec![TrustDomain::new("b.org").unwrap()]),
                dns_names: Some(vec!["z.example.org".into(), "b.example.org".into()]),
                x509_svid_ttl: Some(60),
                admin: Some(true),
                ..EntryUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.revision_number, 1);
    assert_eq!(updated.selectors, sels(&["unix:gid:2", "unix:uid:2"]));
    assert_eq!(updated.federates_with, [TrustDomain::new("b.org").unwrap()]);
    assert_eq!(updated.dns_names, ["z.example.org", "b.example.org"]);
    assert_eq!((updated.x509_svid_ttl, updated.admin), (60, true));
    // Untouched fields keep their values.
    assert_eq!(updated.hint, "old");
    assert_eq!(updated.spiffe_id, created.spiffe_id);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(store.get_entry(&created.id).await.unwrap(), Some(updated));

    let changes = store.changes_since(before, 0).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].kind, changes[0].key.as_str()),
        (ChangeKind::Entry, created.id.as_str())
    );
}

async fn an_empty_update_changes_nothing_but_the_revision(ctx: Ctx) {
    let store = ctx.store;
    let created = store
        .create_entry(entry("web", "node1", &["unix:uid:1"]))
        .await
        .unwrap();
    let updated = store
        .update_entry(&created.id, EntryUpdate::default())
        .await
        .unwrap();
    assert_eq!(updated.revision_number, 1);
    assert_eq!(
        lanyard_datastore::Entry {
            revision_number: 0,
            ..updated
        },
        created
    );
}

async fn updating_a_missing_entry_is_not_found(ctx: Ctx) {
    let missing = EntryId::parse("nope").unwrap();
    let err = ctx
        .store
        .update_entry(&missing, EntryUpdate::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DatastoreError::EntryNotFound(ref x) if *x == missing),
        "{err}"
    );
}

async fn refuses_an_update_that_collides_with_another_entry(ctx: Ctx) {
    let store = ctx.store;
    let first = store
        .create_entry(entry("web", "node1", &["unix:uid:1", "unix:gid:1"]))
        .await
        .unwrap();
    let second = store
        .create_entry(entry("web", "node2", &["unix:gid:1", "unix:uid:1"]))
        .await
        .unwrap();
    let err = store
        .update_entry(
            &second.id,
            EntryUpdate {
                parent_id: Some(id("spiffe://example.org/agent/node1")),
                ..EntryUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DatastoreError::AlreadyExists(existing) if **existing == first),
        "{err:?}"
    );
    assert_eq!(
        store.get_entry(&second.id).await.unwrap(),
        Some(second.clone())
    );

    // Re-stating an entry's own identity is no collision.
    let same = store
        .update_entry(
            &second.id,
            EntryUpdate {
                selectors: Some(sels(&["unix:uid:1", "unix:gid:1"])),
                ..EntryUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(same.revision_number, 1);
}

async fn refuses_an_update_that_breaks_a_creation_rule(ctx: Ctx) {
    let store = ctx.store;
    let created = store
        .create_entry(entry("web", "node1", &["unix:uid:1"]))
        .await
        .unwrap();
    for bad in [
        EntryUpdate {
            selectors: Some(Vec::new()),
            ..EntryUpdate::default()
        },
        EntryUpdate {
            jwt_svid_ttl: Some(-5),
            ..EntryUpdate::default()
        },
        EntryUpdate {
            dns_names: Some(vec![String::new()]),
            ..EntryUpdate::default()
        },
    ] {
        let err = store.update_entry(&created.id, bad).await.unwrap_err();
        assert!(matches!(err, DatastoreError::InvalidInput(_)), "{err}");
    }
    assert_eq!(store.get_entry(&created.id).await.unwrap(), Some(created));
}
