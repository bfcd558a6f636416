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

use std::{sync::Arc, time::Duration};

use sqlx::{any::AnyPoolOptions, pool::PoolConnection, AnyConnection, AnyPool};
use tokio::sync::{Mutex, MutexGuard};

pub use self::acme::AcmeCleanup;
pub use self::crls::{CrlKind, CrlRecord, CrlReservation, RevokedRow};
pub use self::error::LedgerError;
pub use self::model::*;
pub use self::ocsp::{CertStatusRow, OcspRecord, OcspWork};

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
    /// SQLite admits one writer at a time and puts the others to sleep in its busy handler
    /// (1 ms, 2 ms, 5 ms… per retry); this process's writers take turns here instead, and the
    /// next one starts the moment the previous one commits. Unused on PostgreSQL.
    write_turn: Arc<Mutex<()>>,
    /// SQLite: a connection kept out of the pool for single-row reads by key (see `reader`).
    kept: Option<Arc<Mutex<AnyConnection>>>,
}

/// A connection for one read statement: the kept SQLite connection, or one from the pool.
pub(crate) enum Reader<'a> {
    Kept(MutexGuard<'a, AnyConnection>),
    Pooled(PoolConnection<sqlx::Any>),
}

impl std::ops::Deref for Reader<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            Reader::Kept(c) => c,
            Reader::Pooled(c) => c,
        }
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Reader::Kept(c) => c,
            Reader::Pooled(c) => c,
        }
    }
}

/// A write transaction that holds this process's SQLite write turn until it ends. Derefs to
/// the connection, like `sqlx::Transaction`.
pub(crate) struct WriteTx<'a> {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    /// Commits, then gives the turn to the next writer.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
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
            // log (synchronous stays FULL, sqlx's default, so a committed row survives power
            // loss) instead of the rollback journal's three. The mode is stored in the file.
            sqlx::query("PRAGMA journal_mode = WAL").fetch_optional(&pool).await?;
        }
        migrate::run(&pool, dialect).await?;
        let kept = match dialect {
            Dialect::Sqlite => Some(Arc::new(Mutex::new(pool.acquire().await?.detach()))),
            Dialect::Postgres => None,
        };
        Ok(Ledger { pool, dialect, write_turn: Arc::new(Mutex::new(())), kept })
    }

    /// A connection for a single-row read by key. The pool pings a connection when it takes it
    /// back (sqlx flushes whatever a cancelled statement left behind), which on SQLite is one
    /// more hand-off to sqlx's thread than the read itself; the hot reads of the protocols
    /// (orders, authorizations, certificates by serial) share one kept connection instead.
    /// Each statement on it is its own read transaction, so it sees every commit.
    pub(crate) async fn reader(&self) -> Result<Reader<'_>, sqlx::Error> {
        match &self.kept {
            Some(kept) => Ok(Reader::Kept(kept.lock().await)),
            None => Ok(Reader::Pooled(self.pool.acquire().await?)),
        }
    }

    /// This process's write turn on SQLite (`None` on PostgreSQL, where writers do not queue).
    pub(crate) async fn write_turn(&self) -> Option<MutexGuard<'_, ()>> {
        match self.dialect {
            Dialect::Sqlite => Some(self.write_turn.lock().await),
            Dialect::Postgres => None,
        }
    }

    /// Begins a write transaction (after taking the write turn on SQLite).
    pub(crate) async fn begin(&self) -> Result<WriteTx<'_>, sqlx::Error> {
        let turn = self.write_turn().await;
        Ok(WriteTx { tx: self.pool.begin().await?, _turn: turn })
    }

    /// The dialect in use.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes the pool (graceful shutdown).
    pub async fn close(&self) {
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
