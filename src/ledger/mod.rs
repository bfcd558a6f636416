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

use std::time::Duration;

use sqlx::{any::AnyPoolOptions, AnyPool};

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
        Ok(Ledger { pool, dialect })
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
