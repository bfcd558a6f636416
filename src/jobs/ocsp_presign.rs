//! Keeps a pre-signed OCSP response for every live certificate: signs the first one soon
//! after commit, refreshes each before `ocsp.refresh_before` of its nextUpdate, re-signs at once
//! when a revocation lands (revocations first), and rotates the delegated responders. Signing is
//! paced to `ocsp.presign_per_second`; a full batch means a backlog, which is logged.

use tokio::sync::watch;

use crate::{ca::ocsp::OcspService, ledger};

/// Runs until `stop` flips.
pub(crate) async fn run(
    service: OcspService,
    ledger: ledger::Ledger,
    cfg: crate::config::OcspConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(cfg.check_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let budget = (f64::from(cfg.presign_per_second) * cfg.check_interval.as_secs_f64()).max(1.0) as i64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = service.ensure_responders().await {
            tracing::error!(error = %e, "OCSP responder rotation failed");
        }
        let now = ledger::now();
        let refresh = now + cfg.refresh_before.as_secs() as i64;
        let work = match ledger.ocsp_work(now, refresh, budget).await {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "OCSP pre-signer cannot read the ledger");
                continue;
            }
        };
        metrics::gauge!("privca_ocsp_presign_backlog").set(work.len() as f64);
        if work.len() as i64 == budget {
            tracing::info!(batch = budget, "OCSP pre-signing backlog: more work than this period's budget");
        }
        let started = tokio::time::Instant::now();
        for w in &work {
            if *stop.borrow() {
                return;
            }
            if let Err(e) = service.presign(w).await {
                tracing::error!(serial = %w.serial, error = %e, "OCSP pre-signing failed");
            }
        }
        if !work.is_empty() {
            tracing::debug!(signed = work.len(), took = ?started.elapsed(), "OCSP responses pre-signed");
        }
    }
}
