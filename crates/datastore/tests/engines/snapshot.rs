//! Reading every entry at once (`all_entries`, `entries_snapshot`): the same entries, children
//! included, as reading each one by its ID, in ID order, whatever order they were written in.

use lanyard_datastore::{Datastore, EntryId, EntryUpdate};
use lanyard_spiffe::TrustDomain;

use crate::engine_tests;
use crate::support::{Ctx, entry, sels};

engine_tests!(snapshot_matches_entries_read_one_by_one_in_id_order);

async fn snapshot_matches_entries_read_one_by_one_in_id_order(ctx: Ctx) {
    let store = ctx.store;
    // Created out of ID order, with varied children: several selectors, DNS names whose
    // order is not alphabetical, federated trust domains, none of either.
    let mut ids = Vec::new();
    for (n, name) in ["m", "b", "z", "a", "q", "c"].into_iter().enumerate() {
        let mut new = entry(
            &format!("w/{name}"),
            &format!("node{}", n % 2),
            &["unix:uid:1", &format!("k8s:ns:{name}")],
        );
        new.id = Some(EntryId::parse(&format!("id-{name}")).unwrap());
        if n % 2 == 0 {
            new.dns_names = vec![format!("{name}.example.org"), "a.example.org".into()];
            new.federates_with = vec![
                TrustDomain::new("z.org").unwrap(),
                TrustDomain::new("b.org").unwrap(),
            ];
        }
        ids.push(store.create_entry(new).await.unwrap().id);
    }
    // An update rewrites an entry's children after every other entry's.
    store
        .update_entry(
            &ids[1],
            EntryUpdate {
                selectors: Some(sels(&["unix:uid:9", "docker:label:x"])),
                dns_names: Some(vec!["later.example.org".into(), "b.example.org".into()]),
                federates_with: Some(vec![TrustDomain::new("c.org").unwrap()]),
                ..EntryUpdate::default()
            },
        )
        .await
        .unwrap();
    store.delete_entry(&ids[4]).await.unwrap();

    let mut expected = Vec::new();
    ids.sort();
    for id in &ids {
        if let Some(e) = store.get_entry(id).await.unwrap() {
            expected.push(e);
        }
    }
    assert_eq!(expected.len(), 5);
    let all = store.all_entries().await.unwrap();
    assert_eq!(all, expected);
    let updated = all.iter().find(|e| e.id.as_str() == "id-b").unwrap();
    assert_eq!(
        updated.dns_names,
        ["later.example.org", "b.example.org"],
        "dns name order is kept"
    );
    assert_eq!(updated.selectors, sels(&["docker:label:x", "unix:uid:9"]));
    let (snapshot, _) = store.entries_snapshot().await.unwrap();
    assert_eq!(snapshot, expected);
}
