//! Scheduled discovery (`[clm.discovery]`): scans the configured targets at start-up and then
//! every `interval`, recording every endpoint in the inventory like `privca discover` (audit
//! actor `system`). A scan that fails as a whole is logged and retried at the next tick;
//! endpoints that fail are counted, and the others recorded.

use tokio::sync::watch;

use crate::{app::App, clm::discover::record};

/// Runs until `stop` flips.
pub async fn run(app: App, lease: super::lease::Lease, mut stop: watch::Receiver<bool>) {
    let cfg = app.config.clm.discovery.clone();
    if !cfg.enabled {
        return;
    }
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = lease.next(&mut tick) => {
                // A scan runs to its end unless the server stops meanwhile.
                tokio::select! {
                    () = scan(&app, &cfg) => {}
                    _ = stop.changed() => return,
                }
            }
            _ = stop.changed() => return,
        }
    }
}

async fn scan(app: &App, cfg: &crate::config::discovery::DiscoveryConfig) {
    let started = std::time::Instant::now();
    let trust = match record::trust_store(&app.ledger).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "discovery: cannot read the CA certificates; scan skipped");
            return;
        }
    };
    let judge = record::Judge {
        trust: std::sync::Arc::new(trust),
        expiring_within: record::expiring_within(&app.config.clm, cfg.expiring_days),
        actor: "system".into(),
    };
    match record::scan_and_record(&app.ledger, cfg.targets.clone(), &cfg.options, &judge, |_| {}).await {
        Ok(reports) => {
            let served = reports.iter().filter(|r| r.observation.is_some()).count();
            let closed = reports.iter().filter(|r| r.no_listener).count();
            let with_findings =
                reports.iter().filter(|r| r.observation.as_ref().is_some_and(|o| !o.findings.is_empty())).count();
            for r in reports.iter().filter(|r| r.error.is_some() && !r.no_listener) {
                tracing::warn!(endpoint = %r.target.label(), error = r.error.as_deref().unwrap_or(""), "discovery: endpoint failed");
            }
            tracing::info!(
                endpoints = reports.len(),
                served,
                closed,
                failed = reports.len() - served - closed,
                with_findings,
                ms = started.elapsed().as_millis() as u64,
                "discovery scan done"
            );
        }
        Err(e) => tracing::warn!(error = %e, "discovery scan failed"),
    }
}
