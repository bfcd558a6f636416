//! SQLite's hot paths without sqlx's thread: the issuance units (the reservation, the
//! commit) and the audit sealer's links in one step on the write turn, and the SCEP
//! transaction lookup.
//!
//! Through sqlx every statement is a hand-off to sqlx's SQLite thread and back: a reservation
//! is four (`BEGIN`, two inserts, `COMMIT`), a commit six, all while the unit holds this
//! process's write turn, so the turn was held mostly for thread wake-ups and every other
//! writer queued behind them. Here a unit's statements ([`Statement`]) run on a second
//! connection to the same file (rusqlite over the same SQLite library), one after the other on
//! the calling task's thread, while the task holds the turn: a few hundred microseconds of SQL
//! and no hand-off. The commit joins the kept writer's group fsync (`wal`) and the unit returns
//! once it is durable, as through sqlx.
//!
//! The lookup (one indexed read of a few microseconds) runs the same way on a read-only
//! connection, instead of two hand-offs to the kept reader's sqlx thread. The sealer's unit
//! is one cached `UPDATE` per audit row it links (up to 500).
//!
//! The cost of running on the task's thread: while another process (the CLI) holds SQLite's
//! write lock, `BEGIN IMMEDIATE` waits for it (`busy_timeout`) on that thread, and a commit
//! that fills the log checkpoints it there; two lookups at once take turns on the reader.

use std::sync::{Mutex, PoisonError};

use rusqlite::{
    types::{ToSqlOutput, ValueRef},
    OpenFlags, ToSql, TransactionBehavior,
};

use super::{
    statement::{Statement, Value},
    LedgerError,
};

/// How long `BEGIN IMMEDIATE` waits for another process's write lock (sqlx's default).
const BUSY_TIMEOUT_MS: u32 = 5_000;

/// The direct connections.
#[derive(Debug)]
pub(super) struct Direct {
    /// Writes, used only by the holder of the write turn.
    conn: Mutex<rusqlite::Connection>,
    /// Reads by key (read-only).
    reader: Mutex<rusqlite::Connection>,
}

/// Page cache of the writer, KiB. A unit of work that touches more pages than its cache
/// spills them to the write-ahead log before its commit, and writes them again at the commit:
/// the CLM policy sweep's batches touch thousands of index pages each.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

impl Direct {
    /// Opens `file` (which the pool has created and migrated) with the kept writer's settings:
    /// commits reach the log without an fsync of their own (`wal` shares one).
    pub(super) fn open(file: &str) -> Result<Self, LedgerError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(file, flags).map_err(from_sqlite)?;
        conn.execute_batch(&format!(
            "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = -{WRITER_CACHE_KIB}; {};",
            super::MMAP_PRAGMA
        ))
        .map_err(from_sqlite)?;
        conn.set_prepared_statement_cache_capacity(32);
        let reader = rusqlite::Connection::open_with_flags(
            file,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(from_sqlite)?;
        reader
            .execute_batch(&format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; {};", super::MMAP_PRAGMA))
            .map_err(from_sqlite)?;
        Ok(Self { conn: Mutex::new(conn), reader: Mutex::new(reader) })
    }

    /// The first row of the read `sql` with `values` (bound as in [`Direct::run`]), mapped by
    /// `map`; `None` if there is none.
    pub(super) fn read_row<T>(
        &self,
        sql: &'static str,
        values: &[Value],
        map: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, LedgerError> {
        let reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stmt = reader.prepare_cached(sql).map_err(from_sqlite)?;
        bind(&mut stmt, values, false).map_err(from_sqlite)?;
        let mut rows = stmt.raw_query();
        match rows.next().map_err(from_sqlite)? {
            Some(row) => Ok(Some(map(row).map_err(from_sqlite)?)),
            None => Ok(None),
        }
    }

    /// Runs `statements` as one transaction (`BEGIN IMMEDIATE` … `COMMIT`); the first that
    /// fails (or changes the wrong number of rows) rolls all of them back. The caller holds the
    /// write turn.
    pub(super) fn run(&self, statements: &[Statement]) -> Result<(), LedgerError> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(from_sqlite)?;
        for s in statements {
            s.check(execute(&tx, s).map_err(from_sqlite)?)?;
        }
        tx.commit().map_err(from_sqlite)
    }
}

/// Runs one statement; returns the rows it changed. `$n` is bound to `values[n - 1]`.
fn execute(tx: &rusqlite::Transaction<'_>, s: &Statement) -> Result<u64, rusqlite::Error> {
    let mut stmt = match &s.sql {
        std::borrow::Cow::Borrowed(sql) => tx.prepare_cached(sql)?,
        // A built statement (placeholders only, `$n` in order): as `?n`, which SQLite numbers
        // without searching the names seen so far (thousands in a multi-row statement).
        std::borrow::Cow::Owned(sql) => tx.prepare_cached(&sql.replace('$', "?"))?,
    };
    bind(&mut stmt, &s.values, matches!(s.sql, std::borrow::Cow::Owned(_)))?;
    Ok(stmt.raw_execute()? as u64)
}

/// Binds `$n` to `values[n - 1]`; every parameter of the statement must have a value.
fn bind(stmt: &mut rusqlite::Statement<'_>, values: &[Value], positional: bool) -> Result<(), rusqlite::Error> {
    if stmt.parameter_count() != values.len() {
        return Err(rusqlite::Error::InvalidParameterCount(values.len(), stmt.parameter_count()));
    }
    for (i, v) in values.iter().enumerate() {
        // A built statement numbers its placeholders in order of first appearance, so `$n` has
        // index n (its thousands of placeholders: a lookup by name scans them all).
        let index = if positional {
            i + 1
        } else {
            let name = format!("${}", i + 1);
            stmt.parameter_index(&name)?.ok_or(rusqlite::Error::InvalidParameterName(name))?
        };
        stmt.raw_bind_parameter(index, v)?;
    }
    Ok(())
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
            Value::NullInt | Value::NullText => ValueRef::Null,
        }))
    }
}

/// A unique or primary-key violation is a `Conflict`, as through sqlx; anything else is the
/// database failing.
pub(super) fn from_sqlite(e: rusqlite::Error) -> LedgerError {
    const UNIQUE: i32 = 2067; // SQLITE_CONSTRAINT_UNIQUE
    const PRIMARY_KEY: i32 = 1555; // SQLITE_CONSTRAINT_PRIMARYKEY
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if matches!(f.extended_code, UNIQUE | PRIMARY_KEY) => {
            LedgerError::Conflict(e.to_string())
        }
        _ => LedgerError::Unavailable(sqlx::Error::Io(std::io::Error::other(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct() -> (tempfile::TempDir, Direct) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let c = rusqlite::Connection::open(&file).unwrap();
        c.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, b BLOB, o TEXT)")
            .unwrap();
        drop(c);
        let d = Direct::open(file.to_str().unwrap()).unwrap();
        (dir, d)
    }

    fn count(d: &Direct) -> i64 {
        d.conn.lock().unwrap().query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_unit_commits_all_or_nothing() {
        let (_dir, d) = direct();
        let insert = |k: &str| {
            Statement::new(
                "INSERT INTO t (k, n, b, o) VALUES ($1, $2, $3, $4)",
                vec![k.into(), 7.into(), Value::Blob(vec![1, 2]), None::<String>.into()],
            )
        };
        d.run(&[insert("a"), insert("b")]).unwrap();
        assert_eq!(count(&d), 2);
        // A duplicate key is a conflict and takes the unit's first insert with it.
        assert!(matches!(d.run(&[insert("c"), insert("a")]), Err(LedgerError::Conflict(_))));
        assert_eq!(count(&d), 2);
        // So is a statement that must change one row and changes none.
        let update =
            Statement::new("UPDATE t SET n = $1 WHERE k = $2", vec![8.into(), "zz".into()]).one_row("no row zz".into());
        assert!(matches!(d.run(&[insert("d"), update]), Err(LedgerError::Conflict(m)) if m == "no row zz"));
        assert_eq!(count(&d), 2);
        let (n, b, o): (i64, Vec<u8>, Option<String>) = d
            .conn
            .lock()
            .unwrap()
            .query_row("SELECT n, b, o FROM t WHERE k = 'a'", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        assert_eq!((n, b, o), (7, vec![1, 2], None));
    }

    #[test]
    fn parameters_bind_by_number_whatever_their_order() {
        let (_dir, d) = direct();
        d.run(&[Statement::new("INSERT INTO t (n, k) VALUES ($2, $1)", vec!["x".into(), 3.into()])]).unwrap();
        let n: i64 = d.conn.lock().unwrap().query_row("SELECT n FROM t WHERE k = 'x'", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 3);
        let missing = Statement::new("INSERT INTO t (k, n) VALUES ($1, $2)", vec!["y".into()]);
        assert!(matches!(d.run(&[missing]), Err(LedgerError::Unavailable(_))));
    }

    #[test]
    fn the_reader_sees_every_commit() {
        let (_dir, d) = direct();
        let read = |k: &str| d.read_row("SELECT n FROM t WHERE k = $1", &[k.into()], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(read("a"), None);
        d.run(&[Statement::new("INSERT INTO t (k, n) VALUES ($1, $2)", vec!["a".into(), 5.into()])]).unwrap();
        assert_eq!(read("a"), Some(5));
        d.run(&[Statement::new("UPDATE t SET n = 6 WHERE k = $1", vec!["a".into()])]).unwrap();
        assert_eq!(read("a"), Some(6));
    }
}
