//! The daily digest (`"digest"` in `clm.events`): once a day, each owner with a record gets one
//! message listing its certificates that are expiring (inside their tier's first threshold) or
//! expired, soonest first. The outbox key is owner × day, so the hourly policy job sends it once.

use crate::{
    config::clm::Channel,
    ledger::{InventoryFilter, InventoryStatus, Ledger, LedgerError},
};

use super::{
    first_threshold,
    policy::{route, Message},
    templates::utc,
};

/// The `clm_state` row of the last day digests were queued (days since the epoch). The outbox
/// key (owner × day) also keeps each digest to one a day.
const DIGEST_DAY: &str = "digest-day";

/// Certificates listed in one digest at most (the rest are counted).
const MAX_LISTED: i64 = 200;

/// Queues today's digests; returns how many messages.
pub async fn run(ledger: &Ledger, config: &crate::config::clm::ClmConfig, now: i64) -> Result<u64, LedgerError> {
    if !config.events.iter().any(|e| e == "digest") {
        return Ok(0);
    }
    if ledger.clm_state(DIGEST_DAY).await? == Some(now / 86_400) {
        return Ok(0);
    }
    let day = utc(now).get(..10).unwrap_or_default().to_owned();
    let ft = first_threshold(config);
    let window = ft.longest();
    let mut out = Vec::new();
    for owner in ledger.owners().await? {
        let filter = InventoryFilter {
            owner: Some(owner.name.clone()),
            expiring_within: Some(window),
            limit: MAX_LISTED + 1,
            ..Default::default()
        };
        let items: Vec<_> = ledger
            .inventory(&filter, &ft)
            .await?
            .into_iter()
            .filter(|i| matches!(i.status, InventoryStatus::Expiring | InventoryStatus::Expired))
            .collect();
        if items.is_empty() {
            continue;
        }
        let mut body = format!("Certificates of {} that are expiring or expired, on {day}:\n\n", owner.name);
        for i in items.iter().take(MAX_LISTED as usize) {
            let names = if i.sans.is_empty() { i.subject.clone() } else { i.sans.join(", ") };
            body.push_str(&format!(
                "  {}  {:<8}  {:<16}  {}  (serial {})\n",
                &utc(i.not_after)[..10],
                i.status.as_str(),
                i.tier.as_str(),
                names,
                i.serial
            ));
        }
        if items.len() as i64 > MAX_LISTED {
            body.push_str(&format!("  … and more: privca inventory list --owner {} --expiring-within N\n", owner.name));
        }
        let key = format!("digest:{}:{day}", owner.name);
        let subject = format!(
            "[privca] daily digest for {}: {} certificate(s) expiring or expired",
            owner.name,
            items.len().min(MAX_LISTED as usize)
        );
        let m = Message { event: "digest", key: &key, fingerprint: None, owner: &owner.name, subject, body };
        route(&m, true, Some(&owner), &config.security_lead, &[Channel::Email], &mut out);
    }
    let queued = out.iter().filter(|m| m.state == "pending").count() as u64;
    ledger.queue_messages_at(&out, DIGEST_DAY, now / 86_400).await?;
    Ok(queued)
}
