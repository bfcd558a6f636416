//! A statement of a unit of work as data: its SQL and its parameters as plain values, so that
//! one definition runs through sqlx (PostgreSQL's and the less frequent SQLite units) or, for
//! SQLite's issuance units, all at once on the direct writer (`direct`).

use sqlx::AnyConnection;

use super::{AnyQuery, LedgerError};

/// A parameter value. NULLs keep their column's type: PostgreSQL types each parameter from
/// what the driver declares, and a text NULL where an integer goes is an error.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
    NullInt,
    NullText,
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Blob(v.to_vec())
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::NullInt, Value::Int)
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        v.map_or(Value::NullText, Value::Text)
    }
}

/// Binds `values` in order (`$n` is `values[n - 1]`).
pub(super) fn bind_values<'q>(mut q: AnyQuery<'q>, values: Vec<Value>) -> AnyQuery<'q> {
    for v in values {
        q = match v {
            Value::Int(i) => q.bind(i),
            Value::Text(s) => q.bind(s),
            Value::Blob(b) => q.bind(b),
            Value::NullInt => q.bind(None::<i64>),
            Value::NullText => q.bind(None::<String>),
        };
    }
    q
}

/// One statement of a unit of work.
#[derive(Debug)]
pub(super) struct Statement {
    /// Static SQL, or SQL built from placeholders only (multi-row statements).
    pub(super) sql: std::borrow::Cow<'static, str>,
    pub(super) values: Vec<Value>,
    /// The statement must change exactly one row, else the unit fails with this conflict.
    pub(super) one_row: Option<String>,
}

impl Statement {
    pub(super) fn new(sql: &'static str, values: Vec<Value>) -> Self {
        Self { sql: sql.into(), values, one_row: None }
    }

    /// A statement whose SQL is built at run time; it must hold placeholders only, every value
    /// bound, numbered `$1`, `$2`, … in order of first appearance (the direct SQLite writer
    /// binds them by position).
    pub(super) fn built(sql: String, values: Vec<Value>) -> Self {
        Self { sql: sql.into(), values, one_row: None }
    }

    /// The sqlx query of the statement, values bound.
    pub(super) fn query(&self) -> AnyQuery<'_> {
        let q = match &self.sql {
            std::borrow::Cow::Borrowed(sql) => sqlx::query(*sql),
            // Built from placeholders only (`built`); not kept prepared (each size is a new
            // statement, and one of thousands of parameters is planned for its values).
            std::borrow::Cow::Owned(sql) => sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).persistent(false),
        };
        bind_values(q, self.values.clone())
    }

    /// Fails the unit with `Conflict(conflict)` unless exactly one row changes.
    pub(super) fn one_row(mut self, conflict: String) -> Self {
        self.one_row = Some(conflict);
        self
    }

    /// Checks the number of rows the statement changed.
    pub(super) fn check(&self, changed: u64) -> Result<(), LedgerError> {
        match &self.one_row {
            Some(conflict) if changed != 1 => Err(LedgerError::Conflict(conflict.clone())),
            _ => Ok(()),
        }
    }

    /// Runs the statement on `conn` through sqlx (inside the caller's transaction, if any).
    pub(super) async fn execute(&self, conn: &mut AnyConnection) -> Result<(), LedgerError> {
        let done = self.query().execute(conn).await?;
        self.check(done.rows_affected())
    }
}
