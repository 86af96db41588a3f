//! Listing and counting entries by filter, a page at a time.

use super::entry_filter::push_entry_filter;
use super::entry_rows::{ENTRY_COLUMNS, fetch_rows, with_children};
use super::exec::{Sql, Tx};
use super::page;
use crate::error::DatastoreError;
use crate::model::{Entry, EntryFilter};

/// One page of entries matching `filter`, after the entry `after` in ID order.
pub(super) async fn list(
    tx: &mut Tx,
    filter: &EntryFilter,
    page_size: u32,
    after: Option<&str>,
) -> Result<(Vec<Entry>, Option<String>), DatastoreError> {
    let mut q = Sql::new(ENTRY_COLUMNS);
    q.push(" WHERE 1 = 1");
    push_entry_filter(&mut q, filter);
    if let Some(after) = after {
        q.push(" AND e.id > ").push_bind(after);
    }
    q.push(" ORDER BY e.id");
    if let Some(limit) = page::limit(page_size) {
        q.push(" LIMIT ").push_bind(limit);
    }
    let rows = fetch_rows(tx, q).await?;
    let (rows, next) = page::finish(rows, page_size, |row| row.id.clone());
    Ok((with_children(tx, rows).await?, next))
}

/// How many entries match `filter`.
pub(super) async fn count(tx: &mut Tx, filter: &EntryFilter) -> Result<u64, DatastoreError> {
    let mut q = Sql::new("SELECT COUNT(*) FROM registered_entries e WHERE 1 = 1");
    push_entry_filter(&mut q, filter);
    let n = tx.fetch_int(q).await?;
    Ok(u64::try_from(n).unwrap_or(0))
}
