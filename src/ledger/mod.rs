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

use sqlx::{any::AnyPoolOptions, AnyConnection, AnyPool};
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
            .connect(url)
            .await?;
        if dialect == Dialect::Sqlite {
            // Write-ahead log: readers never block the writer, and a commit is one fsync of the
            // log (synchronous stays FULL, sqlx's default, so a committed row survives power
            // loss) instead of the rollback journal's three. The mode is stored in the file.
            sqlx::query("PRAGMA journal_mode = WAL").fetch_optional(&pool).await?;
        }
        migrate::run(&pool, dialect).await?;
        Ok(Ledger { pool, dialect, write_turn: Arc::new(Mutex::new(())) })
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
