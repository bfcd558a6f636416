//! Keeps a pre-signed OCSP response for every live certificate: signs the first one right after
//! commit (from the CA's change feed), re-signs at once when a revocation lands (revocations
//! first), refreshes each response before `ocsp.refresh_before` of its nextUpdate, and rotates
//! the delegated responders. A periodic ledger sweep catches whatever the feed missed
//! (certificates committed by other processes or instances, a full feed). Signing is paced to
//! `ocsp.presign_per_second`; work beyond a period's budget waits, and the backlog is a metric.

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
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(cfg.check_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let budget = (f64::from(cfg.presign_per_second) * cfg.check_interval.as_secs_f64()).max(1.0) as i64;
    let mut spent = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = service.ensure_responders().await {
                    tracing::error!(error = %e, "OCSP responder rotation failed");
                }
                spent = sweep(&service, &ledger, &cfg, budget, &stop).await;
            }
            Some(change) = changes.recv(), if spent < budget => match change {
                LedgerChange::Committed { serial, issuer_id } => {
                    let work = OcspWork { serial, hash_alg: "sha1".into(), issuer_id, revocation_pending: false };
                    presign(&service, &work).await;
                    spent += 1;
                }
                LedgerChange::Revoked => spent += sweep(&service, &ledger, &cfg, budget - spent, &stop).await,
            },
            _ = stop.changed() => return,
        }
    }
}

/// Signs up to `budget` responses the ledger says are due (revocations first); returns how many.
async fn sweep(
    service: &OcspService,
    ledger: &ledger::Ledger,
    cfg: &crate::config::OcspConfig,
    budget: i64,
    stop: &watch::Receiver<bool>,
) -> i64 {
    let now = ledger::now();
    let refresh = now + cfg.refresh_before.as_secs() as i64;
    let work = match ledger.ocsp_work(now, refresh, budget).await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "OCSP pre-signer cannot read the ledger");
            return 0;
        }
    };
    metrics::gauge!("privca_ocsp_presign_backlog").set(work.len() as f64);
    if work.len() as i64 == budget {
        tracing::info!(batch = budget, "OCSP pre-signing backlog: more work than this period's budget");
    }
    let started = tokio::time::Instant::now();
    for w in &work {
        if *stop.borrow() {
            break;
        }
        presign(service, w).await;
    }
    if !work.is_empty() {
        tracing::debug!(signed = work.len(), took = ?started.elapsed(), "OCSP responses pre-signed");
    }
    work.len() as i64
}

async fn presign(service: &OcspService, work: &OcspWork) {
    if let Err(e) = service.presign(work).await {
        tracing::error!(serial = %work.serial, error = %e, "OCSP pre-signing failed");
    }
}
