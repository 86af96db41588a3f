//! Running statements: [`Sql`] (text with `?` placeholders and its bound values) and [`Tx`]
//! (one transaction on one pooled connection), through which every statement passes so the
//! placeholder syntax is adapted and the statement counted in one place.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyPool, Arguments, AssertSqlSafe, Row, SqlSafeStr, Transaction};

use super::dialect::Dialect;
use crate::error::DatastoreError;

/// A value bound to a placeholder. Booleans become 0/1 integers: sqlx's `Any` driver maps
/// booleans differently per engine, integers the same everywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Arg {
    /// An integer (`BIGINT` column, or a 0/1 flag).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
    /// SQL `NULL` in a text column.
    NullText,
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<i32> for Arg {
    fn from(v: i32) -> Self {
        Arg::Int(i64::from(v))
    }
}

impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Int(i64::from(v))
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}

impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Self {
        Arg::Blob(v.to_vec())
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Arg::NullText, Arg::from)
    }
}

/// A statement being built: SQL text with `?` placeholders, and one value per placeholder.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    /// A statement starting with `text`, which may contain placeholders to [`Sql::bind`].
    pub(crate) fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    /// Binds the next placeholder already written in the text.
    pub(crate) fn bind(mut self, value: impl Into<Arg>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Appends SQL text (never a value: values go through [`Sql::push_bind`]).
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(crate) fn push_bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.text.push('?');
        self.args.push(value.into());
        self
    }

    /// Appends `(?, ?, ...)` bound to `values`; `(NULL)` for none, which matches nothing.
    pub(crate) fn push_list<T: Into<Arg>>(&mut self, values: impl IntoIterator<Item = T>) {
        self.text.push('(');
        let mut first = true;
        for v in values {
            if !first {
                self.text.push_str(", ");
            }
            first = false;
            self.push_bind(v);
        }
        if first {
            self.text.push_str("NULL");
        }
        self.text.push(')');
    }

    fn arguments(&self) -> Result<AnyArguments, DatastoreError> {
        let mut args = AnyArguments::default();
        for arg in &self.args {
            let added = match arg {
                Arg::Int(v) => args.add(*v),
                Arg::Text(v) => args.add(v.clone()),
                Arg::Blob(v) => args.add(v.clone()),
                Arg::NullText => args.add(Option::<String>::None),
            };
            added.map_err(|e| DatastoreError::Corrupt(format!("cannot bind a value: {e}")))?;
        }
        Ok(args)
    }
}

/// What a transaction will do, which decides how it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxKind {
    /// Reads only, from one snapshot.
    Read,
    /// Writes; serialized with every other writer.
    Write,
}

/// One transaction. Dropping it without [`Tx::commit`] rolls it back.
pub(crate) struct Tx {
    tx: Transaction<'static, Any>,
    dialect: Dialect,
    queries: Arc<AtomicU64>,
}

impl Tx {
    /// Starts a transaction of `kind` on a connection from `pool`.
    pub(crate) async fn begin(
        pool: &AnyPool,
        dialect: Dialect,
        queries: Arc<AtomicU64>,
        kind: TxKind,
    ) -> Result<Tx, DatastoreError> {
        let mut conn = pool.acquire().await?;
        let begin = match kind {
            TxKind::Read => {
                if let Some(setup) = dialect.before_read() {
                    queries.fetch_add(1, Ordering::Relaxed);
                    sqlx::raw_sql(setup).execute(&mut *conn).await?;
                }
                dialect.begin_read()
            }
            TxKind::Write => dialect.begin_write(),
        };
        queries.fetch_add(1, Ordering::Relaxed);
        let tx = Transaction::begin(conn, Some(begin.into_sql_str())).await?;
        let mut tx = Tx {
            tx,
            dialect,
            queries,
        };
        if kind == TxKind::Write
            && let Some(lock) = dialect.write_lock()
        {
            tx.fetch_all(Sql::new(lock)).await?;
        }
        Ok(tx)
    }

    /// Runs a statement and returns how many rows it changed.
    pub(crate) async fn execute(&mut self, sql: Sql) -> Result<u64, DatastoreError> {
        let args = sql.arguments()?;
        let text = self.prepare(&sql);
        let done = sqlx::query_with(AssertSqlSafe(text), args)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected())
    }

    /// Runs a query and returns every row.
    pub(crate) async fn fetch_all(&mut self, sql: Sql) -> Result<Vec<AnyRow>, DatastoreError> {
        let args = sql.arguments()?;
        let text = self.prepare(&sql);
        Ok(sqlx::query_with(AssertSqlSafe(text), args)
            .fetch_all(&mut *self.tx)
            .await?)
    }

    /// Runs a query and hands each row to `each` as it arrives, so that no more than a few rows
    /// are held at once however many the query returns. The first error `each` returns ends
    /// the query and is returned.
    pub(crate) async fn for_each_row(
        &mut self,
        sql: Sql,
        mut each: impl FnMut(&AnyRow) -> Result<(), DatastoreError>,
    ) -> Result<(), DatastoreError> {
        use futures::TryStreamExt;
        let args = sql.arguments()?;
        let text = self.prepare(&sql);
        let mut rows = sqlx::query_with(AssertSqlSafe(text), args).fetch(&mut *self.tx);
        while let Some(row) = rows.try_next().await? {
            each(&row)?;
        }
        Ok(())
    }

    /// Runs a query and returns its first row, if any.
    pub(crate) async fn fetch_optional(
        &mut self,
        sql: Sql,
    ) -> Result<Option<AnyRow>, DatastoreError> {
        let args = sql.arguments()?;
        let text = self.prepare(&sql);
        Ok(sqlx::query_with(AssertSqlSafe(text), args)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    /// Runs a query that returns one integer (a count) and returns it.
    pub(crate) async fn fetch_int(&mut self, sql: Sql) -> Result<i64, DatastoreError> {
        match self.fetch_optional(sql).await? {
            Some(row) => int(&row, 0),
            None => Err(DatastoreError::Corrupt(
                "a query that always returns one row returned none".to_owned(),
            )),
        }
    }

    /// Commits the transaction.
    pub(crate) async fn commit(self) -> Result<(), DatastoreError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        Ok(self.tx.commit().await?)
    }

    fn prepare(&self, sql: &Sql) -> String {
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.dialect.placeholders(&sql.text).into_owned()
    }
}

/// Column `i` of `row` as an integer.
pub(crate) fn int(row: &AnyRow, i: usize) -> Result<i64, DatastoreError> {
    Ok(row.try_get::<i64, _>(i)?)
}

/// Column `i` of `row` as a 0/1 flag.
pub(crate) fn flag(row: &AnyRow, i: usize) -> Result<bool, DatastoreError> {
    Ok(int(row, i)? != 0)
}

/// Column `i` of `row` as text.
pub(crate) fn text(row: &AnyRow, i: usize) -> Result<String, DatastoreError> {
    Ok(row.try_get::<String, _>(i)?)
}

/// Column `i` of `row` as text that may be `NULL`.
pub(crate) fn opt_text(row: &AnyRow, i: usize) -> Result<Option<String>, DatastoreError> {
    Ok(row.try_get::<Option<String>, _>(i)?)
}

/// Column `i` of `row` as bytes.
pub(crate) fn blob(row: &AnyRow, i: usize) -> Result<Vec<u8>, DatastoreError> {
    Ok(row.try_get::<Vec<u8>, _>(i)?)
}
