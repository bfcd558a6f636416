//! Keeps every CA's CRLs current: a complete CRL every `crl.full_interval` (and before the
//! previous one's nextUpdate), a delta CRL every `crl.delta_interval` and within
//! `crl.check_interval` of a revocation, reading revocations from the ledger so that a
//! `privca revoke` in another process is picked up too.

use tokio::sync::watch;

use crate::{
    ca::CertificateAuthority,
    error::CaError,
    ledger::{self, CrlKind},
};

/// Runs until `stop` flips.
pub(crate) async fn run(ca: CertificateAuthority, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(ca.config().crl.check_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let ids: Vec<String> = ca.root().into_iter().chain(ca.issuers()).map(|i| i.id.clone()).collect();
                for id in ids {
                    if let Err(e) = refresh(&ca, &id).await {
                        tracing::error!(ca = %id, error = %e, "CRL publication failed");
                    }
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Publishes whatever `id` needs now.
pub async fn refresh(ca: &CertificateAuthority, id: &str) -> Result<(), CaError> {
    let cfg = &ca.config().crl;
    let now = ledger::now();
    let due = |this_update: i64, next_update: i64, interval: std::time::Duration| {
        now >= this_update + interval.as_secs() as i64 || now >= next_update - (next_update - this_update) / 4
    };
    let ledger = ca.ledger();
    let full = ledger.latest_crl(id, CrlKind::Full, false).await?;
    let full = match full {
        Some(f) if !due(f.this_update, f.next_update, cfg.full_interval) => f,
        _ => {
            ca.publish_crl(id, false).await?;
            ca.publish_crl(id, true).await?;
            return Ok(());
        }
    };
    let delta = ledger.latest_crl(id, CrlKind::Delta, false).await?;
    let newest_revocation = ledger.latest_revocation_seq(id).await?;
    let stale = match &delta {
        None => true,
        Some(d) => {
            d.base_number != Some(full.number)
                || newest_revocation > d.revocation_seq
                || due(d.this_update, d.next_update, cfg.delta_interval)
        }
    };
    if stale {
        ca.publish_crl(id, true).await?;
    }
    Ok(())
}
