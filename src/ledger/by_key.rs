//! Many rows by key in one statement: the reads that concurrent requests share (see
//! `adapters::batch`).

use sqlx::{any::AnyRow, Row};

use super::{Ledger, LedgerError};

/// Keys in one `IN` list at most (a power of two, see [`Ledger::rows_by_key`]).
pub const IDS_PER_STATEMENT: usize = 32;

/// `chunk` (at most [`IDS_PER_STATEMENT`] long) padded with its last member to the next power
/// of two, and that length: the members of one statement's list.
pub(super) fn padded<T>(chunk: &[T]) -> (usize, impl Iterator<Item = &T>) {
    let n = chunk.len().next_power_of_two();
    (n, chunk.iter().chain(chunk.last().into_iter().cycle().take(n - chunk.len())))
}

impl Ledger {
    /// The rows whose `key` column is one of `keys`, answers in the order of `keys` (`None`
    /// for a key without a row, the same row twice for a key asked twice). `select` ends in
    /// `IN `; at most [`IDS_PER_STATEMENT`] keys go in one statement, the list padded with its
    /// last key to a power of two, so that each query has a handful of shapes in the
    /// prepared-statement cache.
    pub(super) async fn rows_by_key<T: Clone>(
        &self,
        select: &str,
        key: &str,
        keys: &[String],
        parse: fn(&AnyRow) -> Result<T, LedgerError>,
    ) -> Result<Vec<Option<T>>, LedgerError> {
        let mut found = std::collections::HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(IDS_PER_STATEMENT) {
            let (n, members) = padded(chunk);
            let list: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
            // The statement holds placeholders only; every value is bound.
            let sql = format!("{select}({})", list.join(", "));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for k in members {
                query = query.bind(k.as_str());
            }
            for row in query.fetch_all(&mut *self.reader().await?).await? {
                found.insert(row.try_get::<String, _>(key)?, parse(&row)?);
            }
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }
}
