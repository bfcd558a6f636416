//! Keeps every CA's CRLs current: a complete CRL every `crl.full_interval` (and before the
//! previous one's nextUpdate) and `crl.full_after_revocation` after a revocation it does not
//! list was first seen, a delta CRL every `crl.delta_interval` and within `crl.check_interval`
//! of a revocation. Revocations are read from the ledger (the newest revocation sequence of
//! each CA against the one each published CRL reflects), so a `privca revoke` in another
//! process or a revocation by another instance on the same database is picked up too.
//!
//! The complete CRL after revocations is debounced: the first tick that sees a revocation
//! missing from the complete CRL starts the wait, and revocations seen during the wait join the
//! same CRL, so a burst makes one complete CRL (two when it straddles a publication), not one per
//! revocation. It does not sign anything itself: CRLs go through
//! [`CertificateAuthority::publish_crl`] (cRLNumber reserved in the ledger, signed in the HSM).

use std::{collections::HashMap, time::Duration};

use tokio::{sync::watch, time::Instant};

use crate::{
    ca::CertificateAuthority,
    error::CaError,
    ledger::{self, CrlKind},
};

/// Runs until `stop` flips.
pub async fn run(ca: CertificateAuthority, lease: super::lease::Lease, mut stop: watch::Receiver<bool>) {
    let mut publisher = Publisher::default();
    let mut tick = tokio::time::interval(ca.config().crl.check_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = publisher.next_deadline(&ca);
        tokio::select! {
            _ = tick.tick() => publisher.tick_if(&ca, &lease).await,
            _ = sleep_until(deadline), if deadline.is_some() => publisher.tick_if(&ca, &lease).await,
            _ = stop.changed() => return,
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(d).await;
    }
}

/// What one [`Publisher::refresh`] published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// A complete CRL (on schedule or after revocations).
    pub full: bool,
    /// A delta CRL.
    pub delta: bool,
}

/// The publisher's memory between ticks: since when each CA's newest complete CRL (by cRLNumber)
/// has been known to miss a revocation. A complete CRL published meanwhile by anyone else (the
/// CLI, another instance) restarts the wait; a restart of the process does too.
#[derive(Debug, Default)]
pub struct Publisher {
    stale_since: HashMap<String, (i64, Instant)>,
}

impl Publisher {
    /// [`Publisher::tick`] while this instance holds the job's lease; otherwise it forgets its
    /// waits (the holder keeps its own).
    pub async fn tick_if(&mut self, ca: &CertificateAuthority, lease: &super::lease::Lease) {
        if lease.held() {
            self.tick(ca).await;
        } else {
            self.stale_since.clear();
        }
    }

    /// Refreshes every CA (root and issuers), logging failures.
    pub async fn tick(&mut self, ca: &CertificateAuthority) {
        let ids: Vec<String> = ca.root().into_iter().chain(ca.issuers()).map(|i| i.id.clone()).collect();
        for id in ids {
            if let Err(e) = self.refresh(ca, &id).await {
                tracing::error!(ca = %id, error = %e, "CRL publication failed");
            }
        }
    }

    /// When the earliest pending complete CRL after revocations is due, if that is still ahead
    /// (one that failed past its deadline is retried on the regular tick, never in a loop).
    pub fn next_deadline(&self, ca: &CertificateAuthority) -> Option<Instant> {
        let delay = ca.config().crl.full_after_revocation?;
        let now = Instant::now();
        self.stale_since.values().map(|(_, since)| *since + delay).filter(|d| *d > now).min()
    }

    /// Publishes whatever `id` needs now.
    pub async fn refresh(&mut self, ca: &CertificateAuthority, id: &str) -> Result<Refreshed, CaError> {
        let cfg = &ca.config().crl;
        let now = ledger::now();
        let due = |this_update: i64, next_update: i64, interval: Duration| {
            now >= this_update + interval.as_secs() as i64 || now >= next_update - (next_update - this_update) / 4
        };
        let ledger = ca.ledger();
        let full = ledger.latest_crl(id, CrlKind::Full, false).await?;
        let full = match full {
            Some(f) if !due(f.this_update, f.next_update, cfg.full_interval) => f,
            _ => return self.publish_both(ca, id).await,
        };
        let newest_revocation = ledger.latest_revocation_seq(id).await?;
        if newest_revocation > full.revocation_seq {
            if let Some(delay) = cfg.full_after_revocation {
                let since = match self.stale_since.get(id) {
                    Some((number, since)) if *number == full.number => *since,
                    _ => {
                        let now = Instant::now();
                        self.stale_since.insert(id.to_owned(), (full.number, now));
                        now
                    }
                };
                if since.elapsed() >= delay {
                    tracing::debug!(
                        ca = id,
                        waited_ms = since.elapsed().as_millis() as u64,
                        "complete CRL after revocations"
                    );
                    return self.publish_both(ca, id).await;
                }
            }
        } else {
            self.stale_since.remove(id);
        }
        let delta = ledger.latest_crl(id, CrlKind::Delta, false).await?;
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
        Ok(Refreshed { full: false, delta: stale })
    }

    /// A complete CRL, then a delta on it. The wait ends here: a revocation committed while the
    /// complete CRL was built is newer than the sequence it reflects and starts the next one.
    async fn publish_both(&mut self, ca: &CertificateAuthority, id: &str) -> Result<Refreshed, CaError> {
        ca.publish_crl(id, false).await?;
        self.stale_since.remove(id);
        ca.publish_crl(id, true).await?;
        Ok(Refreshed { full: true, delta: true })
    }
}
