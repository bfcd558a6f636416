//! The issuance ledger: the single source of truth, and the only module that contains SQL.
//!
//! Every public method is one business unit of work and one transaction (boulder SA style); no
//! transaction object leaks out. One implementation serves both databases through sqlx's `Any`
//! driver: statements use `$1`-style placeholders in order, which SQLite and PostgreSQL both
//! accept, and the dialects differ only in the migrations (`migrations/sqlite`,
//! `migrations/postgres`), which are embedded in the binary and run at start-up. Audit rows are
//! written in the same transaction as the change they record.

mod acme;
mod approvals;
mod audit;
mod certificates;
mod crls;
mod error;
mod est;
mod migrate;
pub mod model;
mod ocsp;
mod scep;
mod wal;

use std::{sync::Arc, time::Duration};

use sqlx::{any::AnyPoolOptions, pool::PoolConnection, AnyConnection, AnyPool, Row};
use tokio::sync::{Mutex, MutexGuard, OwnedMutexGuard};

use self::wal::WalSync;

pub use self::acme::AcmeCleanup;
pub use self::crls::{CrlKind, CrlRecord, CrlReservation, RevokedRow};
pub use self::error::LedgerError;
pub use self::model::*;
pub use self::ocsp::{CertStatusRow, OcspRecord, OcspWork};
pub use self::scep::TransactionRecord;

/// Which SQL dialect the pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (default, single instance).
    Sqlite,
    /// PostgreSQL (several instances may share it).
    Postgres,
}

/// Handle to the ledger database.
#[derive(Clone, Debug)]
pub struct Ledger {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite only: connections kept out of the pool (see `reader` and `begin`).
    kept: Option<Arc<Kept>>,
}

/// The SQLite connections this process keeps out of the pool. sqlx pings a pooled connection
/// when it takes it back (to flush whatever a cancelled statement left behind); on SQLite that
/// is one more hand-off to sqlx's thread than the statement itself.
#[derive(Debug)]
struct Kept {
    /// Single-row reads by key, the hot reads of the protocols.
    reader: Mutex<AnyConnection>,
    /// Every write of this process. SQLite admits one writer at a time and puts the others to
    /// sleep in its busy handler (1 ms, 2 ms, 5 ms… per retry); here writers take turns on
    /// this lock and the next one starts the moment the previous one commits (before the
    /// commit's fsync, which `wal` shares between commits).
    writer: Arc<Mutex<WriteConn>>,
    /// Group fsync of the write-ahead log for the kept writer's commits.
    wal: Arc<WalSync>,
}

impl Kept {
    /// This process's write turn, with any abandoned transaction rolled back.
    async fn lock_writer(&self) -> OwnedMutexGuard<WriteConn> {
        let mut w = Arc::clone(&self.writer).lock_owned().await;
        w.settle().await;
        w
    }
}

/// The kept SQLite write connection.
#[derive(Debug)]
pub(crate) struct WriteConn {
    conn: AnyConnection,
    /// A transaction was begun and its owner dropped it before committing.
    open: bool,
}

impl WriteConn {
    /// Rolls back a transaction its owner abandoned (a cancelled request, an error).
    async fn settle(&mut self) {
        if self.open {
            if let Err(e) = sqlx::query("ROLLBACK").execute(&mut self.conn).await {
                tracing::warn!(error = %e, "rolling back an abandoned ledger transaction failed");
            }
            self.open = false;
        }
    }
}

/// A connection for one read: the kept SQLite reader, or one from the pool.
pub(crate) enum Conn<'a> {
    Reader(MutexGuard<'a, AnyConnection>),
    Pooled(PoolConnection<sqlx::Any>),
}

impl std::ops::Deref for Conn<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            Conn::Reader(c) => c,
            Conn::Pooled(c) => c,
        }
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Conn::Reader(c) => c,
            Conn::Pooled(c) => c,
        }
    }
}

/// A write transaction: on SQLite on the kept write connection (holding its lock until it
/// ends), on PostgreSQL a pooled one. Derefs to the connection, like `sqlx::Transaction`;
/// dropped without `commit`, it rolls back.
pub(crate) struct WriteTx {
    inner: TxInner,
}

enum TxInner {
    Kept(KeptTx),
    Pooled(sqlx::Transaction<'static, sqlx::Any>),
}

/// The write lock with a transaction open on it, and the log its commit must reach.
struct KeptTx(OwnedMutexGuard<WriteConn>, Arc<WalSync>);

impl Drop for KeptTx {
    /// An abandoned transaction would hold SQLite's write lock until this process's next write;
    /// roll it back now (the next writer would otherwise do it first thing).
    fn drop(&mut self) {
        if !self.0.open {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let writer = Arc::clone(OwnedMutexGuard::mutex(&self.0));
            rt.spawn(async move { writer.lock_owned().await.settle().await });
        }
    }
}

impl WriteTx {
    /// Commits and returns once the commit is durable. On SQLite the turn passes to the next
    /// writer right after `COMMIT`, before the log's fsync, which commits share (`WalSync`).
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self.inner {
            TxInner::Kept(mut kept) => {
                sqlx::query("COMMIT").execute(&mut kept.0.conn).await?;
                kept.0.open = false;
                let wal = Arc::clone(&kept.1);
                let ticket = wal.committed();
                drop(kept);
                wal.wait_durable(ticket).await
            }
            TxInner::Pooled(tx) => tx.commit().await,
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match &self.inner {
            TxInner::Kept(kept) => &kept.0.conn,
            TxInner::Pooled(tx) => tx,
        }
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.inner {
            TxInner::Kept(kept) => &mut kept.0.conn,
            TxInner::Pooled(tx) => tx,
        }
    }
}

impl Ledger {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and runs the embedded migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Ledger, LedgerError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings a connection before lending it: a round trip to the database, which
            // finds a dropped PostgreSQL connection but is only a wasted hand-off to sqlx's
            // thread for a SQLite file (every statement would cost three hand-offs).
            .test_before_acquire(dialect == Dialect::Postgres)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // Pages of the database file are read through a memory map instead of
                        // a read(2) each time a connection's cache is emptied by another
                        // connection's commit.
                        sqlx::query("PRAGMA mmap_size = 268435456").execute(conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        if dialect == Dialect::Sqlite {
            // Write-ahead log: readers never block the writer, and a commit is one fsync of the
            // log instead of the rollback journal's three — shared between concurrent commits
            // of the kept writer (`wal`); pooled connections keep synchronous = FULL, sqlx's
            // default. Either way a unit of work returns only once its commit survives power
            // loss. The mode is stored in the file.
            sqlx::query("PRAGMA journal_mode = WAL").fetch_optional(&pool).await?;
        }
        migrate::run(&pool, dialect).await?;
        let kept = match dialect {
            Dialect::Sqlite => {
                let mut writer = pool.acquire().await?.detach();
                // Commits of the kept writer reach the log without an fsync of their own;
                // `WriteTx::commit` waits for a shared one (`WalSync`) before it returns.
                sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut writer).await?;
                let file: String = sqlx::query("PRAGMA database_list")
                    .fetch_all(&mut writer)
                    .await?
                    .iter()
                    .find(|r| r.try_get::<String, _>("name").is_ok_and(|n| n == "main"))
                    .and_then(|r| r.try_get("file").ok())
                    .unwrap_or_default();
                if file.is_empty() {
                    return Err(LedgerError::Corrupt("the SQLite ledger has no database file".into()));
                }
                Some(Arc::new(Kept {
                    reader: Mutex::new(pool.acquire().await?.detach()),
                    writer: Arc::new(Mutex::new(WriteConn { conn: writer, open: false })),
                    wal: Arc::new(WalSync::new(format!("{file}-wal").into())),
                }))
            }
            Dialect::Postgres => None,
        };
        Ok(Ledger { pool, dialect, kept })
    }

    /// A connection for a single-row read by key (orders, authorizations, certificates by
    /// serial). On SQLite all such reads share one kept connection; each statement is its own
    /// read transaction, so it sees every commit.
    pub(crate) async fn reader(&self) -> Result<Conn<'_>, sqlx::Error> {
        match &self.kept {
            Some(kept) => Ok(Conn::Reader(kept.reader.lock().await)),
            None => Ok(Conn::Pooled(self.pool.acquire().await?)),
        }
    }

    /// Begins a write transaction (on SQLite: takes this process's write turn, `BEGIN
    /// IMMEDIATE` so that another process's writer makes it wait at the start, never midway).
    pub(crate) async fn begin(&self) -> Result<WriteTx, sqlx::Error> {
        let Some(kept) = &self.kept else {
            return Ok(WriteTx { inner: TxInner::Pooled(self.pool.begin().await?) });
        };
        let mut w = kept.lock_writer().await;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut w.conn).await?;
        w.open = true;
        Ok(WriteTx { inner: TxInner::Kept(KeptTx(w, Arc::clone(&kept.wal))) })
    }

    /// The dialect in use.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Graceful shutdown: on SQLite, moves every commit from the write-ahead log into the
    /// database file and empties the log (so the file alone is the whole ledger once the
    /// process has gone, for a copy or a file-level backup); then closes the pool.
    pub async fn close(&self) {
        if let Some(kept) = &self.kept {
            let mut w = kept.lock_writer().await;
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut w.conn).await {
                tracing::warn!(error = %e, "checkpointing the ledger's write-ahead log at shutdown failed");
            }
        }
        self.pool.close().await;
    }

    /// Cheap liveness probe (`SELECT 1`).
    pub async fn ping(&self) -> Result<(), LedgerError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Current Unix time in seconds.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::{Connection, Row};

    use super::Ledger;

    async fn nonces(ledger: &Ledger) -> Vec<String> {
        let mut conn = ledger.reader().await.unwrap();
        let rows = sqlx::query("SELECT nonce FROM acme_nonces ORDER BY nonce").fetch_all(&mut *conn).await.unwrap();
        rows.iter().map(|r| r.try_get::<String, _>("nonce").unwrap()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_sqlite_transaction_rolls_back_and_frees_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ledger.db?mode=rwc", dir.path().display());
        let ledger = Ledger::connect(&url, 4).await.unwrap();

        let mut tx = ledger.begin().await.unwrap();
        sqlx::query("INSERT INTO acme_nonces (nonce, expires) VALUES ('abandoned', 1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        drop(tx);

        // Another process's writer gets the lock without waiting for this process's next write.
        let mut other = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query("PRAGMA busy_timeout = 2000").execute(&mut other).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), sqlx::query("BEGIN IMMEDIATE").execute(&mut other))
            .await
            .expect("the abandoned transaction still holds the write lock")
            .unwrap();
        sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();

        // The kept writer works on, and the abandoned row never landed.
        let mut tx = ledger.begin().await.unwrap();
        sqlx::query("INSERT INTO acme_nonces (nonce, expires) VALUES ('kept', 1)").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(nonces(&ledger).await, ["kept"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_sqlite_commits_all_land_and_are_synced() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ledger.db?mode=rwc", dir.path().display());
        let ledger = Ledger::connect(&url, 4).await.unwrap();
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let ledger = ledger.clone();
                tokio::spawn(async move {
                    let mut tx = ledger.begin().await.unwrap();
                    sqlx::query("INSERT INTO acme_nonces (nonce, expires) VALUES ($1, 1)")
                        .bind(format!("n{i:02}"))
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(nonces(&ledger).await.len(), 32);
        let (commits, syncs, durable) = ledger.kept.as_ref().unwrap().wal.counts().await;
        assert_eq!(commits, 32);
        assert_eq!(durable, 32, "every commit returned only once durable");
        assert!((1..=32).contains(&syncs), "{syncs} fsyncs");
        eprintln!("32 concurrent commits, {syncs} fsyncs of the log");
    }
}
