//! Creating, reading and deleting entries; uniqueness.

use lanyard_datastore::{Datastore, DatastoreError, EntryFilter, EntryId};
use lanyard_spiffe::TrustDomain;

use crate::engine_tests;
use crate::support::{Ctx, entry, sels};

engine_tests!(
    creates_reads_lists_and_deletes_an_entry,
    deleting_an_entry_removes_its_children,
    rejects_duplicate_with_selectors_in_another_order,
    concurrent_duplicates_create_exactly_one_entry,
    caller_chosen_ids_are_kept_and_must_be_unique,
    rejects_entries_without_selectors_or_with_negative_ttls,
);

async fn creates_reads_lists_and_deletes_an_entry(ctx: Ctx) {
    let store = ctx.store;
    let mut new = entry("web", "node1", &["unix:uid:1000", "unix:gid:50"]);
    new.x509_svid_ttl = 3600;
    new.jwt_svid_ttl = 300;
    new.dns_names = vec!["web.example.org".into(), "a.example.org".into()];
    new.federates_with = vec![
        TrustDomain::new("z.org").unwrap(),
        TrustDomain::new("b.org").unwrap(),
    ];
    new.admin = true;
    new.expires_at = 4_000_000_000;
    new.store_svid = true;
    new.hint = "external".into();

    let created = store.create_entry(new.clone()).await.unwrap();
    assert_eq!(created.spiffe_id, new.spiffe_id);
    assert_eq!(created.selectors, sels(&["unix:gid:50", "unix:uid:1000"]));
    assert_eq!(created.dns_names, new.dns_names, "dns name order is kept");
    assert_eq!(
        created.federates_with,
        vec![
            TrustDomain::new("b.org").unwrap(),
            TrustDomain::new("z.org").unwrap()
        ]
    );
    assert!(created.admin && created.store_svid && !created.downstream);
    assert_eq!(created.revision_number, 0);
    assert!(created.created_at > 0);

    assert_eq!(
        store.get_entry(&created.id).await.unwrap(),
        Some(created.clone())
    );
    let (page, next) = store
        .list_entries(&EntryFilter::default(), 0, None)
        .await
        .unwrap();
    assert_eq!((page, next), (vec![created.clone()], None));
    assert_eq!(store.all_entries().await.unwrap(), vec![created.clone()]);

    assert_eq!(
        store.delete_entry(&created.id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(store.get_entry(&created.id).await.unwrap(), None);
    assert_eq!(store.delete_entry(&created.id).await.unwrap(), None);
    assert!(store.all_entries().await.unwrap().is_empty());
}

async fn deleting_an_entry_removes_its_children(ctx: Ctx) {
    let store = ctx.store;
    let mut new = entry("web", "node1", &["unix:uid:1"]);
    new.dns_names = vec!["web".into()];
    new.federates_with = vec![TrustDomain::new("b.org").unwrap()];
    let created = store.create_entry(new).await.unwrap();
    store.delete_entry(&created.id).await.unwrap();

    for table in ["entry_selectors", "entry_dns_names", "entry_federates_with"] {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&ctx.raw)
                .await
                .unwrap();
        assert_eq!(n, 0, "{table}");
    }
}

async fn rejects_duplicate_with_selectors_in_another_order(ctx: Ctx) {
    let store = ctx.store;
    let first = store
        .create_entry(entry("web", "node1", &["unix:uid:1000", "unix:gid:50"]))
        .await
        .unwrap();

    let dup = entry(
        "web",
        "node1",
        &["unix:gid:50", "unix:uid:1000", "unix:gid:50"],
    );
    let err = store.create_entry(dup).await.unwrap_err();
    assert!(
        matches!(&err, DatastoreError::AlreadyExists(existing) if **existing == first),
        "{err:?}"
    );

    // Any difference in spiffe id, parent or selector set makes a distinct entry.
    store
        .create_entry(entry("web", "node2", &["unix:uid:1000", "unix:gid:50"]))
        .await
        .unwrap();
    store
        .create_entry(entry("api", "node1", &["unix:uid:1000", "unix:gid:50"]))
        .await
        .unwrap();
    store
        .create_entry(entry("web", "node1", &["unix:uid:1000"]))
        .await
        .unwrap();
    assert_eq!(store.all_entries().await.unwrap().len(), 4);
}

async fn concurrent_duplicates_create_exactly_one_entry(ctx: Ctx) {
    let store = ctx.store;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let mut selectors = vec!["unix:uid:1", "unix:gid:2"];
            if i % 2 == 0 {
                selectors.reverse();
            }
            let new = entry("web", "node1", &selectors);
            tokio::spawn(async move { store.create_entry(new).await })
        })
        .collect();
    let mut created = Vec::new();
    let mut duplicates = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(entry) => created.push(entry),
            Err(DatastoreError::AlreadyExists(_)) => duplicates += 1,
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!((created.len(), duplicates), (1, 7));
    assert_eq!(store.all_entries().await.unwrap(), created);
}

async fn caller_chosen_ids_are_kept_and_must_be_unique(ctx: Ctx) {
    let store = ctx.store;
    let mut new = entry("web", "node1", &["unix:uid:1"]);
    new.id = Some(EntryId::parse("my-entry").unwrap());
    let created = store.create_entry(new).await.unwrap();
    assert_eq!(created.id.as_str(), "my-entry");

    let mut other = entry("api", "node1", &["unix:uid:2"]);
    other.id = Some(EntryId::parse("my-entry").unwrap());
    let err = store.create_entry(other).await.unwrap_err();
    assert!(matches!(err, DatastoreError::EntryIdInUse(ref id) if id.as_str() == "my-entry"));
    assert_eq!(
        store.all_entries().await.unwrap().len(),
        1,
        "nothing half-written"
    );
}

async fn rejects_entries_without_selectors_or_with_negative_ttls(ctx: Ctx) {
    let store = ctx.store;
    let err = store
        .create_entry(entry("web", "node1", &[]))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("at least one selector is required"),
        "{err}"
    );

    let mut negative = entry("web", "node1", &["unix:uid:1"]);
    negative.x509_svid_ttl = -1;
    let err = store.create_entry(negative).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "x509_svid_ttl -1 is negative: ttls must be 0 (server default) or more seconds"
    );
    assert!(store.all_entries().await.unwrap().is_empty());
}
