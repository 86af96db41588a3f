//! Text comparison: IDs and selectors are case-sensitive and byte-exact on every engine, and
//! the longest values the types allow fit the schema.

use lanyard_datastore::{Datastore, EntryFilter, NewEntry, SelectorMatch};
use lanyard_spiffe::Selector;

use crate::engine_tests;
use crate::support::{Ctx, id, sels};

engine_tests!(
    spiffe_ids_differing_only_in_case_are_different,
    selectors_differing_only_in_case_or_accents_are_different,
    the_longest_ids_and_selectors_fit,
);

async fn spiffe_ids_differing_only_in_case_are_different(ctx: Ctx) {
    let store = ctx.store;
    let parent = id("spiffe://a/agent");
    let upper = NewEntry::new(id("spiffe://a/B"), parent.clone(), sels(&["unix:uid:1"]));
    let lower = NewEntry::new(id("spiffe://a/b"), parent.clone(), sels(&["unix:uid:1"]));
    store.create_entry(upper).await.unwrap();
    store.create_entry(lower).await.unwrap();

    let f = EntryFilter {
        spiffe_id: Some(id("spiffe://a/b")),
        ..EntryFilter::default()
    };
    let (found, _) = store.list_entries(&f, 0, None).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].spiffe_id.as_str(), "spiffe://a/b");
    let f = EntryFilter {
        parent_id: Some(id("spiffe://a/AGENT")),
        ..EntryFilter::default()
    };
    assert_eq!(store.count_entries(&f).await.unwrap(), 0);
}

async fn selectors_differing_only_in_case_or_accents_are_different(ctx: Ctx) {
    let store = ctx.store;
    let parent = id("spiffe://a/agent");
    for (name, value) in [
        ("one", "k8s:ns:web"),
        ("two", "k8s:ns:WEB"),
        ("three", "k8s:ns:wéb"),
    ] {
        let e = NewEntry::new(
            id(&format!("spiffe://a/{name}")),
            parent.clone(),
            sels(&[value]),
        );
        store.create_entry(e).await.unwrap();
    }
    for value in ["k8s:ns:web", "k8s:ns:WEB", "k8s:ns:wéb"] {
        for mode in [
            SelectorMatch::Exact,
            SelectorMatch::Any,
            SelectorMatch::Superset,
            SelectorMatch::Subset,
        ] {
            let f = EntryFilter {
                selectors: Some((sels(&[value]), mode)),
                ..EntryFilter::default()
            };
            let (found, _) = store.list_entries(&f, 0, None).await.unwrap();
            assert_eq!(found.len(), 1, "{value} {mode:?}");
            assert_eq!(found[0].selectors, sels(&[value]));
        }
    }
}

async fn the_longest_ids_and_selectors_fit(ctx: Ctx) {
    let store = ctx.store;
    let long_id = |c: &str| {
        let prefix = "spiffe://example.org/";
        id(&format!("{prefix}{}", c.repeat(2048 - prefix.len())))
    };
    let long_value = "v".repeat(1024);
    let selector = Selector::new(&"t".repeat(64), &long_value).unwrap();
    let mut e = NewEntry::new(long_id("w"), long_id("p"), vec![selector.clone()]);
    e.hint = "é".repeat(512);
    let created = store.create_entry(e.clone()).await.unwrap();
    assert_eq!(created.spiffe_id.as_str().len(), 2048);
    assert_eq!(
        store.get_entry(&created.id).await.unwrap(),
        Some(created.clone())
    );
    // The uniqueness check works at full length too.
    assert!(store.create_entry(e).await.is_err());
    let f = EntryFilter {
        selectors: Some((vec![selector], SelectorMatch::Any)),
        ..EntryFilter::default()
    };
    assert_eq!(store.count_entries(&f).await.unwrap(), 1);
}
