//! Notifications of what happened, read from the audit log: a certificate issued or revoked
//! (told to its owner) and a request waiting for approval (told to the security lead), as
//! `clm.events` selects; and always, a denied request that would have replaced a live
//! certificate (the same names, and the same owner when the request names one): its owner is
//! told the renewal failed (`renewal-failed`, see [`super::policy`]). The policy job turns the audit rows after its watermark into outbox
//! rows and moves the watermark in the same unit of work; on first use the watermark starts at
//! the end of the log, so history is not replayed.

use std::collections::HashMap;

use crate::{
    config::{clm::ClmConfig, Config},
    ledger::{Ledger, LedgerError, NewMessage, Owner, PolicyCandidate},
    policy::Tier,
};

use super::{
    policy::{owner_record, route, Message},
    templates::{Templates, Vars},
};

/// The `clm_state` row of the watermark.
const WATERMARK: &str = "audit-notices";

/// Audit rows read per unit of work.
const BATCH: i64 = 500;

/// Queues the notices of audit rows written since the last run; returns how many messages.
pub async fn run(ledger: &Ledger, config: &Config, templates: &Templates, now: i64) -> Result<u64, LedgerError> {
    let clm = &config.clm;
    let owners: HashMap<_, _> = ledger.owners().await?.into_iter().map(|o| (o.name.clone(), o)).collect();
    let owners = &owners;
    let mut after = match ledger.clm_state(WATERMARK).await? {
        Some(v) => v,
        None => {
            let end = ledger.last_audit_id().await?;
            ledger.queue_messages_at(&[], WATERMARK, end).await?;
            return Ok(0);
        }
    };
    let mut queued = 0;
    loop {
        let rows = ledger.audit_notices(after, BATCH).await?;
        let Some(last) = rows.last().map(|r| r.id) else { return Ok(queued) };
        let serials: Vec<String> = rows.iter().filter_map(|r| r.serial.clone()).collect();
        let certs: HashMap<String, _> =
            ledger.certificates(&serials).await?.into_iter().flatten().map(|c| (c.serial.clone(), c)).collect();
        let mut out = Vec::new();
        for row in &rows {
            match (row.event.as_str(), row.serial.as_ref().and_then(|s| certs.get(s))) {
                ("committed", Some(c)) if clm.events.iter().any(|e| e == "issued") => {
                    notice(clm, owners, templates, now, "issued", &candidate(c), &mut out);
                }
                ("revoked", Some(c)) if clm.events.iter().any(|e| e == "revoked") => {
                    notice(clm, owners, templates, now, "revoked", &candidate(c), &mut out);
                }
                ("approval-requested", _) if clm.events.iter().any(|e| e == "approval-pending") => {
                    let Some(id) = row.detail.get("approval_id").and_then(serde_json::Value::as_i64) else { continue };
                    let Some(a) = ledger.approval(id).await? else { continue };
                    let profile = config.profiles.get(&a.profile);
                    let c = PolicyCandidate {
                        fingerprint: format!("approval-{id}"),
                        serial: format!("approval {id}"),
                        subject: a.subject.clone(),
                        sans: a.sans.clone(),
                        issuer: a.profile.clone(),
                        not_after: now,
                        owner: a.owner.clone().or_else(|| profile.map(|p| p.owner.clone())).unwrap_or_default(),
                        tier: profile.map_or_else(Tier::internal, |p| p.tier.clone()),
                        renew_early_at: None,
                        successor: None,
                        recorded_successor: None,
                        served: false,
                        muted_until: None,
                        external: false,
                    };
                    let (subject, body) = templates.render("approval-pending", &Vars::of(&c, now, None, None));
                    let key = format!("approval-pending:{id}");
                    let m = Message {
                        event: "approval-pending",
                        key: &key,
                        fingerprint: None,
                        owner: &c.owner,
                        subject,
                        body,
                    };
                    let lead = owners.get(&clm.security_lead);
                    route(&m, true, lead, &clm.security_lead, &clm.tier(&c.tier).channels, &mut out);
                }
                ("approval-denied", _) => {
                    let Some(id) = row.detail.get("approval_id").and_then(serde_json::Value::as_i64) else { continue };
                    let Some(a) = ledger.approval(id).await? else { continue };
                    let Some(serial) = ledger.replaced_by_request(&a.sans, a.owner.as_deref(), now).await? else {
                        continue;
                    };
                    let Some(Some(c)) = ledger.certificates(&[serial]).await?.pop() else { continue };
                    let reason = format!(
                        "the request to replace it (approval {id}) was denied by {}: {}",
                        a.decided_by.as_deref().unwrap_or("an operator"),
                        a.reason.as_deref().filter(|r| !r.is_empty()).unwrap_or("no reason given")
                    );
                    let c = candidate(&c);
                    let vars = Vars::of(&c, now, None, None).with("reason", reason);
                    let (subject, body) = templates.render("renewal-failed", &vars);
                    let key = format!("renewal-failed:{}", c.fingerprint);
                    let m = Message {
                        event: "renewal-failed",
                        key: &key,
                        fingerprint: Some(&c.fingerprint),
                        owner: &c.owner,
                        subject,
                        body,
                    };
                    let recipient = owner_record(owners, &c.owner, &clm.security_lead);
                    route(&m, true, recipient, &clm.security_lead, &clm.tier(&c.tier).channels, &mut out);
                }
                _ => {}
            }
        }
        queued += out.iter().filter(|m| m.state == "pending").count() as u64;
        ledger.queue_messages_at(&out, WATERMARK, last).await?;
        after = last;
    }
}

/// The policy view of privca's certificate `c` (for templates and routing).
pub fn candidate(c: &crate::ledger::CertRecord) -> PolicyCandidate {
    PolicyCandidate {
        fingerprint: c.fingerprint_sha256.clone(),
        serial: c.serial.clone(),
        subject: c.subject.clone(),
        sans: c.sans.clone(),
        issuer: c.issuer_id.clone(),
        not_after: c.not_after,
        owner: c.owner.clone(),
        tier: c.tier.clone(),
        renew_early_at: None,
        successor: None,
        recorded_successor: None,
        served: false,
        muted_until: None,
        external: false,
    }
}

/// The owner's message about certificate `c`.
fn notice(
    clm: &ClmConfig,
    owners: &HashMap<String, Owner>,
    templates: &Templates,
    now: i64,
    event: &str,
    c: &PolicyCandidate,
    out: &mut Vec<NewMessage>,
) {
    let (subject, body) = templates.render(event, &Vars::of(c, now, None, None));
    let key = format!("{event}:{}", c.fingerprint);
    let m = Message { event, key: &key, fingerprint: Some(&c.fingerprint), owner: &c.owner, subject, body };
    let recipient = owner_record(owners, &c.owner, &clm.security_lead);
    route(&m, true, recipient, &clm.security_lead, &clm.tier(&c.tier).channels, out);
}
