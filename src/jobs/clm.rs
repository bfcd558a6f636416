//! The CLM jobs of `privca serve`: the expiry policy every `clm.interval` (and once at start),
//! followed by the deployment checks of the endpoints not verified yet since a renewal, and
//! the delivery of the notification outbox every `clm.delivery.interval`. Each runs on its own
//! task, so a channel that is down delays only its own messages, never issuance or the policy
//! job.

use tokio::sync::watch;

use crate::{
    app::App,
    clm::{self, notify::Notifier, templates::Templates},
};

use super::lease::Lease;

/// Runs the policy job until `stop`.
pub async fn policy(app: App, templates: Templates, lease: Lease, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(app.config.clm.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = lease.next(&mut tick) => {
                let started = std::time::Instant::now();
                match clm::run_policy(&app.ledger, &app.config.clm, crate::ledger::now()).await {
                    Ok(run) => tracing::info!(
                        evaluated = run.evaluated, queued = run.queued, undeliverable = run.undeliverable,
                        superseded = run.superseded, ms = started.elapsed().as_millis() as u64, "CLM policy run"
                    ),
                    Err(e) => tracing::warn!(error = %e, "CLM policy run failed"),
                }
                match clm::events::run(&app.ledger, &app.config, &templates, crate::ledger::now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(queued = n, "CLM event notices"),
                    Err(e) => tracing::warn!(error = %e, "CLM event notices failed"),
                }
                match clm::digest::run(&app.ledger, &app.config.clm, crate::ledger::now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(queued = n, "CLM daily digests"),
                    Err(e) => tracing::warn!(error = %e, "CLM daily digests failed"),
                }
                match app.ca().await {
                    Ok(ca) => match clm::retire::run(&ca, &app.config.clm, crate::ledger::now()).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(revoked = n, "CLM: superseded certificates revoked"),
                        Err(e) => tracing::warn!(error = %e, "CLM: revoking superseded certificates failed"),
                    },
                    Err(e) => tracing::warn!(error = %e, "CLM: the CA is not available"),
                }
                let now = crate::ledger::now();
                let selection = clm::deploy::Selection {
                    serial: None,
                    pending_only: true,
                    issued_before: Some(now - clm::deploy::GRACE),
                    actor: "system".into(),
                };
                match clm::deploy::verify(&app.ledger, &app.config.clm, &templates, &selection, now).await {
                    Ok(run) if run.checks.is_empty() => {}
                    Ok(run) => tracing::info!(
                        checked = run.checks.len(), failed = run.checks.iter().filter(|c| !c.ok).count(),
                        queued = run.queued, "CLM deployment checks"
                    ),
                    Err(e) => tracing::warn!(error = %e, "CLM deployment checks failed"),
                }
                if let Err(e) = clm::publish_metrics(&app.ledger, &app.config.clm, crate::ledger::now()).await {
                    tracing::warn!(error = %e, "CLM metrics not updated");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Delivers the outbox until `stop`.
pub async fn delivery(
    app: App,
    notifier: Notifier,
    templates: Templates,
    lease: Lease,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(app.config.clm.delivery.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = lease.next(&mut tick) => {
                match clm::deliver(&app.ledger, &notifier, &app.config.clm, &templates, crate::ledger::now()).await {
                    Ok(run) if run.sent + run.retried + run.dead > 0 => {
                        tracing::info!(sent = run.sent, retried = run.retried, dead = run.dead, "CLM notifications")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "CLM delivery failed"),
                }
            }
            _ = stop.changed() => return,
        }
    }
}
