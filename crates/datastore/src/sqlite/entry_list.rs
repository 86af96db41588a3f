//! Listing entries: filters turned into SQL conditions with bound values, and page tokens.

use lanyard_spiffe::Selector;
use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite};

use super::canonical::{canonical_selectors, selector_key};
use super::entry_rows::{ENTRY_COLUMNS, EntryRow, with_children};
use crate::error::DatastoreError;
use crate::id::EntryId;
use crate::model::{Entry, EntryFilter, SelectorMatch};

/// One page of entries matching `filter`, after the entry `after` in ID order.
pub(super) async fn list(
    conn: &mut SqliteConnection,
    filter: &EntryFilter,
    page_size: u32,
    after: Option<&EntryId>,
) -> Result<(Vec<Entry>, Option<String>), DatastoreError> {
    let mut query = QueryBuilder::<Sqlite>::new(ENTRY_COLUMNS);
    query.push(" WHERE 1 = 1");
    push_filter(&mut query, filter);
    if let Some(after) = after {
        query.push(" AND e.id > ").push_bind(after.as_str());
    }
    query.push(" ORDER BY e.id");
    if page_size > 0 {
        // One row more than asked tells whether another page follows.
        query.push(" LIMIT ").push_bind(i64::from(page_size) + 1);
    }
    let mut rows: Vec<EntryRow> = query.build_query_as().fetch_all(&mut *conn).await?;

    let page_len = usize::try_from(page_size).unwrap_or(usize::MAX);
    let next = if page_size > 0 && rows.len() > page_len {
        rows.truncate(page_len);
        rows.last().map(|row| encode_page_token(&row.id))
    } else {
        None
    };
    Ok((with_children(conn, rows).await?, next))
}

/// Parses a page token back into the last entry ID of the previous page.
pub(super) fn decode_page_token(token: &str) -> Result<EntryId, DatastoreError> {
    let invalid = || {
        DatastoreError::InvalidInput(format!(
            "page token '{token}' was not issued by this datastore: pass back a token returned \
             by list_entries"
        ))
    };
    let bytes = hex::decode(token).map_err(|_| invalid())?;
    let id = String::from_utf8(bytes).map_err(|_| invalid())?;
    EntryId::parse(&id).map_err(|_| invalid())
}

fn encode_page_token(last_id: &str) -> String {
    hex::encode(last_id)
}

/// Appends the filter's conditions; every value goes in as a bind parameter.
fn push_filter(query: &mut QueryBuilder<Sqlite>, filter: &EntryFilter) {
    if let Some(id) = &filter.spiffe_id {
        query
            .push(" AND e.spiffe_id = ")
            .push_bind(id.as_str().to_owned());
    }
    if let Some(id) = &filter.parent_id {
        query
            .push(" AND e.parent_id = ")
            .push_bind(id.as_str().to_owned());
    }
    if let Some(hint) = &filter.hint {
        query.push(" AND e.hint = ").push_bind(hint.clone());
    }
    if let Some(downstream) = filter.downstream {
        query.push(" AND e.downstream = ").push_bind(downstream);
    }
    let Some((selectors, mode)) = &filter.selectors else {
        return;
    };
    let given = canonical_selectors(selectors.clone());
    match mode {
        SelectorMatch::Exact => {
            query
                .push(" AND e.selector_key = ")
                .push_bind(selector_key(&given));
        }
        SelectorMatch::Subset => {
            // Has one of the given selectors (index lookup) and none outside them.
            push_has_any(query, &given);
            query.push(
                " AND NOT EXISTS (SELECT 1 FROM entry_selectors s WHERE s.entry_id = e.id AND NOT (",
            );
            push_selector_alternatives(query, &given);
            query.push("))");
        }
        SelectorMatch::Superset => {
            for s in &given {
                query
                    .push(" AND EXISTS (SELECT 1 FROM entry_selectors s WHERE s.entry_id = e.id")
                    .push(" AND s.type = ")
                    .push_bind(s.kind().to_owned())
                    .push(" AND s.value = ")
                    .push_bind(s.value().to_owned())
                    .push(")");
            }
        }
        SelectorMatch::Any => push_has_any(query, &given),
    }
}

/// ` AND e.id IN (entries having at least one of `given`)`.
fn push_has_any(query: &mut QueryBuilder<Sqlite>, given: &[Selector]) {
    query.push(" AND e.id IN (SELECT s.entry_id FROM entry_selectors s WHERE ");
    push_selector_alternatives(query, given);
    query.push(")");
}

/// `(s.type = ? AND s.value = ?) OR ...`, or a false condition for an empty list.
fn push_selector_alternatives(query: &mut QueryBuilder<Sqlite>, given: &[Selector]) {
    if given.is_empty() {
        query.push("1 = 0");
        return;
    }
    for (i, s) in given.iter().enumerate() {
        if i > 0 {
            query.push(" OR ");
        }
        query
            .push("(s.type = ")
            .push_bind(s.kind().to_owned())
            .push(" AND s.value = ")
            .push_bind(s.value().to_owned())
            .push(")");
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{entry, file, id, memory, sels};
    use super::*;
    use crate::Datastore;

    /// Entries for the filter tests, returned with their names.
    async fn filter_fixture(store: &super::super::SqliteDatastore) {
        let mut a = entry("a", "node1", &["unix:uid:1"]);
        a.hint = "blue".into();
        let b = entry("b", "node1", &["unix:uid:1", "unix:gid:1"]);
        let mut c = entry("c", "node2", &["unix:uid:1", "unix:gid:1", "k8s:ns:x"]);
        c.downstream = true;
        let d = entry("d", "node2", &["k8s:ns:x"]);
        for e in [a, b, c, d] {
            store.create_entry(e).await.unwrap();
        }
    }

    async fn names(store: &super::super::SqliteDatastore, filter: EntryFilter) -> Vec<String> {
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

    #[tokio::test]
    async fn list_filters_by_ids_hint_and_downstream() {
        let store = memory().await;
        filter_fixture(&store).await;

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

    #[tokio::test]
    async fn list_filters_by_selector_set_in_each_mode() {
        let store = memory().await;
        filter_fixture(&store).await;
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
        for mode in [
            SelectorMatch::Exact,
            SelectorMatch::Subset,
            SelectorMatch::Superset,
            SelectorMatch::Any,
        ] {
            let given = sels(&["unix:uid:1", "k8s:ns:x"]);
            let mut expected: Vec<_> = all
                .iter()
                .filter(|e| mode.matches(&e.selectors, &given))
                .map(|e| e.id.clone())
                .collect();
            expected.sort();
            let f = EntryFilter {
                selectors: Some((given, mode)),
                ..EntryFilter::default()
            };
            let (got, _) = store.list_entries(&f, 0, None).await.unwrap();
            let got: Vec<_> = got.into_iter().map(|e| e.id).collect();
            assert_eq!(got, expected, "{mode:?}");
        }
    }

    #[tokio::test]
    async fn pages_through_entries_in_id_order() {
        let (_dir, store) = file().await;
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

    #[tokio::test]
    async fn rejects_page_tokens_it_did_not_issue() {
        let store = memory().await;
        for bad in ["zz", "", "2f2f", "not a token"] {
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
}
