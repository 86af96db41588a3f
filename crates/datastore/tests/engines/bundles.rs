//! Bundles: authorities, JWT keys, taints, sequence numbers, listing and the delete modes.

use lanyard_datastore::{
    BundleDeleteMode, ChangeKind, Datastore, DatastoreError, EntryFilter, StoredBundle,
    StoredJwtKey,
};
use lanyard_spiffe::TrustDomain;

use crate::engine_tests;
use crate::support::{Ctx, entry};

engine_tests!(
    sequence_grows_only_when_the_certificate_set_changes,
    bumping_raises_the_sequence_and_keeps_the_certificates,
    stores_jwt_keys_and_taints_and_keeps_them_across_authority_updates,
    create_refuses_an_existing_bundle_and_update_a_missing_one,
    put_follows_the_sequence_rule,
    refuses_taints_outside_the_authorities_and_repeated_key_ids,
    lists_and_counts_bundles_in_pages,
    deleting_a_bundle_in_restrict_mode_refuses_while_entries_federate,
    deleting_a_bundle_in_delete_mode_deletes_the_federating_entries,
    deleting_a_bundle_in_dissociate_mode_unlinks_the_federating_entries,
);

fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

fn jwt(kid: &str, tainted: bool) -> StoredJwtKey {
    StoredJwtKey {
        key_id: kid.into(),
        public_key: kid.as_bytes().to_vec(),
        expires_at: 1_900_000_000,
        tainted,
    }
}

fn full_bundle(name: &str) -> StoredBundle {
    StoredBundle {
        jwt_authorities: vec![jwt("k1", false), jwt("k2", true)],
        tainted_x509: vec![vec![2, 2]],
        refresh_hint: 300,
        ..StoredBundle::new(td(name), vec![vec![1, 1], vec![2, 2]])
    }
}

async fn sequence_grows_only_when_the_certificate_set_changes(ctx: Ctx) {
    let store = ctx.store;
    let td = td("example.org");
    assert_eq!(store.get_bundle(&td).await.unwrap(), None);

    let (ca1, ca2, ca3) = (vec![1u8, 1], vec![2u8, 2], vec![3u8, 3]);
    let first = store
        .set_bundle_authorities(&td, vec![ca1.clone(), ca2.clone()])
        .await
        .unwrap();
    assert_eq!(first.sequence, 1);
    assert_eq!(first.x509_authorities, [ca1.clone(), ca2.clone()]);

    let same = store
        .set_bundle_authorities(&td, vec![ca2.clone(), ca1.clone(), ca2.clone()])
        .await
        .unwrap();
    assert_eq!(same, first, "same set in another order is no change");

    let changed = store
        .set_bundle_authorities(&td, vec![ca2.clone(), ca3.clone()])
        .await
        .unwrap();
    assert_eq!(changed.sequence, 2);
    assert_eq!(changed.x509_authorities, [ca2.clone(), ca3.clone()]);
    assert_eq!(store.get_bundle(&td).await.unwrap(), Some(changed));

    let other = TrustDomain::new("other.org").unwrap();
    let separate = store
        .set_bundle_authorities(&other, vec![ca1])
        .await
        .unwrap();
    assert_eq!(separate.sequence, 1);
}

async fn bumping_raises_the_sequence_and_keeps_the_certificates(ctx: Ctx) {
    let store = ctx.store;
    let td = td("example.org");
    assert_eq!(store.bump_bundle_sequence(&td).await.unwrap(), None);

    let first = store
        .set_bundle_authorities(&td, vec![vec![1u8, 1]])
        .await
        .unwrap();
    let bumped = store.bump_bundle_sequence(&td).await.unwrap().unwrap();
    assert_eq!(bumped.sequence, first.sequence + 1);
    assert_eq!(bumped.x509_authorities, first.x509_authorities);
    assert_eq!(store.get_bundle(&td).await.unwrap(), Some(bumped));
}

async fn stores_jwt_keys_and_taints_and_keeps_them_across_authority_updates(ctx: Ctx) {
    let store = ctx.store;
    let b = full_bundle("example.org");
    let created = store.create_bundle(&b).await.unwrap();
    assert_eq!(created, b);
    assert_eq!(
        store.get_bundle(&b.trust_domain).await.unwrap(),
        Some(b.clone())
    );

    // Replacing the certificates keeps the JWT keys, and the taint of a certificate that stays.
    let updated = store
        .set_bundle_authorities(&b.trust_domain, vec![vec![2, 2], vec![3, 3]])
        .await
        .unwrap();
    assert_eq!(updated.jwt_authorities, b.jwt_authorities);
    assert_eq!(updated.tainted_x509, [vec![2u8, 2]]);
    assert_eq!(updated.refresh_hint, 300);
    assert_eq!(
        store.get_bundle(&b.trust_domain).await.unwrap(),
        Some(updated.clone())
    );
    // A certificate that goes takes its taint with it.
    let updated = store
        .set_bundle_authorities(&b.trust_domain, vec![vec![3, 3]])
        .await
        .unwrap();
    assert!(updated.tainted_x509.is_empty());
}

async fn create_refuses_an_existing_bundle_and_update_a_missing_one(ctx: Ctx) {
    let store = ctx.store;
    let mut b = full_bundle("example.org");
    b.sequence = 0;
    assert_eq!(
        store.create_bundle(&b).await.unwrap().sequence,
        1,
        "0 becomes 1"
    );
    assert!(matches!(
        store.create_bundle(&b).await,
        Err(DatastoreError::BundleAlreadyExists(ref t)) if *t == b.trust_domain
    ));
    let missing = full_bundle("missing.org");
    assert!(matches!(
        store.update_bundle(&missing).await,
        Err(DatastoreError::BundleNotFound(ref t)) if *t == missing.trust_domain
    ));
    assert_eq!(store.get_bundle(&missing.trust_domain).await.unwrap(), None);
}

async fn put_follows_the_sequence_rule(ctx: Ctx) {
    let store = ctx.store;
    let mut b = full_bundle("example.org");
    b.sequence = 5;
    assert_eq!(
        store.put_bundle(&b).await.unwrap().sequence,
        5,
        "created as given"
    );

    // Same content, lower or equal sequence: nothing changes.
    let mut same = b.clone();
    same.sequence = 1;
    same.x509_authorities.reverse();
    assert_eq!(store.put_bundle(&same).await.unwrap().sequence, 5);

    // Changed content at a stale sequence: stored + 1.
    let mut changed = b.clone();
    changed.sequence = 2;
    changed.jwt_authorities.push(jwt("k3", false));
    let stored = store.put_bundle(&changed).await.unwrap();
    assert_eq!(stored.sequence, 6);
    assert_eq!(stored.jwt_authorities.len(), 3);

    // A higher sequence wins, even without other changes.
    let mut ahead = stored.clone();
    ahead.sequence = 40;
    assert_eq!(store.update_bundle(&ahead).await.unwrap().sequence, 40);
    let mut hint = ahead.clone();
    hint.refresh_hint = 60;
    hint.sequence = 0;
    let stored = store.update_bundle(&hint).await.unwrap();
    assert_eq!((stored.sequence, stored.refresh_hint), (41, 60));
    assert_eq!(
        store.get_bundle(&hint.trust_domain).await.unwrap(),
        Some(stored)
    );
}

async fn refuses_taints_outside_the_authorities_and_repeated_key_ids(ctx: Ctx) {
    let store = ctx.store;
    let mut stray = full_bundle("example.org");
    stray.tainted_x509 = vec![vec![9, 9]];
    let mut repeated = full_bundle("example.org");
    repeated.jwt_authorities.push(jwt("k1", true));
    for bad in [stray, repeated] {
        let err = store.put_bundle(&bad).await.unwrap_err();
        assert!(matches!(err, DatastoreError::InvalidInput(_)), "{err}");
        assert!(err.to_string().contains("example.org"), "{err}");
    }
    assert_eq!(store.count_bundles().await.unwrap(), 0);
}

async fn lists_and_counts_bundles_in_pages(ctx: Ctx) {
    let store = ctx.store;
    for name in ["c.org", "a.org", "e.org", "b.org", "d.org"] {
        store.put_bundle(&full_bundle(name)).await.unwrap();
    }
    assert_eq!(store.count_bundles().await.unwrap(), 5);
    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let (page, next) = store.list_bundles(2, token.as_deref()).await.unwrap();
        pages.push(
            page.iter()
                .map(|b| b.trust_domain.name().to_owned())
                .collect::<Vec<_>>(),
        );
        assert!(page.iter().all(|b| b.jwt_authorities.len() == 2));
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(
        pages,
        [
            vec!["a.org", "b.org"],
            vec!["c.org", "d.org"],
            vec!["e.org"]
        ]
    );
    assert_eq!(store.list_bundles(0, None).await.unwrap().0.len(), 5);
    assert!(matches!(
        store.list_bundles(2, Some("nonsense")).await,
        Err(DatastoreError::InvalidInput(_))
    ));
}

/// A bundle for `fed.org` and two entries federating with it (and one not).
async fn federated_fixture(
    store: &lanyard_datastore::SqlDatastore,
) -> Vec<lanyard_datastore::Entry> {
    store.put_bundle(&full_bundle("fed.org")).await.unwrap();
    let mut made = Vec::new();
    for (name, domains) in [
        ("a", vec!["fed.org", "other.org"]),
        ("b", vec!["fed.org"]),
        ("c", vec![]),
    ] {
        let mut e = entry(name, "node1", &["unix:uid:1"]);
        e.federates_with = domains.into_iter().map(td).collect();
        made.push(store.create_entry(e).await.unwrap());
    }
    made
}

async fn deleting_a_bundle_in_restrict_mode_refuses_while_entries_federate(ctx: Ctx) {
    let store = ctx.store;
    let made = federated_fixture(&store).await;
    let err = store
        .delete_bundle(&td("fed.org"), BundleDeleteMode::Restrict)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DatastoreError::BundleInUse { ref trust_domain, entries: 2 } if trust_domain.name() == "fed.org"),
        "{err}"
    );
    assert!(store.get_bundle(&td("fed.org")).await.unwrap().is_some());

    for e in &made[..2] {
        store.delete_entry(&e.id).await.unwrap();
    }
    let deleted = store
        .delete_bundle(&td("fed.org"), BundleDeleteMode::Restrict)
        .await
        .unwrap();
    assert_eq!(deleted, full_bundle("fed.org"));
    assert_eq!(store.get_bundle(&td("fed.org")).await.unwrap(), None);
    assert!(matches!(
        store
            .delete_bundle(&td("fed.org"), BundleDeleteMode::Restrict)
            .await,
        Err(DatastoreError::BundleNotFound(_))
    ));
}

async fn deleting_a_bundle_in_delete_mode_deletes_the_federating_entries(ctx: Ctx) {
    let store = ctx.store;
    let made = federated_fixture(&store).await;
    let before = store.latest_change().await.unwrap();
    store
        .delete_bundle(&td("fed.org"), BundleDeleteMode::Delete)
        .await
        .unwrap();
    assert_eq!(store.all_entries().await.unwrap(), vec![made[2].clone()]);

    let changes = store.changes_since(before, 0).await.unwrap();
    let seen: Vec<(ChangeKind, String)> = changes.into_iter().map(|c| (c.kind, c.key)).collect();
    let mut ids: Vec<String> = made[..2].iter().map(|e| e.id.as_str().to_owned()).collect();
    ids.sort();
    let mut expected: Vec<(ChangeKind, String)> =
        ids.into_iter().map(|id| (ChangeKind::Entry, id)).collect();
    expected.push((ChangeKind::Bundle, "fed.org".to_owned()));
    assert_eq!(seen, expected);
}

async fn deleting_a_bundle_in_dissociate_mode_unlinks_the_federating_entries(ctx: Ctx) {
    let store = ctx.store;
    let made = federated_fixture(&store).await;
    store
        .delete_bundle(&td("fed.org"), BundleDeleteMode::Dissociate)
        .await
        .unwrap();
    let (entries, _) = store
        .list_entries(&EntryFilter::default(), 0, None)
        .await
        .unwrap();
    assert_eq!(entries.len(), 3);
    for e in entries {
        let original = made.iter().find(|m| m.id == e.id).unwrap();
        assert!(!e.federates_with.contains(&td("fed.org")));
        let expected_revision = if original.federates_with.is_empty() {
            0
        } else {
            1
        };
        assert_eq!(e.revision_number, expected_revision, "{}", e.id);
    }
    let a = store.get_entry(&made[0].id).await.unwrap().unwrap();
    assert_eq!(a.federates_with, [td("other.org")]);
}
