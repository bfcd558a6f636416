//! Which connection a unit of work runs on. The ledger keeps its working connections out of
//! sqlx's pool, which pings a connection each time it takes one back (to flush whatever a
//! cancelled statement left behind): on SQLite one more hand-off to sqlx's thread per
//! statement, on PostgreSQL one more round trip.
//!
//! - SQLite ([`Sqlite`]): one kept reader for single-row reads by key, and one kept writer
//!   whose lock is this process's write turn; other reads use the pool.
//! - PostgreSQL ([`Postgres`]): up to `max_connections` kept connections (opened with one
//!   attempt each; while the database is unreachable, attempts are spaced a second apart and
//!   units of work fail at once in between), the first free one lent first (so a light load keeps few of them busy and none goes stale). sqlx's
//!   PostgreSQL connection drains a cancelled statement's replies before its next statement,
//!   so a connection is only checked (pinged) when it was idle long or after a
//!   connection-level failure anywhere in the process ([`note_fault`]); a transaction its owner
//!   dropped is rolled back before the connection is lent again.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use sqlx::{pool::PoolConnection, AnyConnection, AnyPool, ConnectOptions, Connection};
use tokio::sync::{Mutex, MutexGuard, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use super::{direct::Direct, statement::Statement, wal::WalSync, LedgerError};

/// Connection-level driver failures seen by this process (I/O, TLS, protocol, a crashed
/// worker). A kept PostgreSQL connection lent out before the latest one is pinged before it
/// is lent again, so a database restart costs the statements that find it, not every later one.
static CONNECTION_FAULTS: AtomicU64 = AtomicU64::new(0);

/// Counts `e` if it says the connection itself failed (see [`CONNECTION_FAULTS`]): a driver
/// error, or PostgreSQL's connection exception (SQLSTATE class 08) and operator intervention
/// (class 57: shutdown, `pg_terminate_backend`).
pub(crate) fn note_fault(e: &sqlx::Error) {
    let fault = match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57")),
        _ => false,
    };
    if fault {
        CONNECTION_FAULTS.fetch_add(1, Ordering::SeqCst);
    }
}

/// The kept SQLite writer's setting: commits reach the log without an fsync of their own;
/// `WriteTx::commit` waits for a shared one (`WalSync`) before it returns.
pub(super) const WRITER_PRAGMA: &str = "PRAGMA synchronous = NORMAL";

/// Statements above which a direct unit runs under `block_in_place` (the issuance units have
/// three to five).
const LONG_UNIT: usize = 32;

/// The SQLite connections this process keeps out of the pool.
///
/// After a connection-level failure anywhere in the process ([`note_fault`]: a crashed sqlx
/// worker, an I/O error) the kept reader and writer are replaced by fresh connections before
/// they are next used, instead of being kept: a connection whose worker thread has died
/// answers every later statement with `WorkerCrashed`, so keeping it would fail the ledger
/// until a restart. Opening a SQLite connection is a file open (no network), so they are
/// replaced without a check first.
#[derive(Debug)]
pub(super) struct Sqlite {
    /// Opens the replacements.
    pub(super) pool: AnyPool,
    /// Single-row reads by key, the hot reads of the protocols.
    pub(super) reader: Mutex<AnyConnection>,
    /// `CONNECTION_FAULTS` when the reader was opened.
    pub(super) reader_faults: AtomicU64,
    /// `CONNECTION_FAULTS` when the writer was opened.
    pub(super) writer_faults: AtomicU64,
    /// Every write of this process. SQLite admits one writer at a time and puts the others to
    /// sleep in its busy handler (1 ms, 2 ms, 5 ms… per retry); here writers take turns on
    /// this lock and the next one starts the moment the previous one commits (before the
    /// commit's fsync, which `wal` shares between commits).
    pub(super) writer: Arc<Mutex<WriteConn>>,
    /// Group fsync of the write-ahead log for the kept writer's commits.
    pub(super) wal: Arc<WalSync>,
    /// The issuance units' connection, used under the write turn (`direct`).
    pub(super) direct: Direct,
}

impl Sqlite {
    /// Connection-level failures counted so far (the value to store in `reader_faults` and
    /// `writer_faults` for connections opened now).
    pub(super) fn faults() -> u64 {
        CONNECTION_FAULTS.load(Ordering::SeqCst)
    }

    /// The kept reader, replaced first if a connection fault happened since it was opened.
    pub(super) async fn reader(&self) -> Result<MutexGuard<'_, AnyConnection>, sqlx::Error> {
        let mut reader = self.reader.lock().await;
        let faults = Self::faults();
        if self.reader_faults.load(Ordering::SeqCst) != faults {
            *reader = self.pool.acquire().await?.detach();
            self.reader_faults.store(faults, Ordering::SeqCst);
            tracing::info!("replaced the kept SQLite reader after a connection fault");
        }
        Ok(reader)
    }

    /// Replaces the kept writer `w` (whose turn the caller holds) if a connection fault
    /// happened since it was opened.
    async fn renew_writer(&self, w: &mut WriteConn) -> Result<(), sqlx::Error> {
        let faults = Self::faults();
        if self.writer_faults.load(Ordering::SeqCst) == faults {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?.detach();
        sqlx::query(WRITER_PRAGMA).execute(&mut conn).await?;
        w.conn = conn;
        w.open = false;
        self.writer_faults.store(faults, Ordering::SeqCst);
        tracing::info!("replaced the kept SQLite writer after a connection fault");
        Ok(())
    }

    /// This process's write turn, with any abandoned transaction rolled back.
    pub(super) async fn lock_writer(&self) -> OwnedMutexGuard<WriteConn> {
        let mut w = Arc::clone(&self.writer).lock_owned().await;
        w.settle().await;
        w
    }

    /// Runs `statements` as one unit of work on the direct writer while holding the write
    /// turn; returns once its commit is durable. A long unit (the sealer's, up to 500 updates:
    /// milliseconds) tells the runtime first, so the worker's other tasks move to another
    /// thread instead of waiting for it.
    pub(super) async fn run_direct(&self, statements: &[Statement]) -> Result<(), LedgerError> {
        self.wal.check()?;
        let turn = self.lock_writer().await;
        let long = statements.len() > LONG_UNIT
            && tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if long { tokio::task::block_in_place(|| self.direct.run(statements)) } else { self.direct.run(statements) }?;
        let ticket = self.wal.committed();
        drop(turn);
        Ok(self.wal.wait_durable(ticket).await?)
    }

    /// Like [`Sqlite::run_direct`] for a unit whose statements depend on what it reads: `plan`
    /// runs under the write turn (reading through [`Direct::read_row`], so no other write of
    /// this process lands between its reads and the unit) and returns its result and the
    /// statements (a few: run on the task's thread).
    pub(super) async fn run_direct_planned<T>(
        &self,
        plan: impl FnOnce(&Direct) -> Result<(T, Vec<Statement>), LedgerError>,
    ) -> Result<T, LedgerError> {
        self.wal.check()?;
        let turn = self.lock_writer().await;
        let (out, statements) = plan(&self.direct)?;
        self.direct.run(&statements)?;
        let ticket = self.wal.committed();
        drop(turn);
        self.wal.wait_durable(ticket).await?;
        Ok(out)
    }
}

/// A kept connection that transactions run on: the SQLite writer, or a PostgreSQL slot's.
#[derive(Debug)]
pub(crate) struct WriteConn {
    pub(super) conn: AnyConnection,
    /// A transaction was begun and its owner dropped it before committing.
    pub(super) open: bool,
}

impl WriteConn {
    /// Rolls back a transaction its owner abandoned (a cancelled request, an error); false if
    /// that failed.
    async fn settle(&mut self) -> bool {
        if !self.open {
            return true;
        }
        self.open = false;
        match sqlx::query("ROLLBACK").execute(&mut self.conn).await {
            Ok(_) => true,
            Err(e) => {
                note_fault(&e);
                tracing::warn!(error = %e, "rolling back an abandoned ledger transaction failed");
                false
            }
        }
    }
}

/// The PostgreSQL connections this process keeps out of the pool.
#[derive(Debug)]
pub(super) struct Postgres {
    /// Opens connections (then detached from it).
    pool: AnyPool,
    /// One per connection that may be lent at once (`max_connections`).
    permits: Arc<Semaphore>,
    /// Every connection opened so far; a lent one is locked.
    slots: std::sync::Mutex<Vec<Arc<Mutex<Slot>>>>,
    /// Until when opening a connection is not tried again (one failed moments ago).
    down_until: std::sync::Mutex<Option<Instant>>,
}

/// One kept PostgreSQL connection.
#[derive(Debug)]
pub(crate) struct Slot {
    conn: WriteConn,
    /// When it was last given back.
    since: Instant,
    /// `CONNECTION_FAULTS` when it was last known good.
    faults: u64,
    /// It must be replaced before it is lent again.
    broken: bool,
}

impl Slot {
    async fn settle(&mut self) {
        if !self.conn.settle().await {
            self.broken = true;
        }
    }
}

impl Postgres {
    /// A connection idle this long is pinged before it is lent (the database may have
    /// restarted or dropped it meanwhile).
    const IDLE_CHECK: Duration = Duration::from_secs(10);
    /// How long opening a connection may take.
    const OPEN_TIMEOUT: Duration = Duration::from_secs(3);
    /// How long after a failed open the next one is tried.
    const RETRY_OPEN: Duration = Duration::from_secs(1);

    pub(super) fn new(pool: AnyPool, max_connections: u32) -> Self {
        Self {
            pool,
            permits: Arc::new(Semaphore::new(max_connections as usize)),
            slots: std::sync::Mutex::new(Vec::new()),
            down_until: std::sync::Mutex::new(None),
        }
    }

    /// Opens a connection: one attempt, bounded by [`Postgres::OPEN_TIMEOUT`] (the pool
    /// would retry a refused connection until its acquire timeout, holding the request that
    /// much longer). After a failure, no attempt is made for [`Postgres::RETRY_OPEN`]: units
    /// of work fail at once while the database is down instead of each waiting for its own
    /// failed attempt, and one attempt per interval finds it back.
    async fn open(&self) -> Result<AnyConnection, sqlx::Error> {
        let down = || {
            sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "PostgreSQL was unreachable moments ago; not retried yet",
            ))
        };
        let until = *self.down_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if until.is_some_and(|t| Instant::now() < t) {
            return Err(down());
        }
        let options = self.pool.connect_options();
        let opened = match tokio::time::timeout(Self::OPEN_TIMEOUT, options.connect()).await {
            Ok(opened) => opened,
            Err(_) => Err(sqlx::Error::PoolTimedOut),
        };
        let mut until = self.down_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &opened {
            Ok(_) => *until = None,
            Err(e) => {
                *until = Some(Instant::now() + Self::RETRY_OPEN);
                tracing::error!(error = %e, "cannot open a ledger connection to PostgreSQL");
            }
        }
        opened
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Mutex<Slot>>>> {
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lends a connection: a free one (checked or replaced if it needs to be) or a new one.
    pub(super) async fn acquire(&self) -> Result<PgConn, sqlx::Error> {
        let permit = Arc::clone(&self.permits).acquire_owned().await.map_err(|_| sqlx::Error::PoolClosed)?;
        let faults = CONNECTION_FAULTS.load(Ordering::SeqCst);
        let free = self.slots().iter().find_map(|s| Arc::clone(s).try_lock_owned().ok());
        let mut slot = match free {
            Some(slot) => slot,
            // With a permit held, fewer than `max_connections` slots are lent: room for one.
            None => {
                let conn = WriteConn { conn: self.open().await?, open: false };
                let slot = Arc::new(Mutex::new(Slot { conn, since: Instant::now(), faults, broken: false }));
                self.slots().push(Arc::clone(&slot));
                slot.lock_owned().await
            }
        };
        slot.settle().await;
        if slot.broken || slot.faults != faults || slot.since.elapsed() >= Self::IDLE_CHECK {
            if slot.broken || slot.conn.conn.ping().await.is_err() {
                slot.broken = true;
                tracing::info!("replacing a kept ledger connection that failed its check");
                slot.conn.conn = self.open().await?;
                slot.broken = false;
            }
            slot.faults = faults;
        }
        Ok(PgConn { slot, _permit: permit })
    }

    /// Closes the connections that are not lent (shutdown).
    pub(super) async fn close(&self) {
        let slots: Vec<_> = self.slots().drain(..).collect();
        for slot in slots {
            // A slot still lent is closed when its borrower drops it.
            if let Ok(slot) = Arc::try_unwrap(slot) {
                if let Err(e) = slot.into_inner().conn.conn.close().await {
                    tracing::debug!(error = %e, "closing a kept ledger connection failed");
                }
            }
        }
    }
}

/// A lent PostgreSQL connection (its slot stays locked until this is dropped).
pub(crate) struct PgConn {
    slot: OwnedMutexGuard<Slot>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for PgConn {
    fn drop(&mut self) {
        self.slot.since = Instant::now();
    }
}

impl std::ops::Deref for PgConn {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.slot.conn.conn
    }
}

impl std::ops::DerefMut for PgConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.slot.conn.conn
    }
}

/// A connection for reads: the kept SQLite reader, a pooled SQLite connection, or a kept
/// PostgreSQL one.
pub(crate) enum Conn<'a> {
    Reader(MutexGuard<'a, AnyConnection>),
    Pooled(PoolConnection<sqlx::Any>),
    Kept(PgConn),
}

impl std::ops::Deref for Conn<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            Conn::Reader(c) => c,
            Conn::Pooled(c) => c,
            Conn::Kept(c) => c,
        }
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Conn::Reader(c) => c,
            Conn::Pooled(c) => c,
            Conn::Kept(c) => c,
        }
    }
}

/// A write transaction: on SQLite on the kept write connection (holding its lock until it
/// ends), on PostgreSQL on a kept connection. Derefs to the connection, like
/// `sqlx::Transaction`; dropped without `commit`, it rolls back.
pub(crate) struct WriteTx {
    inner: TxInner,
    /// A unit of one statement, which is its own transaction: no `BEGIN` or `COMMIT`.
    single: bool,
}

enum TxInner {
    Sqlite(SqliteTx),
    Postgres(PgTx),
}

/// The write lock with a transaction open on it, and the log its commit must reach.
struct SqliteTx(OwnedMutexGuard<WriteConn>, Arc<WalSync>);

impl Drop for SqliteTx {
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

/// A kept PostgreSQL connection with a transaction open on it (until its `open` is false).
struct PgTx(PgConn);

impl Drop for PgTx {
    /// An abandoned transaction holds its row locks until it ends: roll it back now rather
    /// than when the connection is next lent (which does it first thing otherwise).
    fn drop(&mut self) {
        if !self.0.slot.conn.open {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let slot = Arc::clone(OwnedMutexGuard::mutex(&self.0.slot));
            rt.spawn(async move { slot.lock_owned().await.settle().await });
        }
    }
}

impl WriteTx {
    /// SQLite: takes this process's write turn and begins (`BEGIN IMMEDIATE`, so that another
    /// process's writer makes it wait at the start, never midway).
    /// With `single`, nothing is begun: the caller runs one statement, which is its own
    /// transaction.
    pub(super) async fn sqlite(kept: &Sqlite, single: bool) -> Result<WriteTx, sqlx::Error> {
        kept.wal.check()?;
        let mut w = kept.lock_writer().await;
        kept.renew_writer(&mut w).await?;
        if !single {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut w.conn).await?;
            w.open = true;
        }
        Ok(WriteTx { inner: TxInner::Sqlite(SqliteTx(w, Arc::clone(&kept.wal))), single })
    }

    /// PostgreSQL: begins on a kept connection (with `single`, as above).
    pub(super) async fn postgres(kept: &Postgres, single: bool) -> Result<WriteTx, sqlx::Error> {
        let mut conn = kept.acquire().await?;
        if !single {
            sqlx::query("BEGIN").execute(&mut *conn).await?;
            conn.slot.conn.open = true;
        }
        Ok(WriteTx { inner: TxInner::Postgres(PgTx(conn)), single })
    }

    /// Commits and returns once the commit is durable. On SQLite the turn passes to the next
    /// writer right after `COMMIT`, before the log's fsync, which commits share (`WalSync`).
    /// (A single statement committed itself; this only waits until it is durable.)
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self.inner {
            TxInner::Sqlite(mut kept) => {
                if !self.single {
                    sqlx::query("COMMIT").execute(&mut kept.0.conn).await?;
                    kept.0.open = false;
                }
                let wal = Arc::clone(&kept.1);
                let ticket = wal.committed();
                drop(kept);
                wal.wait_durable(ticket).await
            }
            TxInner::Postgres(_) if self.single => Ok(()),
            TxInner::Postgres(mut tx) => {
                sqlx::query("COMMIT").execute(&mut *tx.0).await?;
                tx.0.slot.conn.open = false;
                Ok(())
            }
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match &self.inner {
            TxInner::Sqlite(kept) => &kept.0.conn,
            TxInner::Postgres(tx) => &tx.0,
        }
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.inner {
            TxInner::Sqlite(kept) => &mut kept.0.conn,
            TxInner::Postgres(tx) => &mut tx.0,
        }
    }
}
