//! Group commit for the SQLite ledger: one fsync of the write-ahead log makes every commit
//! before it durable.
//!
//! The kept write connection runs with `synchronous = NORMAL`: `COMMIT` appends the
//! transaction to the log and frees SQLite's write lock without an fsync. The committer then
//! calls [`WalSync::wait_durable`] with its ticket and returns only after an fsync of the log
//! that started after its commit has finished. Waiters queue on one lock; whoever holds it
//! syncs for every commit counted so far, so concurrent writers share fsyncs instead of
//! queueing one fsync each behind the write lock. Durability when a unit of work returns is
//! the same as with `synchronous = FULL` (a reservation is on disk before anything is signed,
//! a certificate before it leaves the server); SQLite's own checkpoints sync the log before
//! copying it and the database file after.
//!
//! A failed fsync is final for this process (fail-stop): after it, the kernel may have dropped
//! the log's dirty pages and report the next fsync clean, so no later commit could be trusted
//! durable. Every later unit of work fails before it starts and `/healthz` reports the ledger
//! down until privca is restarted; SQLite's recovery then keeps what reached the disk.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

use tokio::sync::Mutex;

/// The log file and the commit counters.
#[derive(Debug)]
pub(crate) struct WalSync {
    /// `<database>-wal`.
    path: PathBuf,
    /// Commits so far (tickets are 1, 2, ...).
    committed: AtomicU64,
    /// The highest ticket known durable; the lock is the right to fsync.
    durable: Mutex<u64>,
    /// fsyncs done.
    syncs: AtomicU64,
    /// An fsync failed: nothing written after the last good one is known durable.
    failed: AtomicBool,
}

impl WalSync {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            committed: AtomicU64::new(0),
            durable: Mutex::new(0),
            syncs: AtomicU64::new(0),
            failed: AtomicBool::new(false),
        }
    }

    /// `<database>-wal`.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Fails once an fsync of the log has failed (see the module documentation).
    pub(crate) fn check(&self) -> Result<(), sqlx::Error> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(sqlx::Error::Io(std::io::Error::other(
                "an fsync of the ledger's write-ahead log failed earlier; restart privca",
            )));
        }
        Ok(())
    }

    /// Counts a commit that has just completed; returns its ticket.
    pub(crate) fn committed(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Returns once the commit with `ticket` is on disk.
    pub(crate) async fn wait_durable(&self, ticket: u64) -> Result<(), sqlx::Error> {
        let mut durable = self.durable.lock().await;
        self.check()?;
        if *durable >= ticket {
            return Ok(());
        }
        // Every commit counted by now is in the log: one fsync covers them all.
        let target = self.committed.load(Ordering::SeqCst);
        let path = self.path.clone();
        let synced = tokio::task::spawn_blocking(move || match std::fs::File::open(&path) {
            Ok(f) => f.sync_data(),
            // No log: a checkpoint moved everything into the database file and synced it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        })
        .await
        .map_err(|e| sqlx::Error::Io(std::io::Error::other(e)))?;
        if let Err(e) = synced {
            self.failed.store(true, Ordering::SeqCst);
            tracing::error!(error = %e, log = %self.path.display(), "fsync of the ledger's write-ahead log failed: no further writes until privca is restarted");
            return Err(sqlx::Error::Io(e));
        }
        self.syncs.fetch_add(1, Ordering::SeqCst);
        metrics::counter!("privca_ledger_wal_syncs_total").increment(1);
        *durable = target;
        Ok(())
    }

    /// (commits, fsyncs, highest durable ticket).
    #[cfg(test)]
    pub(crate) async fn counts(&self) -> (u64, u64, u64) {
        let durable = *self.durable.lock().await;
        (self.committed.load(Ordering::SeqCst), self.syncs.load(Ordering::SeqCst), durable)
    }
}

#[cfg(test)]
mod tests {
    use super::WalSync;

    #[tokio::test]
    async fn a_failed_fsync_fails_every_later_commit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        // Opening "<regular file>/wal" fails with ENOTDIR, which is not "no log".
        let wal = WalSync::new(file.join("wal"));
        assert!(wal.check().is_ok());
        let ticket = wal.committed();
        assert!(wal.wait_durable(ticket).await.is_err());
        assert!(wal.check().is_err(), "the ledger refuses new units of work");
        assert!(wal.wait_durable(ticket).await.is_err(), "and never reports that commit durable");
        assert_eq!(wal.counts().await.1, 0, "no fsync counted");
    }
}
