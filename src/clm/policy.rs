//! The expiry policy engine: pure functions from a certificate, its tier's policy and the time
//! to what is due (notices at each threshold crossed, the escalation, a requested renewal, a
//! failed renewal), whether it is superseded, and when to look at it again. [`decide`] turns
//! that into the outbox rows for the owner's contacts: the decision only, whose text [`render`]
//! writes when the message is sent (a first sweep of a large ledger writes short rows). No I/O
//! and no clock of its own: the caller passes `now`, so tests drive it with any time.
//!
//! **Renewal failed** (event `renewal-failed`, told to the owner once per certificate and
//! channel: the outbox key is `renewal-failed:<fingerprint>:<channel>`) has two sources, both
//! facts the ledger already records:
//! - here, a certificate flagged for early renewal (`renew_early_at`, set by `privca inventory
//!   flag-renewal`) that still has no successor `renew_flagged_within` days (per tier) after the
//!   flag;
//! - in [`super::events`], an `approval-denied` audit row for a request whose names are those of
//!   a live certificate (of the request's owner, when it names one): the replacement of that
//!   certificate was refused.
//!
//! An ACME order that ends `invalid` is not a ledger event (its status is derived from its
//! authorizations when read, and a client simply tries again), so it is not a source: a client
//! that keeps failing is caught by the flag rule above and by the expiry thresholds and the
//! escalation.

use std::collections::HashMap;

use crate::{
    config::clm::{Channel, ClmConfig, TierPolicy},
    ledger::{Decision, NewMessage, Owner, PolicyCandidate},
};

use super::templates::{Templates, Vars};

const DAY: i64 = 86_400;

/// What is due for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// The notice at `threshold` days before expiry; `send` is false for a threshold passed
    /// before the certificate was first looked at (only the most urgent one is sent) or while
    /// it was muted.
    Expiry {
        /// Days.
        threshold: u32,
        /// Sent, or passed over (not the most urgent, or muted).
        send: bool,
    },
    /// Still not renewed inside the tier's escalation window.
    Escalation {
        /// Sent, or passed over (muted).
        send: bool,
    },
    /// An operator flagged it for early renewal at this time.
    RenewalRequested {
        /// When it was flagged.
        at: i64,
        /// Sent, or passed over (muted).
        send: bool,
    },
    /// Flagged for early renewal at `at` and still not renewed `renew_flagged_within` days
    /// later.
    RenewalFailed {
        /// When it was flagged.
        at: i64,
        /// Sent, or passed over (muted).
        send: bool,
    },
}

/// The engine's verdict on one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What is due now.
    pub due: Vec<Due>,
    /// When something new can become due (the next threshold's time, else the expiry).
    pub next_at: i64,
    /// The successor, when the certificate is superseded.
    pub superseded_by: Option<String>,
}

/// Evaluates `c` at `now` under `policy`.
pub fn plan(c: &PolicyCandidate, policy: &TierPolicy, now: i64) -> Plan {
    let at = |days: u32| c.not_after - i64::from(days) * DAY;
    let marks = policy.thresholds.iter().copied().chain(policy.escalate_within);
    // The renewal of a flagged certificate is due by this time.
    let renew_by = c.renew_early_at.map(|t| t + i64::from(policy.renew_flagged_within) * DAY);
    let next_at = marks.map(at).chain(renew_by).filter(|&t| t > now).min().unwrap_or(c.not_after).max(now + 1);
    // A superseded certificate raises nothing, unless an endpoint still serves it.
    if c.successor.is_some() && !c.served {
        return Plan { due: Vec::new(), next_at: c.not_after.max(now + 1), superseded_by: c.successor.clone() };
    }
    let live = c.muted_until.is_none_or(|until| until <= now);
    let crossed: Vec<u32> = policy.thresholds.iter().copied().filter(|&d| at(d) <= now).collect();
    let most_urgent = crossed.iter().copied().min();
    let mut due: Vec<Due> =
        crossed.iter().map(|&d| Due::Expiry { threshold: d, send: live && Some(d) == most_urgent }).collect();
    if policy.escalate_within.is_some_and(|d| at(d) <= now) {
        due.push(Due::Escalation { send: live });
    }
    if let Some(flagged) = c.renew_early_at.filter(|&t| t <= now) {
        due.push(Due::RenewalRequested { at: flagged, send: live });
        if c.successor.is_none() && renew_by.is_some_and(|t| t <= now) {
            due.push(Due::RenewalFailed { at: flagged, send: live });
        }
    }
    Plan { due, next_at, superseded_by: c.successor.clone() }
}

/// Where a message about a certificate of `owner` goes: the owner's record, else (unclaimed)
/// the security lead's.
pub fn owner_record<'a>(owners: &'a HashMap<String, Owner>, owner: &str, lead: &str) -> Option<&'a Owner> {
    owners.get(owner).or_else(|| owners.get(lead))
}

/// Where an escalation goes: the owner's escalation contact, else the security lead.
fn escalation_record<'a>(owners: &'a HashMap<String, Owner>, owner: &str, lead: &str) -> Option<&'a Owner> {
    owners.get(owner).and_then(|o| o.escalation.as_deref()).and_then(|e| owners.get(e)).or_else(|| owners.get(lead))
}

/// The address of `channel` in `o`'s contacts.
fn address(o: &Owner, channel: Channel) -> Option<&str> {
    match channel {
        Channel::Email => o.email.as_deref(),
        Channel::Webhook => o.webhook.as_deref(),
        Channel::Sms => o.phone.as_deref(),
    }
    .filter(|a| !a.is_empty())
}

/// The outbox channel of a webhook of `format`: `webhook` (signed JSON), `slack` or `teams`.
pub fn webhook_kind(format: &str) -> &'static str {
    match format {
        "slack" => "slack",
        "teams" => "teams",
        _ => "webhook",
    }
}

/// The decision about `c` at `now`: [`plan`], and one outbox row per due event and channel of
/// the tier that the recipient has a contact for. A due event no contact can receive becomes
/// one dead row on channel `none`, so that the outbox shows it, and the certificate is looked
/// at again at the next run: once the owner has a contact, the message goes out.
pub fn decide(c: &PolicyCandidate, config: &ClmConfig, owners: &HashMap<String, Owner>, now: i64) -> Decision {
    let policy = config.tier(&c.tier);
    let p = plan(c, &policy, now);
    let mut messages = Vec::new();
    let mut unreachable = false;
    for due in &p.due {
        let (event, key, send, recipient) = match *due {
            Due::Expiry { threshold, send } => (
                "expiry",
                format!("expiry:{}:{threshold}", c.fingerprint),
                send,
                owner_record(owners, &c.owner, &config.security_lead),
            ),
            Due::Escalation { send } => (
                "escalation",
                format!("escalation:{}", c.fingerprint),
                send,
                escalation_record(owners, &c.owner, &config.security_lead),
            ),
            Due::RenewalRequested { at, send } => (
                "renewal-requested",
                format!("renewal-requested:{}:{at}", c.fingerprint),
                send,
                owner_record(owners, &c.owner, &config.security_lead),
            ),
            Due::RenewalFailed { send, .. } => (
                "renewal-failed",
                format!("renewal-failed:{}", c.fingerprint),
                send,
                owner_record(owners, &c.owner, &config.security_lead),
            ),
        };
        // The text is rendered when the message is sent ([`render`]).
        let message = Message {
            event,
            key: &key,
            fingerprint: Some(&c.fingerprint),
            owner: &c.owner,
            subject: String::new(),
            body: String::new(),
        };
        let fallback = config.security_lead.as_str();
        unreachable |= route(&message, send, recipient, fallback, &policy.channels, &mut messages);
    }
    Decision {
        fingerprint: c.fingerprint.clone(),
        external: c.external,
        next_at: if unreachable { now + 1 } else { p.next_at },
        successor_changed: p.superseded_by != c.recorded_successor,
        superseded_by: p.superseded_by,
        messages,
    }
}

/// Events whose outbox rows hold the decision only: their text is rendered when they are sent.
pub const RENDERED_WHEN_SENT: &[&str] = &["expiry", "escalation", "renewal-requested", "renewal-failed"];

/// The subject and body of the policy notice `event` (outbox key `dedup_key`) about `c` as it
/// is at `now`, when the message is sent: the outbox keeps the decision, not its text.
pub fn render(
    event: &str,
    dedup_key: &str,
    c: &PolicyCandidate,
    config: &ClmConfig,
    templates: &Templates,
    now: i64,
) -> (String, String) {
    // `expiry:<fingerprint>:<threshold>:<channel>`.
    let threshold = (event == "expiry").then(|| dedup_key.split(':').nth(2)?.parse().ok()).flatten();
    let mut vars = Vars::of(c, now, threshold, c.recorded_successor.as_deref());
    if let (true, Some(at)) = (event == "renewal-failed", c.renew_early_at) {
        let reason = format!(
            "it was flagged for early renewal on {} and is still not renewed {} days later",
            super::templates::utc(at),
            config.tier(&c.tier).renew_flagged_within
        );
        vars = vars.with("reason", reason);
    }
    templates.render(event, &vars)
}

/// One message before it is routed to a recipient's channels.
pub struct Message<'a> {
    /// Event name.
    pub event: &'a str,
    /// Unique key of the decision (the channel is appended).
    pub key: &'a str,
    /// The certificate, if any.
    pub fingerprint: Option<&'a str>,
    /// The owner the message is about.
    pub owner: &'a str,
    /// Rendered subject.
    pub subject: String,
    /// Rendered body.
    pub body: String,
}

/// Appends to `out` one `pending` outbox row per channel of `channels` that `recipient` has a
/// contact for; when it has none, one dead row on channel `none` naming `recipient` (else
/// `fallback`), and returns true. Nothing when not `send` (a threshold passed unseen or while
/// muted: it is never sent, and a later threshold's notice is the next message).
pub fn route(
    m: &Message<'_>,
    send: bool,
    recipient: Option<&Owner>,
    fallback: &str,
    channels: &[Channel],
    out: &mut Vec<NewMessage>,
) -> bool {
    let new = |channel: &str, recipient: &str, state: &'static str, error: Option<String>| NewMessage {
        dedup_key: format!("{}:{channel}", m.key),
        event: m.event.to_owned(),
        fingerprint: m.fingerprint.map(str::to_owned),
        owner: m.owner.to_owned(),
        channel: channel.to_owned(),
        recipient: recipient.to_owned(),
        subject: m.subject.clone(),
        body: m.body.clone(),
        state,
        error,
    };
    if !send {
        return false;
    }
    let reachable: Vec<(Channel, &str)> = recipient
        .map(|o| channels.iter().filter_map(|&ch| address(o, ch).map(|a| (ch, a))).collect())
        .unwrap_or_default();
    if reachable.is_empty() {
        let who = recipient.map_or(fallback, |o| o.name.as_str());
        let error = format!("owner `{who}` has no contact for the tier's channels");
        out.push(new("none", "", "dead", Some(error)));
        return true;
    }
    for (channel, addr) in reachable {
        let mut row = new(channel.as_str(), addr, "pending", None);
        // The stored channel names the payload; the key stays per channel.
        if channel == Channel::Webhook {
            row.channel = recipient.map_or("webhook", |o| webhook_kind(&o.webhook_format)).to_owned();
        }
        out.push(row);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Tier;

    const NOW: i64 = 1_800_000_000;

    fn cert(days_left: i64, tier: Tier) -> PolicyCandidate {
        PolicyCandidate {
            fingerprint: "ab".repeat(32),
            serial: "01".into(),
            subject: "CN=www.example.test".into(),
            sans: vec!["dns:www.example.test".into()],
            issuer: "issuing".into(),
            not_after: NOW + days_left * DAY,
            owner: "web-team".into(),
            tier,
            renew_early_at: None,
            successor: None,
            recorded_successor: None,
            served: false,
            muted_until: None,
            external: false,
        }
    }

    fn policy(tier: Tier) -> TierPolicy {
        TierPolicy::default_for(&tier)
    }

    fn sent(p: &Plan) -> Vec<Due> {
        p.due
            .iter()
            .copied()
            .filter(|d| {
                matches!(
                    d,
                    Due::Expiry { send: true, .. }
                        | Due::Escalation { send: true }
                        | Due::RenewalRequested { send: true, .. }
                        | Due::RenewalFailed { send: true, .. }
                )
            })
            .collect()
    }

    #[test]
    fn thresholds_per_tier() {
        let p = plan(&cert(100, Tier::customer_facing()), &policy(Tier::customer_facing()), NOW);
        assert!(p.due.is_empty());
        assert_eq!(p.next_at, NOW + 10 * DAY, "the 90-day mark is next");
        let p = plan(&cert(89, Tier::customer_facing()), &policy(Tier::customer_facing()), NOW);
        assert_eq!(p.due, [Due::Expiry { threshold: 90, send: true }]);
        assert_eq!(p.next_at, NOW + 29 * DAY);
        // Internal has no 90-day notice.
        let p = plan(&cert(89, Tier::internal()), &policy(Tier::internal()), NOW);
        assert!(p.due.is_empty());
        assert_eq!(p.next_at, NOW + 29 * DAY);
    }

    #[test]
    fn only_the_most_urgent_of_thresholds_passed_unseen_is_sent() {
        let p = plan(&cert(20, Tier::internal()), &policy(Tier::internal()), NOW);
        assert_eq!(p.due, [Due::Expiry { threshold: 60, send: false }, Due::Expiry { threshold: 30, send: true }]);
        assert_eq!(p.next_at, NOW + 5 * DAY);
    }

    #[test]
    fn escalation_inside_the_window_for_customer_facing_only() {
        let p = plan(&cert(29, Tier::customer_facing()), &policy(Tier::customer_facing()), NOW);
        assert_eq!(sent(&p), [Due::Expiry { threshold: 30, send: true }, Due::Escalation { send: true }]);
        let p = plan(&cert(29, Tier::internal()), &policy(Tier::internal()), NOW);
        assert_eq!(sent(&p), [Due::Expiry { threshold: 30, send: true }]);
    }

    #[test]
    fn a_superseded_certificate_raises_nothing_unless_still_served() {
        let mut c = cert(10, Tier::customer_facing());
        c.successor = Some("02".into());
        let p = plan(&c, &policy(Tier::customer_facing()), NOW);
        assert!(p.due.is_empty());
        assert_eq!(p.superseded_by.as_deref(), Some("02"));
        assert_eq!(p.next_at, c.not_after);
        c.served = true;
        let p = plan(&c, &policy(Tier::customer_facing()), NOW);
        assert_eq!(sent(&p), [Due::Expiry { threshold: 15, send: true }, Due::Escalation { send: true }]);
    }

    #[test]
    fn muted_certificates_record_skips_and_resume_at_the_next_threshold() {
        let mut c = cert(29, Tier::customer_facing());
        c.muted_until = Some(NOW + 3 * DAY);
        let p = plan(&c, &policy(Tier::customer_facing()), NOW);
        assert!(sent(&p).is_empty());
        assert_eq!(p.due.len(), 4, "90, 60, 30 and the escalation are passed over");
        // After the mute, the 15-day notice goes out.
        let later = NOW + 15 * DAY;
        let p = plan(&c, &policy(Tier::customer_facing()), later);
        assert!(sent(&p).contains(&Due::Expiry { threshold: 15, send: true }));
    }

    #[test]
    fn early_renewal_requests_are_due_once_flagged() {
        let mut c = cert(200, Tier::internal());
        c.renew_early_at = Some(NOW - 5);
        let p = plan(&c, &policy(Tier::internal()), NOW);
        assert_eq!(p.due, [Due::RenewalRequested { at: NOW - 5, send: true }]);
    }

    #[test]
    fn a_flagged_certificate_not_renewed_in_the_tiers_window_has_failed_its_renewal() {
        let mut c = cert(200, Tier::internal());
        let flagged = NOW - 3 * DAY;
        c.renew_early_at = Some(flagged);
        let p = plan(&c, &policy(Tier::internal()), NOW);
        assert_eq!(p.due, [Due::RenewalRequested { at: flagged, send: true }]);
        assert_eq!(p.next_at, flagged + 7 * DAY, "looked at again when the 7 days are over");
        let later = flagged + 7 * DAY;
        let p = plan(&c, &policy(Tier::internal()), later);
        assert_eq!(
            p.due,
            [Due::RenewalRequested { at: flagged, send: true }, Due::RenewalFailed { at: flagged, send: true }]
        );
        // Renewed meanwhile: nothing failed.
        c.successor = Some("02".into());
        c.served = true;
        let p = plan(&c, &policy(Tier::internal()), later);
        assert!(!p.due.iter().any(|d| matches!(d, Due::RenewalFailed { .. })), "{:?}", p.due);
        // The window is the tier's.
        c.successor = None;
        let mut slow = policy(Tier::internal());
        slow.renew_flagged_within = 10;
        assert!(!plan(&c, &slow, later).due.iter().any(|d| matches!(d, Due::RenewalFailed { .. })));
    }

    #[test]
    fn renewal_failed_goes_to_the_owner_once_per_channel() {
        let config = ClmConfig::default();
        let mut c = cert(200, Tier::internal());
        c.renew_early_at = Some(NOW - 8 * DAY);
        let d = decide(&c, &config, &owners(), NOW);
        let failed: Vec<_> = d.messages.iter().filter(|m| m.event == "renewal-failed").collect();
        let keys: Vec<String> = failed.iter().map(|m| m.dedup_key.clone()).collect();
        let fp = "ab".repeat(32);
        assert_eq!(keys, [format!("renewal-failed:{fp}:email"), format!("renewal-failed:{fp}:webhook")]);
        assert_eq!(failed[0].recipient, "web@example.test");
        assert!(failed[0].body.is_empty(), "the text is rendered when sent");
        let (subject, body) = render("renewal-failed", &keys[0], &c, &config, &Templates::default(), NOW);
        assert!(subject.starts_with("[privca] renewal failed: www.example.test"), "{subject}");
        assert!(body.contains("still not renewed 7 days later"), "{body}");
        let (subject, body) =
            render("expiry", &format!("expiry:{fp}:30:email"), &c, &config, &Templates::default(), NOW);
        assert!(subject.contains("expires in 200 days"), "{subject}");
        assert!(body.contains("the 30-day notice of tier internal"), "{body}");
    }

    fn owners() -> HashMap<String, Owner> {
        let mut web = Owner::new("web-team", "team");
        web.email = Some("web@example.test".into());
        web.webhook = Some("http://127.0.0.1:9/hook".into());
        let mut lead = Owner::new("security-lead", "person");
        lead.email = Some("ciso@example.test".into());
        [web, lead].into_iter().map(|o| (o.name.clone(), o)).collect()
    }

    #[test]
    fn decisions_go_to_the_owners_channels_and_escalations_to_the_lead() {
        let config = ClmConfig::default();
        let d = decide(&cert(29, Tier::customer_facing()), &config, &owners(), NOW);
        let rows: Vec<(&str, &str, &str, &str)> = d
            .messages
            .iter()
            .map(|m| (m.dedup_key.split(':').next().unwrap_or(""), m.channel.as_str(), m.recipient.as_str(), m.state))
            .collect();
        assert!(rows.contains(&("expiry", "email", "web@example.test", "pending")), "{rows:?}");
        assert!(rows.contains(&("expiry", "webhook", "http://127.0.0.1:9/hook", "pending")), "{rows:?}");
        assert!(rows.contains(&("escalation", "email", "ciso@example.test", "pending")), "{rows:?}");
        assert_eq!(rows.iter().filter(|r| r.3 == "pending").count(), 3, "{rows:?}");
        let keys: std::collections::HashSet<_> = d.messages.iter().map(|m| &m.dedup_key).collect();
        assert_eq!(keys.len(), d.messages.len(), "one row per certificate × event × channel");
    }

    #[test]
    fn unclaimed_owners_reach_the_lead_and_unreachable_ones_are_dead_lettered() {
        let config = ClmConfig::default();
        let mut c = cert(29, Tier::internal());
        c.owner = "nobody-claimed-this".into();
        let d = decide(&c, &config, &owners(), NOW);
        assert!(d.messages.iter().any(|m| m.recipient == "ciso@example.test" && m.state == "pending"));
        let d = decide(&c, &config, &HashMap::new(), NOW);
        assert_eq!(d.messages.len(), 1);
        assert_eq!((d.messages[0].channel.as_str(), d.messages[0].state), ("none", "dead"));
        assert_eq!(d.next_at, NOW + 1, "looked at again at the next run");
    }
}
