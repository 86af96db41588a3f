//! [`Dialect`]: the few places where SQLite, PostgreSQL and MySQL need different SQL.
//!
//! Everything else is written once. Statements use `?` placeholders (SQLite and MySQL accept
//! them as they are; PostgreSQL gets them renumbered), booleans are stored and bound as 0/1
//! integers, and upserts are written as update-then-insert, so no engine-specific syntax is
//! needed outside this file and the migrations.

use std::borrow::Cow;

/// The SQL engine a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Dialect {
    /// SQLite 3: one writer at a time, taken with `BEGIN IMMEDIATE`.
    Sqlite,
    /// PostgreSQL: `$1..$n` placeholders.
    Postgres,
    /// MySQL 8 or MariaDB 10.11.
    Mysql,
}

impl Dialect {
    /// `sql` with its placeholders in this dialect's syntax.
    pub(crate) fn placeholders(self, sql: &str) -> Cow<'_, str> {
        match self {
            Dialect::Postgres => Cow::Owned(numbered_placeholders(sql)),
            Dialect::Sqlite | Dialect::Mysql => Cow::Borrowed(sql),
        }
    }

    /// The statement that starts a write transaction.
    ///
    /// SQLite's `BEGIN IMMEDIATE` takes the database's write lock before the first read, so
    /// check-then-write sequences are serialized. The server engines instead take the row lock
    /// of [`Dialect::write_lock`] as the transaction's first statement.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
            Dialect::Mysql => "START TRANSACTION",
        }
    }

    /// The first statement of every write transaction on a server engine: it locks the single
    /// row of `write_lock`, so writers run one at a time even across several Lanyard servers
    /// sharing the database. That keeps check-then-write sequences correct at READ COMMITTED
    /// and makes change sequence numbers grow in commit order.
    pub(crate) fn write_lock(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres | Dialect::Mysql => {
                Some("SELECT id FROM write_lock WHERE id = 1 FOR UPDATE")
            }
        }
    }

    /// A statement to run on the connection before [`Dialect::begin_read`], if any.
    ///
    /// MySQL sessions run at READ COMMITTED (set when connecting, for the writers); a reader
    /// that loads entries and their children in several statements needs one snapshot, which
    /// MySQL only gives at REPEATABLE READ, chosen here for the next transaction only.
    pub(crate) fn before_read(self) -> Option<&'static str> {
        match self {
            Dialect::Mysql => Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
            Dialect::Sqlite | Dialect::Postgres => None,
        }
    }

    /// The statement that starts a read transaction whose statements all see one snapshot.
    pub(crate) fn begin_read(self) -> &'static str {
        match self {
            // A deferred transaction in WAL mode reads one snapshot from its first read on.
            Dialect::Sqlite => "BEGIN",
            Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            Dialect::Mysql => "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
        }
    }
}

/// Rewrites `?` placeholders to `$1`, `$2`, ... in order, leaving question marks inside
/// quoted strings, quoted identifiers and comments alone.
fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0u32;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '?' => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            '\'' | '"' | '`' => {
                // A doubled quote inside the literal reads as a closing and a reopening quote,
                // which leaves the scanner inside the literal either way.
                out.push(c);
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == '\n' {
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_for_postgres_only() {
        let sql = "SELECT a FROM t WHERE b = ? AND c IN (?, ?)";
        assert_eq!(
            Dialect::Postgres.placeholders(sql),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
        assert_eq!(Dialect::Sqlite.placeholders(sql), sql);
        assert_eq!(Dialect::Mysql.placeholders(sql), sql);
    }

    #[test]
    fn leaves_question_marks_in_literals_identifiers_and_comments() {
        let sql = "SELECT '?', 'it''s ?', \"col?\", `x?` -- why?\nFROM t WHERE a = ? AND b = '?'";
        assert_eq!(
            Dialect::Postgres.placeholders(sql),
            "SELECT '?', 'it''s ?', \"col?\", `x?` -- why?\nFROM t WHERE a = $1 AND b = '?'"
        );
    }

    #[test]
    fn counts_past_nine_placeholders() {
        let sql = ["?"; 11].join(",");
        assert_eq!(
            Dialect::Postgres.placeholders(&sql),
            "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11"
        );
    }
}
