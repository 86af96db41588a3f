//! Listing and counting entries by filter, in pages.

use lanyard_datastore::{
    Datastore, DatastoreError, EntryFilter, EntryId, SelectorMatch, SqlDatastore,
};
use lanyard_spiffe::TrustDomain;

use crate::engine_tests;
use crate::support::{Ctx, entry, id, sels};

engine_tests!(
    list_filters_by_ids_hint_and_downstream,
    list_filters_by_selector_set_in_each_mode,
    list_filters_by_federated_trust_domains_in_each_mode,
    counts_what_the_filter_lists,
    pages_through_entries_in_id_order,
    rejects_page_tokens_it_did_not_issue,
);

const MODES: [SelectorMatch; 4] = [
    SelectorMatch::Exact,
    SelectorMatch::Subset,
    SelectorMatch::Superset,
    SelectorMatch::Any,
];

/// Entries a..e: selectors, hints, downstream flags and federation lists to filter on.
async fn fixture(store: &SqlDatastore) {
    let td = |n: &str| TrustDomain::new(n).unwrap();
    let mut a = entry("a", "node1", &["unix:uid:1"]);
    a.hint = "blue".into();
    a.federates_with = vec![td("x.org")];
    let mut b = entry("b", "node1", &["unix:uid:1", "unix:gid:1"]);
    b.federates_with = vec![td("x.org"), td("y.org")];
    let mut c = entry("c", "node2", &["unix:uid:1", "unix:gid:1", "k8s:ns:x"]);
    c.downstream = true;
    c.federates_with = vec![td("y.org"), td("z.org")];
    let d = entry("d", "node2", &["k8s:ns:x"]);
    for e in [a, b, c, d] {
        store.create_entry(e).await.unwrap();
    }
}

async fn names(store: &SqlDatastore, filter: EntryFilter) -> Vec<String> {
    let (entries, next) = store.list_entries(&filter, 0, None).await.unwrap();
    assert_eq!(next, None);
    let mut names: Vec<String> = entries
        .iter()
        .map(|e| e.spiffe_id.path().trim_start_matches('/').to_owned())
        .collect();
    names.sort();
    names
}

fn by_selectors(list: &[&str], mode: SelectorMatch) -> EntryFilter {
    EntryFilter {
        selectors: Some((sels(list), mode)),
        ..EntryFilter::default()
    }
}

fn by_domains(list: &[&str], mode: SelectorMatch) -> EntryFilter {
    EntryFilter {
        federates_with: Some((
            list.iter().map(|n| TrustDomain::new(n).unwrap()).collect(),
            mode,
        )),
        ..EntryFilter::default()
    }
}

async fn list_filters_by_ids_hint_and_downstream(ctx: Ctx) {
    let store = ctx.store;
    fixture(&store).await;

    let f = EntryFilter {
        parent_id: Some(id("spiffe://example.org/agent/node2")),
        ..EntryFilter::default()
    };
    assert_eq!(names(&store, f).await, ["c", "d"]);
    let f = EntryFilter {
        spiffe_id: Some(id("spiffe://example.org/b")),
        ..EntryFilter::default()
    };
    assert_eq!(names(&store, f).await, ["b"]);
    let f = EntryFilter {
        hint: Some("blue".into()),
        ..EntryFilter::default()
    };
    assert_eq!(names(&store, f).await, ["a"]);
    let f = EntryFilter {
        downstream: Some(false),
        parent_id: Some(id("spiffe://example.org/agent/node2")),
        ..EntryFilter::default()
    };
    assert_eq!(names(&store, f).await, ["d"]);
}

async fn list_filters_by_selector_set_in_each_mode(ctx: Ctx) {
    let store = ctx.store;
    fixture(&store).await;
    let gid_uid = ["unix:gid:1", "unix:uid:1"];

    let exact = by_selectors(&gid_uid, SelectorMatch::Exact);
    assert_eq!(names(&store, exact).await, ["b"]);
    let subset = by_selectors(&gid_uid, SelectorMatch::Subset);
    assert_eq!(names(&store, subset).await, ["a", "b"]);
    let superset = by_selectors(&gid_uid, SelectorMatch::Superset);
    assert_eq!(names(&store, superset).await, ["b", "c"]);
    let any = by_selectors(&["unix:gid:1", "k8s:ns:x"], SelectorMatch::Any);
    assert_eq!(names(&store, any).await, ["b", "c", "d"]);

    let none: [&str; 0] = [];
    assert!(
        names(&store, by_selectors(&none, SelectorMatch::Any))
            .await
            .is_empty()
    );
    assert!(
        names(&store, by_selectors(&none, SelectorMatch::Subset))
            .await
            .is_empty()
    );
    assert_eq!(
        names(&store, by_selectors(&none, SelectorMatch::Superset))
            .await
            .len(),
        4
    );

    // The SQL agrees with the in-memory definition for every mode.
    let all = store.all_entries().await.unwrap();
    for mode in MODES {
        let given = sels(&["unix:uid:1", "k8s:ns:x"]);
        let expected: Vec<_> = all
            .iter()
            .filter(|e| mode.matches(&e.selectors, &given))
            .map(|e| e.id.clone())
            .collect();
        let f = EntryFilter {
            selectors: Some((given, mode)),
            ..EntryFilter::default()
        };
        let (got, _) = store.list_entries(&f, 0, None).await.unwrap();
        let got: Vec<_> = got.into_iter().map(|e| e.id).collect();
        assert_eq!(got, expected, "{mode:?}");
    }
}

async fn list_filters_by_federated_trust_domains_in_each_mode(ctx: Ctx) {
    let store = ctx.store;
    fixture(&store).await;

    let xy = ["x.org", "y.org"];
    assert_eq!(
        names(&store, by_domains(&xy, SelectorMatch::Exact)).await,
        ["b"]
    );
    // d federates with nothing, and the empty set is a subset of every set.
    assert_eq!(
        names(&store, by_domains(&xy, SelectorMatch::Subset)).await,
        ["a", "b", "d"]
    );
    assert_eq!(
        names(&store, by_domains(&["y.org"], SelectorMatch::Superset)).await,
        ["b", "c"]
    );
    assert_eq!(
        names(&store, by_domains(&["z.org", "x.org"], SelectorMatch::Any)).await,
        ["a", "b", "c"]
    );
    assert_eq!(
        names(&store, by_domains(&[], SelectorMatch::Exact)).await,
        ["d"]
    );
    assert!(
        names(&store, by_domains(&["q.org"], SelectorMatch::Any))
            .await
            .is_empty()
    );

    // Combined with a selector filter, both must match.
    let mut f = by_domains(&["y.org"], SelectorMatch::Any);
    f.selectors = Some((sels(&["k8s:ns:x"]), SelectorMatch::Superset));
    assert_eq!(names(&store, f).await, ["c"]);
}

async fn counts_what_the_filter_lists(ctx: Ctx) {
    let store = ctx.store;
    fixture(&store).await;
    assert_eq!(
        store.count_entries(&EntryFilter::default()).await.unwrap(),
        4
    );
    for mode in MODES {
        for f in [
            by_selectors(&["unix:uid:1", "unix:gid:1"], mode),
            by_domains(&["x.org", "y.org"], mode),
        ] {
            let listed = store.list_entries(&f, 0, None).await.unwrap().0.len();
            let counted = store.count_entries(&f).await.unwrap();
            assert_eq!(counted, u64::try_from(listed).unwrap(), "{f:?}");
        }
    }
}

async fn pages_through_entries_in_id_order(ctx: Ctx) {
    let store = ctx.store;
    for i in 0..7 {
        let mut e = entry(&format!("w{i}"), "node1", &["unix:uid:1"]);
        e.id = Some(EntryId::parse(&format!("id-{i}")).unwrap());
        store.create_entry(e).await.unwrap();
    }
    store
        .create_entry(entry("other", "node2", &["unix:uid:1"]))
        .await
        .unwrap();
    let filter = EntryFilter {
        parent_id: Some(id("spiffe://example.org/agent/node1")),
        ..EntryFilter::default()
    };

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let (page, next) = store
            .list_entries(&filter, 3, token.as_deref())
            .await
            .unwrap();
        sizes.push(page.len());
        seen.extend(page.into_iter().map(|e| e.id.into_string()));
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, [3, 3, 1]);
    let expected: Vec<String> = (0..7).map(|i| format!("id-{i}")).collect();
    assert_eq!(seen, expected);

    // A page that ends exactly at the last entry says there is no next page.
    let (page, next) = store.list_entries(&filter, 7, None).await.unwrap();
    assert_eq!((page.len(), next), (7, None));
}

async fn rejects_page_tokens_it_did_not_issue(ctx: Ctx) {
    let store = ctx.store;
    for bad in ["zz", "", "ff", "not a token"] {
        let err = store
            .list_entries(&EntryFilter::default(), 2, Some(bad))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DatastoreError::InvalidInput(_)),
            "{bad}: {err}"
        );
    }
}
