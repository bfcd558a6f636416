//! The issuance ledger: the single source of truth, and the only module that contains SQL.
//!
//! Every public method is one business unit of work and one transaction (boulder SA style); no
//! transaction object leaks out. Most units run on both databases through sqlx's `Any`
//! driver: statements use `$1`-style placeholders in order, which SQLite and PostgreSQL both
//! accept. The dialects differ in the migrations (`migrations/sqlite`, `migrations/postgres`),
//! which are embedded in the binary and run at start-up, and in the hot units, which take a
//! second path on each database:
//!
//! * on PostgreSQL a few are one data-modifying `WITH` statement to save round trips (batched
//!   nonce redemption and order creation in `acme.rs`, reserve and commit in
//!   `single_statement.rs`); the SQLite form of each is the reference for what it writes;
//! * on SQLite the issuance units (reserve, commit) and the audit sealer's links run on a
//!   direct rusqlite connection to the same file while holding the write turn, and the SCEP
//!   transaction lookup on a direct read-only one (`direct.rs`), not through sqlx. Their
//!   statements are defined once as data (`statement.rs`), so the SQL is the same either way.
//!
//! Audit rows are written in the same unit as the change they record.

mod acme;
mod admin;
mod approvals;
mod audit;
mod backup;
mod by_key;
mod certificates;
mod clm;
mod conn;
mod crls;
mod deployments;
mod direct;
mod error;
mod est;
mod external;
mod inventory;
mod leases;
mod listings;
mod migrate;
pub mod model;
mod ocsp;
mod overview;
mod owners;
pub mod pg_tls;
mod reports;
mod scep;
mod single_statement;
mod statement;
#[cfg(test)]
mod test_db;
mod wal;

use std::{sync::Arc, time::Duration};

use sqlx::{any::AnyPoolOptions, AnyPool, Row};
use tokio::sync::Mutex;

use self::conn::{Conn, WriteConn};
use self::wal::WalSync;

pub(crate) use self::conn::{note_fault, WriteTx};

pub use self::acme::{AcmeCleanup, NonceUse, NONCES_PER_STATEMENT};
pub use self::admin::{AdminSession, AdminToken, AdminUser};
pub use self::approvals::Decided;
pub use self::backup::{sqlite_snapshot_holds, HighWater};
pub use self::by_key::IDS_PER_STATEMENT;
pub use self::clm::{AuditNotice, CandidateSet, Decision, NewMessage, OutboxMessage, PolicyCandidate};
pub use self::crls::{CrlKind, CrlRecord, CrlReservation, RevokedRow};
pub use self::deployments::{DeploymentCheck, DeploymentFailure, DeploymentTarget};
pub use self::error::LedgerError;
pub use self::external::{
    EndpointChange, EndpointRecorded, EndpointScan, ExternalCertificate, ExternalSource, ImportOutcome,
};
pub use self::inventory::{
    check_renewal_method, default_renewal_method, Endpoint, ExpiringWindows, InventoryChange, InventoryFilter,
    InventoryItem, InventorySort, InventorySortKey, InventoryStats, InventoryStatus, SortValue,
};
pub use self::leases::JobLease;
pub use self::listings::{AcmeAccountListing, EabKeyListing, EndpointListing, EstUserListing, ScepChallengeListing};
pub use self::model::*;
pub use self::ocsp::{CertStatusRow, OcspRecord, OcspWork};
pub use self::overview::{OverviewCounts, SeenEndpoint, TierCounts, HORIZON_DAYS, RENEWAL_SAMPLE};
pub use self::owners::{Owner, UnclaimedOwner};
pub use self::reports::{
    AccessToken, AccessUser, IssuedCert, ReportApproval, ReportCert, ReportDeadMessage, ReportExternal,
};
pub use self::scep::{ChallengeUse, TransactionRecord};

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
    /// Opens connections; on SQLite it also serves reads that are not by key.
    pool: AnyPool,
    dialect: Dialect,
    /// The connections units of work run on (`conn`).
    kept: Kept,
}

/// The connections kept out of sqlx's pool.
#[derive(Clone, Debug)]
enum Kept {
    Sqlite(Arc<conn::Sqlite>),
    Postgres(Arc<conn::Postgres>),
}

/// SQLite connections read the database file through a memory map of up to 2 GiB (SQLite's
/// default ceiling): address space, not memory, since the pages are the kernel's page cache.
/// Past the map every page read is a read(2) into a 2 MiB cache, which a ledger of a million
/// certificates (over a gigabyte) reaches at once.
const MMAP_PRAGMA: &str = "PRAGMA mmap_size = 2147418112";

impl Ledger {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and runs the embedded migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Ledger, LedgerError> {
        Self::connect_with(url, None, max_connections).await
    }

    /// Same, with PostgreSQL's TLS settled by [`pg_tls::connect_url`]: `verify-full` unless the
    /// URL says otherwise or the host is loopback, `ca_file` as the root CA file.
    pub async fn connect_with(
        url: &str,
        ca_file: Option<&std::path::Path>,
        max_connections: u32,
    ) -> Result<Ledger, LedgerError> {
        sqlx::any::install_default_drivers();
        let dialect = if pg_tls::is_postgres(url) { Dialect::Postgres } else { Dialect::Sqlite };
        let url = &pg_tls::connect_url(url, ca_file)?;
        let tls = if dialect == Dialect::Postgres { Some(pg_tls::tls_of(url)?) } else { None };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings a connection before lending it: a round trip to the database, which
            // finds a dropped PostgreSQL connection but is only a wasted hand-off to sqlx's
            // thread for a SQLite file. (On PostgreSQL the pool only opens the connections the
            // ledger keeps, `conn::Postgres`, which checks them itself.)
            .test_before_acquire(dialect == Dialect::Postgres)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // Pages of the database file are read through a memory map instead of
                        // a read(2) each time a connection's cache is emptied by another
                        // connection's commit.
                        sqlx::query(MMAP_PRAGMA).execute(conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(|e| match (e, &tls) {
                (e, Some((mode, root))) if pg_tls::is_handshake_failure(&e) => LedgerError::Tls {
                    mode: pg_tls::mode_name(*mode),
                    roots: root.as_ref().map_or("the webpki roots".to_owned(), |r| format!("CA file {}", r.display())),
                    source: e,
                },
                (e, _) => e.into(),
            })?;
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
                let faults = conn::Sqlite::faults();
                let mut writer = pool.acquire().await?.detach();
                sqlx::query(conn::WRITER_PRAGMA).execute(&mut writer).await?;
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
                Kept::Sqlite(Arc::new(conn::Sqlite {
                    pool: pool.clone(),
                    reader: Mutex::new(pool.acquire().await?.detach()),
                    reader_faults: faults.into(),
                    writer_faults: faults.into(),
                    writer: Arc::new(Mutex::new(WriteConn { conn: writer, open: false })),
                    wal: Arc::new(WalSync::new(format!("{file}-wal").into())),
                    direct: direct::Direct::open(&file)?,
                }))
            }
            Dialect::Postgres => Kept::Postgres(Arc::new(conn::Postgres::new(pool.clone(), max_connections))),
        };
        let ledger = Ledger { pool, dialect, kept };
        if let Some((mode, _)) = tls {
            match ledger.tls_in_use().await {
                Ok(tls) => tracing::info!(sslmode = pg_tls::mode_name(mode), tls, "ledger: connected to PostgreSQL"),
                Err(e) => tracing::warn!(error = %e, "ledger: cannot tell whether PostgreSQL connections use TLS"),
            }
        }
        Ok(ledger)
    }

    /// Whether this process's connection to PostgreSQL is encrypted (`pg_stat_ssl`); false on
    /// SQLite, which has no connection to encrypt.
    pub async fn tls_in_use(&self) -> Result<bool, LedgerError> {
        if self.dialect != Dialect::Postgres {
            return Ok(false);
        }
        let mut conn = self.conn().await?;
        let row =
            sqlx::query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetch_optional(&mut *conn).await?;
        Ok(row.map(|r| r.try_get::<bool, _>(0)).transpose()?.unwrap_or(false))
    }

    /// A connection for a single-row read by key (orders, authorizations, certificates by
    /// serial). On SQLite all such reads share one kept connection; each statement is its own
    /// read transaction, so it sees every commit.
    pub(crate) async fn reader(&self) -> Result<Conn<'_>, sqlx::Error> {
        match &self.kept {
            Kept::Sqlite(kept) => Ok(Conn::Reader(kept.reader().await?)),
            Kept::Postgres(kept) => Ok(Conn::Kept(kept.acquire().await?)),
        }
    }

    /// A connection for any other read (lists, scans, counts): on SQLite a pooled one, so that
    /// a long read never holds up the reads by key.
    pub(crate) async fn conn(&self) -> Result<Conn<'_>, sqlx::Error> {
        match &self.kept {
            Kept::Sqlite(_) => Ok(Conn::Pooled(self.pool.acquire().await?)),
            Kept::Postgres(kept) => Ok(Conn::Kept(kept.acquire().await?)),
        }
    }

    /// Begins a write transaction (on SQLite: takes this process's write turn, `BEGIN
    /// IMMEDIATE` so that another process's writer makes it wait at the start, never midway).
    pub(crate) async fn begin(&self) -> Result<WriteTx, sqlx::Error> {
        match &self.kept {
            Kept::Sqlite(kept) => WriteTx::sqlite(kept, false).await,
            Kept::Postgres(kept) => WriteTx::postgres(kept, false).await,
        }
    }

    /// Begins a unit of work that is exactly one statement: nothing is sent around it (a
    /// statement is its own transaction), so it costs two round trips (on SQLite, hand-offs
    /// to sqlx's thread) fewer than `begin`; `commit` returns once it is durable.
    pub(crate) async fn begin_single(&self) -> Result<WriteTx, sqlx::Error> {
        match &self.kept {
            Kept::Sqlite(kept) => WriteTx::sqlite(kept, true).await,
            Kept::Postgres(kept) => WriteTx::postgres(kept, true).await,
        }
    }

    /// The SQLite connections (with the direct ones, `direct`); `None` on PostgreSQL.
    fn sqlite(&self) -> Option<&conn::Sqlite> {
        match &self.kept {
            Kept::Sqlite(kept) => Some(kept),
            Kept::Postgres(_) => None,
        }
    }

    /// The dialect in use.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Graceful shutdown: on SQLite, moves every commit from the write-ahead log into the
    /// database file and empties the log (so the file alone is the whole ledger once the
    /// process has gone, for a copy or a file-level backup); then closes the connections.
    pub async fn close(&self) {
        match &self.kept {
            Kept::Sqlite(kept) => {
                let mut w = kept.lock_writer().await;
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut w.conn).await {
                    tracing::warn!(error = %e, "checkpointing the ledger's write-ahead log at shutdown failed");
                }
            }
            Kept::Postgres(kept) => kept.close().await,
        }
        self.pool.close().await;
    }

    /// Cheap liveness probe (`SELECT 1`); on SQLite also fails after a failed fsync of the
    /// write-ahead log (`wal`), which stops all writes until a restart.
    pub async fn ping(&self) -> Result<(), LedgerError> {
        if let Kept::Sqlite(kept) = &self.kept {
            kept.wal.check()?;
        }
        sqlx::query("SELECT 1").execute(&mut *self.conn().await?).await?;
        Ok(())
    }
}

impl Ledger {
    /// Bytes free for privca on the file system of the SQLite ledger (`None` on PostgreSQL,
    /// whose server watches its own disk, or when it cannot be read).
    pub fn free_space(&self) -> Option<u64> {
        let Kept::Sqlite(kept) = &self.kept else { return None };
        let dir = kept.wal.path().parent()?;
        let stat = rustix::fs::statvfs(dir).ok()?;
        Some(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
}

/// A statement with its bound parameters, for helpers that bind a row's worth of them.
type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

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

    /// Inserts the nonce `nonce` in a transaction and commits it.
    async fn insert_committed(ledger: &Ledger, nonce: &str) {
        let mut tx = ledger.begin().await.unwrap();
        sqlx::query("INSERT INTO acme_nonces (nonce, expires) VALUES ($1, 1)")
            .bind(nonce)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    /// Inserts the nonce `abandoned` in a transaction and drops it without committing.
    async fn abandon_an_insert(ledger: &Ledger) {
        let mut tx = ledger.begin().await.unwrap();
        sqlx::query("INSERT INTO acme_nonces (nonce, expires) VALUES ('abandoned', 1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        drop(tx);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_sqlite_transaction_rolls_back_and_frees_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ledger.db?mode=rwc", dir.path().display());
        let ledger = Ledger::connect(&url, 4).await.unwrap();

        abandon_an_insert(&ledger).await;

        // Another process's writer gets the lock without waiting for this process's next write.
        let mut other = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query("PRAGMA busy_timeout = 2000").execute(&mut other).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), sqlx::query("BEGIN IMMEDIATE").execute(&mut other))
            .await
            .expect("the abandoned transaction still holds the write lock")
            .unwrap();
        sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();

        // The kept writer works on, and the abandoned row never landed.
        insert_committed(&ledger, "kept").await;
        assert_eq!(nonces(&ledger).await, ["kept"]);
    }

    /// PostgreSQL: a transaction dropped before `commit` is rolled back at once (its row locks
    /// freed), not when its kept connection is next lent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_postgres_transaction_rolls_back_and_frees_its_locks() {
        let Some(db) = super::test_db::TestPg::create().await else { return };
        let url = db.url.clone();
        let ledger = Ledger::connect(&url, 2).await.unwrap();

        abandon_an_insert(&ledger).await;

        // Another session can write the same key: the abandoned insert no longer holds it.
        let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("SET lock_timeout = '5s'").execute(&mut other).await.unwrap();
        sqlx::query("INSERT INTO acme_nonces (nonce, expires) VALUES ('abandoned', 2)")
            .execute(&mut other)
            .await
            .expect("the abandoned transaction still holds its lock");

        // The ledger's connections work on, and the abandoned row never landed.
        for i in 0..4 {
            insert_committed(&ledger, &format!("kept{i}")).await;
        }
        let expires: i64 = sqlx::query("SELECT expires FROM acme_nonces WHERE nonce = 'abandoned'")
            .fetch_one(&mut other)
            .await
            .unwrap()
            .try_get("expires")
            .unwrap();
        assert_eq!(expires, 2);
        assert_eq!(nonces(&ledger).await, ["abandoned", "kept0", "kept1", "kept2", "kept3"]);
        ledger.close().await;
        other.close().await.unwrap();
    }

    /// Whether `conn` is the connection that created the TEMP table `mark` (a TEMP table
    /// exists only on the connection that made it).
    async fn marked(conn: &mut sqlx::AnyConnection) -> bool {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM sqlite_temp_master WHERE name = 'mark'")
            .fetch_one(conn)
            .await
            .unwrap();
        row.try_get::<i64, _>("n").unwrap() == 1
    }

    /// A kept SQLite connection whose sqlx worker died answers every statement with
    /// `WorkerCrashed`, which the ledger counts as a connection fault: the kept reader and
    /// writer are then replaced before their next use, and reads and writes go on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kept_sqlite_connections_are_replaced_after_a_connection_fault() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ledger.db?mode=rwc", dir.path().display());
        let ledger = Ledger::connect(&url, 4).await.unwrap();
        let faults_before = super::conn::Sqlite::faults();
        sqlx::query("CREATE TEMP TABLE mark (x)").execute(&mut *ledger.reader().await.unwrap()).await.unwrap();
        let mut tx = ledger.begin_single().await.unwrap();
        sqlx::query("CREATE TEMP TABLE mark (x)").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        if super::conn::Sqlite::faults() == faults_before {
            // (Another test of this process may count a fault meanwhile.)
            assert!(marked(&mut ledger.reader().await.unwrap()).await, "the reader is kept between reads");
            assert!(marked(&mut ledger.begin_single().await.unwrap()).await, "the writer is kept between writes");
        }

        // What a statement on a dead worker reports, as every ledger unit converts it.
        let e = super::LedgerError::from(sqlx::Error::WorkerCrashed);
        assert!(matches!(e, super::LedgerError::Unavailable(_)));

        assert!(!marked(&mut ledger.reader().await.unwrap()).await, "the reader was not replaced");
        assert!(!marked(&mut ledger.begin_single().await.unwrap()).await, "the writer was not replaced");
        insert_committed(&ledger, "after").await;
        assert_eq!(nonces(&ledger).await, ["after"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_sqlite_commits_all_land_and_are_synced() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ledger.db?mode=rwc", dir.path().display());
        let ledger = Ledger::connect(&url, 4).await.unwrap();
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let ledger = ledger.clone();
                tokio::spawn(async move { insert_committed(&ledger, &format!("n{i:02}")).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(nonces(&ledger).await.len(), 32);
        let super::Kept::Sqlite(kept) = &ledger.kept else { panic!("a SQLite ledger keeps SQLite connections") };
        let (commits, syncs, durable) = kept.wal.counts().await;
        assert_eq!(commits, 32);
        assert_eq!(durable, 32, "every commit returned only once durable");
        assert!((1..=32).contains(&syncs), "{syncs} fsyncs");
        eprintln!("32 concurrent commits, {syncs} fsyncs of the log");
    }
}
