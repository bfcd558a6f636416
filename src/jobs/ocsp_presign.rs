//! Keeps a pre-signed OCSP response for every live certificate: signs the first one right after
//! commit (from the CA's change feed), re-signs at once when a revocation lands (revocations
//! first; on every instance, each tick, the memory cache drops the answers of certificates
//! revoked since the last), refreshes each response before `ocsp.refresh_before` of its nextUpdate, and rotates
//! the delegated responders. Each tick reads what changed through indexes (revocations after
//! the last sequence handled, certificates committed in the last minutes without a response,
//! responses about to expire), which also catches what other processes or instances commit; a
//! full sweep of every live certificate runs every five minutes (and at start) as the
//! safety net. Signing is paced to `ocsp.presign_per_second`; work beyond a period's budget
//! waits, and the backlog is a metric.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::{
    ca::{changes::LedgerChange, ocsp::OcspService},
    ledger::{self, OcspWork},
};

/// Runs until `stop` flips.
pub(crate) async fn run(
    service: OcspService,
    ledger: ledger::Ledger,
    cfg: crate::config::OcspConfig,
    mut changes: mpsc::Receiver<LedgerChange>,
    lease: super::lease::Lease,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(cfg.check_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let budget = (f64::from(cfg.presign_per_second) * cfg.check_interval.as_secs_f64()).max(1.0) as i64;
    let mut spent = 0;
    let mut sweeper = Sweeper::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // Each instance keeps its own responders current (loaded from the ledger, or
                // issued) and signs after its own commits and revocations (below); the sweep
                // of the whole ledger is the lease holder's.
                if let Err(e) = service.ensure_responders().await {
                    tracing::error!(error = %e, "OCSP responder rotation failed");
                }
                let counter = forget_revoked(&service).await;
                if !lease.held() {
                    spent = 0;
                    continue;
                }
                spent = sweeper.sweep(&service, &ledger, &cfg, budget, counter, &stop).await;
            }
            Some(change) = changes.recv(), if spent < budget => match change {
                LedgerChange::Committed { serial, issuer_id } => {
                    let work = OcspWork { serial, hash_alg: "sha1".into(), issuer_id, revocation_pending: false };
                    presign(&service, &work).await;
                    spent += 1;
                }
                LedgerChange::Revoked => {
                    let counter = forget_revoked(&service).await;
                    spent += sweeper.sweep(&service, &ledger, &cfg, budget - spent, counter, &stop).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

/// How often every live certificate is read: the safety net for what a tick's indexed reads
/// cannot see (a certificate committed minutes after its `created_at`, a response deleted by
/// hand, a failed signature).
const FULL_SWEEP_INTERVAL: Duration = Duration::from_secs(300);

/// The furthest back a tick looks for certificates without a response (before the first
/// clean tick, or after ticks that left work behind).
const RECENT_SECS: i64 = 120;

/// How much earlier than the last clean tick's read the next one starts looking: a
/// certificate's `created_at` is stamped inside its commit (milliseconds before it becomes
/// visible), so this covers slow commits and clock skew between instances; anything later
/// still is the full sweep's.
const COMMIT_LAG_SECS: i64 = 30;

/// Where the sweeps stand.
#[derive(Default)]
struct Sweeper {
    /// When the last full sweep finished within its budget.
    last_full: Option<tokio::time::Instant>,
    /// Every revocation up to this sequence has its response signed.
    revoked_after: i64,
    /// Every certificate created before this (Unix seconds) and visible at the last clean
    /// tick has a response: a tick reads certificates created since then, not every one of
    /// the last [`RECENT_SECS`] (at a steady issuance rate, a quarter as many rows per tick).
    created_since: Option<i64>,
}

impl Sweeper {
    /// Signs up to `budget` responses the ledger says are due (revocations first); returns how
    /// many it tried. `counter` is the revocation counter when the caller has just read it
    /// (read before the due work, so every revocation up to it is in that read).
    async fn sweep(
        &mut self,
        service: &OcspService,
        ledger: &ledger::Ledger,
        cfg: &crate::config::OcspConfig,
        budget: i64,
        counter: Option<i64>,
        stop: &watch::Receiver<bool>,
    ) -> i64 {
        let now = ledger::now();
        let refresh = now + cfg.refresh_before.as_secs() as i64;
        let full = self.last_full.is_none_or(|t| t.elapsed() >= FULL_SWEEP_INTERVAL);
        let read = async {
            let counter = match counter {
                Some(c) => c,
                None => ledger.revocation_counter().await?,
            };
            let work = if full {
                ledger.ocsp_work(now, refresh, budget).await?
            } else {
                let since = self.created_since.unwrap_or(i64::MIN).max(now - RECENT_SECS);
                ledger.ocsp_recent_work(now, refresh, self.revoked_after, since, budget).await?
            };
            Ok::<_, ledger::LedgerError>((counter, work))
        };
        let (counter, work) = match read.await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "OCSP pre-signer cannot read the ledger");
                return 0;
            }
        };
        metrics::gauge!("privca_ocsp_presign_backlog").set(work.len() as f64);
        if work.len() as i64 == budget {
            tracing::info!(batch = budget, "OCSP pre-signing backlog: more work than this period's budget");
        }
        if !work.is_empty() {
            tracing::debug!(due = work.len(), full, "OCSP pre-signing started");
        }
        let started = tokio::time::Instant::now();
        let mut all_signed = true;
        for w in &work {
            if *stop.borrow() {
                return work.len() as i64;
            }
            all_signed &= presign(service, w).await;
        }
        if !work.is_empty() {
            tracing::debug!(signed = work.len(), full, took = ?started.elapsed(), "OCSP responses pre-signed");
        }
        if (work.len() as i64) < budget && all_signed {
            // Nothing due was left behind: every revocation up to the counter is reflected, and
            // every certificate visible at this read has its response.
            self.revoked_after = self.revoked_after.max(counter);
            self.created_since = Some(now - COMMIT_LAG_SECS);
            if full {
                self.last_full = Some(started);
            }
        }
        work.len() as i64
    }
}

/// Drops the memory cache's answers of certificates revoked since the last tick (logged if
/// the ledger cannot say which); the revocation counter it read, if it could.
async fn forget_revoked(service: &OcspService) -> Option<i64> {
    service
        .forget_revoked()
        .await
        .inspect_err(|e| tracing::error!(error = %e, "OCSP cache cannot read the latest revocations"))
        .ok()
}

/// Signs one response; false (logged) if that failed.
async fn presign(service: &OcspService, work: &OcspWork) -> bool {
    match service.presign(work).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(serial = %work.serial, error = %e, "OCSP pre-signing failed");
            false
        }
    }
}
