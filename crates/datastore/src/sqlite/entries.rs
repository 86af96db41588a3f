//! Registration entries: create, read, delete, read all.

use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite};

use super::canonical::{canonical_entry, selector_key};
use super::entry_rows::{Children, ENTRY_COLUMNS, EntryRow, with_children};
use crate::error::DatastoreError;
use crate::id::EntryId;
use crate::model::{Entry, NewEntry};

/// Stores a new entry; the caller commits.
pub(super) async fn create(
    conn: &mut SqliteConnection,
    new: NewEntry,
    now: i64,
) -> Result<Entry, DatastoreError> {
    let entry = canonical_entry(new, now)?;
    let key = selector_key(&entry.selectors);

    let existing: Option<String> = sqlx::query_scalar(
        "SELECT id FROM registered_entries WHERE parent_id = ? AND spiffe_id = ? \
         AND selector_key = ?",
    )
    .bind(entry.parent_id.as_str())
    .bind(entry.spiffe_id.as_str())
    .bind(&key)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(existing) = existing {
        return Err(already_exists(conn, &existing).await);
    }
    let id_taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM registered_entries WHERE id = ?")
        .bind(entry.id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    if id_taken.is_some() {
        return Err(DatastoreError::EntryIdInUse(entry.id));
    }

    sqlx::query(
        "INSERT INTO registered_entries (id, spiffe_id, parent_id, selector_key, x509_svid_ttl, \
         jwt_svid_ttl, admin, downstream, expires_at, store_svid, hint, revision_number, \
         created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(entry.id.as_str())
    .bind(entry.spiffe_id.as_str())
    .bind(entry.parent_id.as_str())
    .bind(&key)
    .bind(entry.x509_svid_ttl)
    .bind(entry.jwt_svid_ttl)
    .bind(entry.admin)
    .bind(entry.downstream)
    .bind(entry.expires_at)
    .bind(entry.store_svid)
    .bind(&entry.hint)
    .bind(entry.revision_number)
    .bind(entry.created_at)
    .execute(&mut *conn)
    .await?;
    insert_children(conn, &entry).await?;
    Ok(entry)
}

/// The entry with this ID, if any.
pub(super) async fn get(
    conn: &mut SqliteConnection,
    id: &EntryId,
) -> Result<Option<Entry>, DatastoreError> {
    let mut query = QueryBuilder::<Sqlite>::new(ENTRY_COLUMNS);
    query.push(" WHERE e.id = ").push_bind(id.as_str());
    let rows: Vec<EntryRow> = query.build_query_as().fetch_all(&mut *conn).await?;
    Ok(with_children(conn, rows).await?.pop())
}

/// Deletes an entry (its children go by cascade) and returns it; the caller commits.
pub(super) async fn delete(
    conn: &mut SqliteConnection,
    id: &EntryId,
) -> Result<Option<Entry>, DatastoreError> {
    let Some(entry) = get(conn, id).await? else {
        return Ok(None);
    };
    sqlx::query("DELETE FROM registered_entries WHERE id = ?")
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(Some(entry))
}

/// Every entry in ID order: four sequential scans merged in memory, which is much cheaper than a
/// join per entry when the whole table is wanted.
pub(super) async fn all(conn: &mut SqliteConnection) -> Result<Vec<Entry>, DatastoreError> {
    let mut query = QueryBuilder::<Sqlite>::new(ENTRY_COLUMNS);
    query.push(" ORDER BY e.id");
    let rows: Vec<EntryRow> = query.build_query_as().fetch_all(&mut *conn).await?;

    let mut children = Children::default();
    let selectors: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT entry_id, type, value FROM entry_selectors ORDER BY entry_id, type, value",
    )
    .fetch_all(&mut *conn)
    .await?;
    children.add_selectors(selectors)?;
    let dns: Vec<(String, String)> =
        sqlx::query_as("SELECT entry_id, name FROM entry_dns_names ORDER BY entry_id, position")
            .fetch_all(&mut *conn)
            .await?;
    children.add_dns_names(dns);
    let federates: Vec<(String, String)> = sqlx::query_as(
        "SELECT entry_id, trust_domain FROM entry_federates_with ORDER BY entry_id, trust_domain",
    )
    .fetch_all(&mut *conn)
    .await?;
    children.add_federates_with(federates)?;

    rows.into_iter().map(|row| children.build(row)).collect()
}

/// The error for a duplicate of entry `existing_id`, carrying that entry when it can be read.
async fn already_exists(conn: &mut SqliteConnection, existing_id: &str) -> DatastoreError {
    let loaded = match EntryId::parse(existing_id) {
        Ok(id) => get(conn, &id).await,
        Err(e) => Err(DatastoreError::Corrupt(format!("stored entry id: {e}"))),
    };
    match loaded {
        Ok(Some(entry)) => DatastoreError::AlreadyExists(Box::new(entry)),
        Ok(None) => {
            DatastoreError::Corrupt(format!("entry '{existing_id}' vanished mid-transaction"))
        }
        Err(e) => e,
    }
}

async fn insert_children(conn: &mut SqliteConnection, entry: &Entry) -> Result<(), DatastoreError> {
    for s in &entry.selectors {
        sqlx::query("INSERT INTO entry_selectors (entry_id, type, value) VALUES (?, ?, ?)")
            .bind(entry.id.as_str())
            .bind(s.kind())
            .bind(s.value())
            .execute(&mut *conn)
            .await?;
    }
    for (position, name) in entry.dns_names.iter().enumerate() {
        sqlx::query("INSERT INTO entry_dns_names (entry_id, position, name) VALUES (?, ?, ?)")
            .bind(entry.id.as_str())
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(name)
            .execute(&mut *conn)
            .await?;
    }
    for td in &entry.federates_with {
        sqlx::query("INSERT INTO entry_federates_with (entry_id, trust_domain) VALUES (?, ?)")
            .bind(entry.id.as_str())
            .bind(td.name())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use lanyard_spiffe::TrustDomain;

    use super::super::test_support::{entry, file, memory, sels};
    use super::*;
    use crate::{Datastore, EntryFilter};

    #[tokio::test]
    async fn creates_reads_lists_and_deletes_an_entry() {
        let store = memory().await;
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

    #[tokio::test]
    async fn deleting_an_entry_removes_its_children() {
        let (_dir, store) = file().await;
        let mut new = entry("web", "node1", &["unix:uid:1"]);
        new.dns_names = vec!["web".into()];
        new.federates_with = vec![TrustDomain::new("b.org").unwrap()];
        let created = store.create_entry(new).await.unwrap();
        store.delete_entry(&created.id).await.unwrap();

        for table in ["entry_selectors", "entry_dns_names", "entry_federates_with"] {
            let mut q = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM ");
            q.push(table);
            let n: i64 = q.build_query_scalar().fetch_one(&store.pool).await.unwrap();
            assert_eq!(n, 0, "{table}");
        }
    }

    #[tokio::test]
    async fn rejects_duplicate_with_selectors_in_another_order() {
        let store = memory().await;
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_duplicates_create_exactly_one_entry() {
        let (_dir, store) = file().await;
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
                Err(other) => unreachable!("unexpected error: {other}"),
            }
        }
        assert_eq!((created.len(), duplicates), (1, 7));
        assert_eq!(store.all_entries().await.unwrap(), created);
    }

    #[tokio::test]
    async fn caller_chosen_ids_are_kept_and_must_be_unique() {
        let store = memory().await;
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

    #[tokio::test]
    async fn rejects_entries_without_selectors_or_with_negative_ttls() {
        let store = memory().await;
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
}
