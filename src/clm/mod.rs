//! Certificate lifecycle management on the ledger: the inventory (privca's certificates and
//! the imported or discovered ones, with owner, tier, application, renewal method and tags),
//! the expiry policy per tier ([`policy`]), the notification outbox and its delivery
//! ([`notify`], [`templates`]), and the certificates privca did not issue, found by discovery
//! scans ([`discover`]) or imported from files ([`import`]), and the check that a renewed
//! certificate is deployed where its predecessor was seen ([`deploy`]). Everything is read from and written
//! to the ledger in units of work; the jobs that run it on a schedule are in `jobs::clm` and
//! `jobs::discovery`.

pub mod cli;
pub mod deploy;
pub mod digest;
pub mod discover;
pub mod events;
pub mod import;
pub mod inventory;
pub mod notify;
pub mod policy;
pub(crate) mod query;
pub mod retire;
pub mod templates;

use std::collections::HashMap;

use crate::{
    config::clm::{ClmConfig, TierPolicy},
    ledger::{CandidateSet, Decision, ExpiringWindows, Ledger, LedgerError, OutboxMessage},
    policy::Tier,
};

use self::{notify::Notifier, templates::Templates};

/// Certificates looked at per unit of work.
const POLICY_BATCH: i64 = 25000;

/// Outbox messages claimed per delivery round.
const DELIVERY_BATCH: i64 = 50;

/// How long a claimed message stays with its sender before another may claim it.
const DELIVERY_LEASE: i64 = 300;

/// What one run of the policy job did.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyRun {
    /// Certificates looked at.
    pub evaluated: u64,
    /// Messages queued (pending).
    pub queued: u64,
    /// Notices no contact can receive (dead-lettered on channel `none`).
    pub undeliverable: u64,
    /// Certificates found superseded.
    pub superseded: u64,
    /// Time spent reading candidates.
    pub read: std::time::Duration,
    /// Time spent recording decisions.
    pub write: std::time::Duration,
}

impl PolicyRun {
    fn count(&mut self, decisions: &[Decision]) {
        for d in decisions {
            self.evaluated += 1;
            self.superseded += u64::from(d.superseded_by.is_some() && d.messages.is_empty());
            for m in &d.messages {
                if m.state == "pending" {
                    self.queued += 1;
                } else {
                    self.undeliverable += 1;
                }
            }
        }
    }
}

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryRun {
    /// Delivered.
    pub sent: u64,
    /// Failed, to be retried.
    pub retried: u64,
    /// Failed for the last time (dead-lettered).
    pub dead: u64,
}

/// Each tier's first notice threshold, in seconds: what "expiring" means in the inventory.
pub fn first_threshold(config: &ClmConfig) -> ExpiringWindows {
    let secs = |p: &TierPolicy| i64::from(p.thresholds.first().copied().unwrap_or(30)) * 86_400;
    ExpiringWindows {
        tiers: config.tiers.iter().map(|(t, p)| (t.as_str().to_owned(), secs(p))).collect(),
        other: secs(&TierPolicy::default_for(&Tier::stored(String::new()))),
    }
}

/// Evaluates every certificate due for a look at `now` and records the decisions (outbox rows
/// and next looks) one batch per unit of work, reading the next batch while one is written.
/// A crash between batches loses nothing: the
/// certificates of an unrecorded batch are still due, and a decision recorded twice is one row.
pub async fn run_policy(ledger: &Ledger, config: &ClmConfig, now: i64) -> Result<PolicyRun, LedgerError> {
    let owners: HashMap<_, _> = ledger.owners().await?.into_iter().map(|o| (o.name.clone(), o)).collect();
    let other = TierPolicy::default_for(&Tier::stored(String::new()));
    let window = config
        .tiers
        .values()
        .chain([&other])
        .flat_map(|p| p.thresholds.first().copied().into_iter().chain(p.escalate_within))
        .max()
        .unwrap_or(0);
    let window_end = now + i64::from(window) * 86_400;
    let mut run = PolicyRun::default();
    for set in [CandidateSet::Privca, CandidateSet::Flagged, CandidateSet::External] {
        let read = |after| async move {
            let started = std::time::Instant::now();
            let batch = ledger.policy_candidates(set, now, window_end, after, POLICY_BATCH).await;
            (batch, started.elapsed())
        };
        let (mut batch, took) = read(None).await;
        run.read += took;
        loop {
            let batch_now = batch?;
            let decisions: Vec<_> = batch_now.iter().map(|c| policy::decide(c, config, &owners, now)).collect();
            // The next page lies after this one in (notAfter, fingerprint) order and its
            // selection does not depend on this one's decisions: read it while they are written.
            let after = match batch_now.last() {
                Some(last) if batch_now.len() as i64 == POLICY_BATCH => {
                    Some((last.not_after, last.fingerprint.clone()))
                }
                _ => None,
            };
            let write = async {
                let started = std::time::Instant::now();
                (ledger.record_decisions(&decisions).await, started.elapsed())
            };
            let next = async {
                match after {
                    Some(after) => Some(read(Some(after)).await),
                    None => None,
                }
            };
            let ((written, took), next) = tokio::join!(write, next);
            written?;
            run.write += took;
            run.count(&decisions);
            match next {
                Some((next, took)) => {
                    run.read += took;
                    batch = next;
                }
                None => break,
            }
        }
    }
    metrics::counter!("privca_clm_policy_evaluated_total").increment(run.evaluated);
    Ok(run)
}

/// Publishes the inventory gauges (a scan of the inventory: run after each policy run):
/// `privca_clm_certificates{status, tier, issuer}`, `privca_clm_earliest_expiry_seconds{tier}`
/// and `privca_clm_outbox_messages{channel, state}`.
pub async fn publish_metrics(ledger: &Ledger, config: &ClmConfig, now: i64) -> Result<(), LedgerError> {
    let stats = ledger.inventory_stats(&first_threshold(config)).await?;
    for (status, tier, issuer, n) in stats.counts {
        metrics::gauge!("privca_clm_certificates", "status" => status, "tier" => tier, "issuer" => issuer)
            .set(n as f64);
    }
    for (tier, first) in stats.earliest_expiry {
        metrics::gauge!("privca_clm_earliest_expiry_seconds", "tier" => tier).set((first - now) as f64);
    }
    for (channel, state, n) in ledger.outbox_counts().await? {
        metrics::gauge!("privca_clm_outbox_messages", "channel" => channel, "state" => state).set(n as f64);
    }
    Ok(())
}

/// Sends the outbox messages due at `now`, one batch at a time, until none is due.
pub async fn deliver(
    ledger: &Ledger,
    notifier: &Notifier,
    config: &ClmConfig,
    templates: &Templates,
    now: i64,
) -> Result<DeliveryRun, LedgerError> {
    let mut run = DeliveryRun::default();
    loop {
        let mut batch = ledger.claim_outbox(now, now + DELIVERY_LEASE, DELIVERY_BATCH).await?;
        render_policy_notices(ledger, config, templates, &mut batch, now).await?;
        for m in &batch {
            match notifier.send(m).await {
                Ok(()) => {
                    ledger.outbox_sent(m.id).await?;
                    run.sent += 1;
                    metrics::counter!("privca_clm_notifications_total", "channel" => m.channel.clone(), "result" => "sent")
                        .increment(1);
                }
                Err(e) => {
                    let error = e.to_string();
                    let last = m.attempts + 1 >= i64::from(config.delivery.max_attempts);
                    let wait = notify::backoff(m.attempts, config.delivery.backoff, config.delivery.max_backoff);
                    let retry_at = (!last).then(|| now + wait.as_secs() as i64);
                    ledger.outbox_failed(m.id, &error, retry_at).await?;
                    let result = if last { "dead" } else { "failed" };
                    tracing::warn!(id = m.id, channel = %m.channel, attempts = m.attempts + 1, result, error, "CLM notification not delivered");
                    metrics::counter!("privca_clm_notifications_total", "channel" => m.channel.clone(), "result" => result)
                        .increment(1);
                    if last {
                        run.dead += 1;
                    } else {
                        run.retried += 1;
                    }
                }
            }
        }
        if (batch.len() as i64) < DELIVERY_BATCH {
            return Ok(run);
        }
    }
}

/// Fills in the text of the policy notices in `batch` (their outbox rows hold the decision
/// only), from their certificates as they are at `now`.
pub async fn render_policy_notices(
    ledger: &Ledger,
    config: &ClmConfig,
    templates: &Templates,
    batch: &mut [OutboxMessage],
    now: i64,
) -> Result<(), LedgerError> {
    let unrendered = |m: &OutboxMessage| m.body.is_empty() && policy::RENDERED_WHEN_SENT.contains(&m.event.as_str());
    let fingerprints: Vec<String> =
        batch.iter().filter(|m| unrendered(m)).filter_map(|m| m.fingerprint.clone()).collect();
    if fingerprints.is_empty() {
        return Ok(());
    }
    let views: HashMap<String, _> =
        ledger.policy_views(&fingerprints).await?.into_iter().map(|c| (c.fingerprint.clone(), c)).collect();
    for m in batch.iter_mut().filter(|m| unrendered(m)) {
        match m.fingerprint.as_ref().and_then(|f| views.get(f)) {
            Some(c) => (m.subject, m.body) = policy::render(&m.event, &m.dedup_key, c, config, templates, now),
            None => {
                m.subject = format!("[privca] {}: certificate {}", m.event, m.fingerprint.as_deref().unwrap_or("-"));
                m.body = format!("{}\n", m.subject);
            }
        }
    }
    Ok(())
}
