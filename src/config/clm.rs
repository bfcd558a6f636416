//! `[clm]`: certificate lifecycle management. The expiry policy of each tier (notice thresholds
//! in days before expiry, the channels it notifies, when an unrenewed certificate escalates to
//! the security lead), the policy job's schedule, and the notification channels: SMTP (lettre
//! URL, optional credentials), webhooks (HMAC-SHA256 key), an SMS gateway, delivery retries and
//! the directory of message templates; `[clm.discovery]` is in [`super::discovery`].

use std::{collections::BTreeMap, path::Path, path::PathBuf, time::Duration};

use serde::Deserialize;

use super::acme::AriWindow;
use super::{
    duration,
    secrets::{SecretRef, SecretSource},
    ConfigError,
};
use crate::policy::Tier;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawClm {
    enabled: bool,
    interval: String,
    security_lead: String,
    from: String,
    templates_dir: Option<PathBuf>,
    smtp: Option<RawSmtp>,
    webhook: RawWebhook,
    sms: Option<RawSms>,
    delivery: RawDelivery,
    events: Vec<String>,
    tiers: BTreeMap<String, RawTier>,
    discovery: super::discovery::RawDiscovery,
}

impl Default for RawClm {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: "1h".into(),
            security_lead: "security-lead".into(),
            from: "privca <privca@localhost>".into(),
            templates_dir: None,
            smtp: None,
            webhook: RawWebhook::default(),
            sms: None,
            delivery: RawDelivery::default(),
            events: vec!["revoked".into(), "approval-pending".into()],
            tiers: BTreeMap::new(),
            discovery: super::discovery::RawDiscovery::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    url: String,
    username: Option<String>,
    password: Option<SecretSource>,
    #[serde(default = "default_timeout")]
    timeout: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawWebhook {
    secret: Option<SecretSource>,
    timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSms {
    url: String,
    #[serde(default = "default_sms_body")]
    body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDelivery {
    max_attempts: u32,
    backoff: String,
    max_backoff: String,
    interval: String,
}

impl Default for RawDelivery {
    fn default() -> Self {
        Self { max_attempts: 8, backoff: "1m".into(), max_backoff: "1h".into(), interval: "10s".into() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    thresholds: Option<Vec<u32>>,
    channels: Option<Vec<Channel>>,
    escalate_within: Option<u32>,
    revoke_superseded_after: Option<u32>,
    renew_flagged_within: Option<u32>,
    renewal_target: Option<String>,
    approval: Option<bool>,
}

fn default_timeout() -> String {
    "10s".into()
}

fn default_sms_body() -> String {
    r#"{"to": "{recipient}", "text": "{subject}"}"#.into()
}

/// A notification channel: which of an owner's contacts a message goes to, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Email to the owner's address, over `[clm.smtp]`.
    Email,
    /// A POST to the owner's webhook (generic JSON with an HMAC signature, or a Slack- or
    /// Teams-compatible payload, as the owner's `webhook_format` says).
    Webhook,
    /// A text to the owner's phone through `[clm.sms]`.
    Sms,
}

impl Channel {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Webhook => "webhook",
            Self::Sms => "sms",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(Self::Email),
            "webhook" => Some(Self::Webhook),
            "sms" => Some(Self::Sms),
            _ => None,
        }
    }
}

/// The expiry policy of one tier (`[clm.tiers.<tier>]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierPolicy {
    /// Days before expiry at which the owner is told, largest first. The first one opens the
    /// renewal workflow.
    pub thresholds: Vec<u32>,
    /// Channels of the owner's contacts that are notified.
    pub channels: Vec<Channel>,
    /// A certificate still not renewed this many days before expiry escalates to the owner's
    /// escalation contact (else the security lead); `None`: never.
    pub escalate_within: Option<u32>,
    /// A superseded certificate is revoked (reason superseded) this many days after its
    /// successor was verified deployed where it was served, once no scan finds it served any
    /// more; `None`: never.
    pub revoke_superseded_after: Option<u32>,
    /// Days a certificate flagged for early renewal has to be renewed: still not renewed after
    /// them, its owner is told the renewal failed.
    pub renew_flagged_within: u32,
    /// Share of a certificate's lifetime after which it should be renewed; the ACME ARI
    /// suggested window opens there ([`TierPolicy::ari_window`]).
    pub renewal_target: RenewalTarget,
    /// Issuance of every profile of the tier waits for an approver, as if the profile said
    /// `approval = true`.
    pub approval: bool,
}

/// A share of a certificate's lifetime, strictly between 0 and 1: `2/3`, `0.55` or `55%` in
/// configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalTarget {
    /// Numerator.
    pub numerator: u32,
    /// Denominator (greater than the numerator).
    pub denominator: u32,
}

impl RenewalTarget {
    /// Parses `a/b`, a decimal fraction (`0.55`) or a percentage (`55%`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (numerator, denominator) = if let Some(p) = s.strip_suffix('%') {
            (whole_number(p.trim())?, 100)
        } else if let Some((a, b)) = s.split_once('/') {
            (a.trim().parse().ok()?, b.trim().parse().ok()?)
        } else {
            let (whole, frac) = s.split_once('.')?;
            if whole != "0" || frac.is_empty() || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (frac.parse().ok()?, 10u32.pow(frac.len() as u32))
        };
        (numerator > 0 && numerator < denominator).then_some(Self { numerator, denominator })
    }

    /// The share as a number.
    pub fn fraction(self) -> f64 {
        f64::from(self.numerator) / f64::from(self.denominator)
    }
}

/// A whole percentage (`55`).
fn whole_number(s: &str) -> Option<u32> {
    s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse().ok()).flatten()
}

impl std::fmt::Display for RenewalTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.numerator, self.denominator)
    }
}

impl TierPolicy {
    /// The defaults: customer-facing and network-critical at 90/60/30/15 days escalating inside
    /// 30 days, internal (and any other tier) at 60/30/15 without escalation; email and webhook;
    /// a flagged certificate has 7 days to be renewed; renewal targets 1/2 (customer-facing),
    /// 0.55 (network-critical) and 2/3 (internal and others) of the lifetime.
    pub fn default_for(tier: &Tier) -> Self {
        let channels = vec![Channel::Email, Channel::Webhook];
        match tier.as_str() {
            Tier::CUSTOMER_FACING | Tier::NETWORK_CRITICAL => Self {
                thresholds: vec![90, 60, 30, 15],
                channels,
                escalate_within: Some(30),
                revoke_superseded_after: None,
                renew_flagged_within: 7,
                // Renewed earlier than internal: more time to fix a failed renewal before
                // anyone notices.
                renewal_target: if tier.as_str() == Tier::CUSTOMER_FACING {
                    RenewalTarget { numerator: 1, denominator: 2 }
                } else {
                    RenewalTarget { numerator: 55, denominator: 100 }
                },
                approval: false,
            },
            _ => Self {
                thresholds: vec![60, 30, 15],
                channels,
                escalate_within: None,
                revoke_superseded_after: None,
                renew_flagged_within: 7,
                renewal_target: RenewalTarget { numerator: 2, denominator: 3 },
                approval: false,
            },
        }
    }

    /// The ACME ARI suggested window: from the renewal target to a tenth of the lifetime later
    /// (at most halfway to expiry).
    pub fn ari_window(&self) -> AriWindow {
        let start = self.renewal_target.fraction();
        AriWindow { start, end: start + (0.1f64).min((1.0 - start) / 2.0) }
    }
}

/// `[clm.smtp]`.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// lettre's transport URL: `smtp://host:port` (plain), `smtp://host:port?tls=required`
    /// (STARTTLS), `smtps://host:port` (implicit TLS).
    pub url: String,
    /// SMTP AUTH user, with `password`.
    pub username: Option<String>,
    /// SMTP AUTH password.
    pub password: Option<SecretRef>,
    /// Connect and command timeout.
    pub timeout: Duration,
}

/// `[clm.sms]`: an HTTP gateway taking a POST of `body` (placeholders `{recipient}`,
/// `{subject}`, `{body}`, JSON-escaped) at `url`.
#[derive(Debug, Clone)]
pub struct SmsConfig {
    /// Gateway URL.
    pub url: String,
    /// JSON body template.
    pub body: String,
}

/// `[clm.delivery]`: retries of the outbox.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// How often the outbox is looked at.
    pub interval: Duration,
}

/// `[clm]`, validated.
#[derive(Debug, Clone)]
pub struct ClmConfig {
    /// Run the policy job and the delivery of notifications in `privca serve`.
    pub enabled: bool,
    /// How often the policy job evaluates the inventory.
    pub interval: Duration,
    /// Owner (name) that receives escalations and the notices of unowned certificates.
    pub security_lead: String,
    /// From address of emails.
    pub from: String,
    /// Directory of message templates overriding the built-in ones.
    pub templates_dir: Option<PathBuf>,
    /// SMTP; `None`: email messages are dead-lettered with "no SMTP server configured".
    pub smtp: Option<SmtpConfig>,
    /// Key of the webhook HMAC-SHA256 signature; `None`: generic webhooks are sent unsigned.
    pub webhook_secret: Option<SecretRef>,
    /// Webhook request timeout.
    pub webhook_timeout: Duration,
    /// SMS gateway.
    pub sms: Option<SmsConfig>,
    /// Delivery retries.
    pub delivery: DeliveryConfig,
    /// What else is told: `issued` and `revoked` (to the owner), `approval-pending` (to the
    /// security lead), `digest` (a daily email to each owner listing what is expiring).
    pub events: Vec<String>,
    /// Expiry policy per tier.
    pub tiers: BTreeMap<Tier, TierPolicy>,
    /// Scheduled discovery scans (`[clm.discovery]`).
    pub discovery: super::discovery::DiscoveryConfig,
}

impl Default for ClmConfig {
    /// The same as an empty `[clm]` section.
    fn default() -> Self {
        ClmConfig {
            enabled: true,
            interval: Duration::from_secs(3600),
            security_lead: "security-lead".into(),
            from: "privca <privca@localhost>".into(),
            templates_dir: None,
            smtp: None,
            webhook_secret: None,
            webhook_timeout: Duration::from_secs(10),
            sms: None,
            delivery: DeliveryConfig {
                max_attempts: 8,
                backoff: Duration::from_secs(60),
                max_backoff: Duration::from_secs(3600),
                interval: Duration::from_secs(10),
            },
            events: vec!["revoked".into(), "approval-pending".into()],
            tiers: Tier::builtin().into_iter().map(|t| (t.clone(), TierPolicy::default_for(&t))).collect(),
            discovery: super::discovery::DiscoveryConfig::default(),
        }
    }
}

impl ClmConfig {
    /// The policy of `tier` (a tier no longer configured gets the defaults).
    pub fn tier(&self, tier: &Tier) -> TierPolicy {
        self.tiers.get(tier).cloned().unwrap_or_else(|| TierPolicy::default_for(tier))
    }

    /// `tier`, if it is configured; else an error naming `key` and the configured tiers.
    pub fn known_tier(&self, key: &str, tier: &str) -> Result<Tier, ConfigError> {
        match Tier::parse(tier) {
            Some(t) if self.tiers.contains_key(&t) => Ok(t),
            _ => Err(ConfigError::invalid(
                key,
                format!("unknown tier `{tier}`: configure [clm.tiers.{tier}] or use one of {}", self.tier_names()),
            )),
        }
    }

    /// The configured tiers, comma-separated.
    pub fn tier_names(&self) -> String {
        self.tiers.keys().map(Tier::as_str).collect::<Vec<_>>().join(", ")
    }
}

pub(crate) fn build(raw: RawClm, data_dir: &Path) -> Result<ClmConfig, ConfigError> {
    let d = |key: &str, v: &str| duration::parse(&format!("clm.{key}"), v);
    let mut tiers = BTreeMap::new();
    for t in Tier::builtin() {
        let policy = TierPolicy::default_for(&t);
        tiers.insert(t, policy);
    }
    for (name, raw_tier) in raw.tiers {
        let key = format!("clm.tiers.{name}");
        let tier = Tier::parse(&name).ok_or_else(|| {
            ConfigError::invalid(
                &key,
                "a tier name is 1 to 64 lower-case letters, digits, `-` and `_`, starting with a letter",
            )
        })?;
        let policy = tiers.entry(tier.clone()).or_insert_with(|| TierPolicy::default_for(&tier));
        if let Some(mut thresholds) = raw_tier.thresholds {
            thresholds.sort_unstable_by(|a, b| b.cmp(a));
            thresholds.dedup();
            if thresholds.is_empty() || thresholds.iter().any(|&d| d == 0 || d > 3650) {
                return Err(ConfigError::invalid(
                    format!("{key}.thresholds"),
                    "list one or more days between 1 and 3650",
                ));
            }
            policy.thresholds = thresholds;
        }
        if let Some(mut channels) = raw_tier.channels {
            channels.sort_unstable();
            channels.dedup();
            policy.channels = channels;
        }
        if let Some(days) = raw_tier.escalate_within {
            policy.escalate_within = (days > 0).then_some(days);
        }
        if let Some(days) = raw_tier.revoke_superseded_after {
            policy.revoke_superseded_after = (days > 0).then_some(days);
        }
        if let Some(days) = raw_tier.renew_flagged_within {
            if !(1..=3650).contains(&days) {
                return Err(ConfigError::invalid(format!("{key}.renew_flagged_within"), "days between 1 and 3650"));
            }
            policy.renew_flagged_within = days;
        }
        if let Some(approval) = raw_tier.approval {
            policy.approval = approval;
        }
        if let Some(target) = raw_tier.renewal_target {
            policy.renewal_target = RenewalTarget::parse(&target).ok_or_else(|| {
                ConfigError::invalid(
                    format!("{key}.renewal_target"),
                    format!("`{target}`: a share of the lifetime between 0 and 1, e.g. \"2/3\", \"0.6\" or \"60%\""),
                )
            })?;
        }
    }
    if raw.security_lead.trim().is_empty() {
        return Err(ConfigError::invalid("clm.security_lead", "name the owner that receives escalations"));
    }
    let smtp = raw
        .smtp
        .map(|s| {
            if !(s.url.starts_with("smtp://") || s.url.starts_with("smtps://")) {
                return Err(ConfigError::invalid(
                    "clm.smtp.url",
                    "use smtp://host:port[?tls=required] or smtps://host:port",
                ));
            }
            if s.password.is_some() != s.username.is_some() {
                return Err(ConfigError::invalid("clm.smtp.password", "set username and password together"));
            }
            Ok(SmtpConfig {
                url: s.url,
                username: s.username,
                password: s.password.map(|p| p.resolve("clm.smtp.password", data_dir)).transpose()?,
                timeout: d("smtp.timeout", &s.timeout)?,
            })
        })
        .transpose()?;
    let sms = raw
        .sms
        .map(|s| {
            if !(s.url.starts_with("http://") || s.url.starts_with("https://")) {
                return Err(ConfigError::invalid("clm.sms.url", "use an http:// or https:// URL"));
            }
            Ok(SmsConfig { url: s.url, body: s.body })
        })
        .transpose()?;
    let delivery = DeliveryConfig {
        max_attempts: raw.delivery.max_attempts.max(1),
        backoff: d("delivery.backoff", &raw.delivery.backoff)?,
        max_backoff: d("delivery.max_backoff", &raw.delivery.max_backoff)?,
        interval: d("delivery.interval", &raw.delivery.interval)?,
    };
    if delivery.interval.is_zero() {
        return Err(ConfigError::invalid("clm.delivery.interval", "must be positive"));
    }
    if let Some(e) =
        raw.events.iter().find(|e| !["issued", "revoked", "approval-pending", "digest"].contains(&e.as_str()))
    {
        return Err(ConfigError::invalid(
            "clm.events",
            format!("`{e}`: use issued, revoked, approval-pending or digest"),
        ));
    }
    let interval = d("interval", &raw.interval)?;
    if interval.is_zero() {
        return Err(ConfigError::invalid("clm.interval", "must be positive"));
    }
    let discovery = super::discovery::build(&raw.discovery)?;
    Ok(ClmConfig {
        enabled: raw.enabled,
        interval,
        security_lead: raw.security_lead,
        from: raw.from,
        templates_dir: raw.templates_dir.map(|p| if p.is_absolute() { p } else { data_dir.join(p) }),
        smtp,
        webhook_secret: raw.webhook.secret.map(|s| s.resolve("clm.webhook.secret", data_dir)).transpose()?,
        webhook_timeout: d("webhook.timeout", raw.webhook.timeout.as_deref().unwrap_or("10s"))?,
        sms,
        delivery,
        events: raw.events,
        tiers,
        discovery,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<ClmConfig, ConfigError> {
        let raw: RawClm = toml::from_str(toml_text).unwrap();
        build(raw, Path::new("/data"))
    }

    #[test]
    fn tiers_default_and_override() {
        let c = parse("").unwrap();
        assert_eq!(format!("{c:?}"), format!("{:?}", ClmConfig::default()));
        assert_eq!(c.tier(&Tier::customer_facing()).thresholds, [90, 60, 30, 15]);
        assert_eq!(c.tier(&Tier::network_critical()).escalate_within, Some(30));
        assert_eq!(c.tier(&Tier::internal()).thresholds, [60, 30, 15]);
        assert_eq!(c.tier(&Tier::internal()).escalate_within, None);
        let c =
            parse("[tiers.internal]\nthresholds = [7, 45, 7]\nchannels = [\"sms\"]\nescalate_within = 5\n").unwrap();
        assert_eq!(c.tier(&Tier::internal()).thresholds, [45, 7]);
        assert_eq!(c.tier(&Tier::internal()).channels, [Channel::Sms]);
        assert_eq!(c.tier(&Tier::internal()).escalate_within, Some(5));
        assert_eq!(c.tier(&Tier::internal()).renew_flagged_within, 7);
        assert!(!c.tier(&Tier::internal()).approval);
        assert!(parse("[tiers.internal]\napproval = true\n").unwrap().tier(&Tier::internal()).approval);
        let c = parse("[tiers.internal]\nrenew_flagged_within = 3\n").unwrap();
        assert_eq!(c.tier(&Tier::internal()).renew_flagged_within, 3);
        let e = parse("[tiers.internal]\nrenew_flagged_within = 0\n").unwrap_err().to_string();
        assert!(e.contains("clm.tiers.internal.renew_flagged_within"), "{e}");
    }

    #[test]
    fn renewal_targets_parse_and_move_the_ari_window() {
        for (text, want) in [("2/3", (2, 3)), ("0.55", (55, 100)), ("60%", (60, 100)), (" 1 / 2 ", (1, 2))] {
            let t = RenewalTarget::parse(text).unwrap();
            assert_eq!((t.numerator, t.denominator), want, "{text}");
        }
        for bad in ["", "1", "3/2", "0/3", "1/0", "1.5", "0.", "100%", "-1/2", "abc", "0.1234567"] {
            assert!(RenewalTarget::parse(bad).is_none(), "{bad}");
        }
        let c = parse("").unwrap();
        let w = |tier: Tier| c.tier(&tier).ari_window();
        assert_eq!(w(Tier::customer_facing()), AriWindow { start: 0.5, end: 0.6 });
        assert!((w(Tier::network_critical()).start - 0.55).abs() < 1e-9);
        assert!((w(Tier::internal()).start - 2.0 / 3.0).abs() < 1e-9);
        // A 90-day certificate of an internal tier targeted at 2/3, then at 1/2: the window moves.
        let (nb, na) = (1_800_000_000, 1_800_000_000 + 90 * 86_400);
        let (start, end) = w(Tier::internal()).over(nb, na);
        assert_eq!((start - nb) / 86_400, 60);
        assert_eq!((end - nb) / 86_400, 69);
        let c = parse("[tiers.internal]\nrenewal_target = \"1/2\"\n").unwrap();
        let (start, end) = c.tier(&Tier::internal()).ari_window().over(nb, na);
        assert_eq!(((start - nb) / 86_400, (end - nb) / 86_400), (45, 54));
        // Close to expiry, the window stops halfway.
        let late = RenewalTarget::parse("0.96").unwrap();
        let p = TierPolicy { renewal_target: late, ..TierPolicy::default_for(&Tier::internal()) };
        assert!((p.ari_window().end - 0.98).abs() < 1e-9);
        let e = parse("[tiers.internal]\nrenewal_target = \"3/2\"\n").unwrap_err().to_string();
        assert!(e.contains("clm.tiers.internal.renewal_target") && e.contains("`3/2`"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = parse("[tiers.\"Gold\"]\nthresholds = [30]\n").unwrap_err().to_string();
        assert!(e.contains("clm.tiers.Gold") && e.contains("lower-case"), "{e}");
        let c = parse("[tiers.gold]\nthresholds = [30]\n").unwrap();
        assert_eq!(c.tier(&Tier::parse("gold").unwrap()).thresholds, [30]);
        assert_eq!(c.tier_names(), "customer-facing, gold, internal, network-critical");
        let e = parse("[tiers.internal]\nthresholds = [0]\n").unwrap_err().to_string();
        assert!(e.contains("clm.tiers.internal.thresholds"), "{e}");
        let e = parse("[smtp]\nurl = \"mail.example:25\"\n").unwrap_err().to_string();
        assert!(e.contains("clm.smtp.url"), "{e}");
        let e = parse("[smtp]\nurl = \"smtp://x:25\"\nusername = \"u\"\n").unwrap_err().to_string();
        assert!(e.contains("clm.smtp.password"), "{e}");
        assert!(toml::from_str::<RawClm>("[tiers.internal]\nchannels = [\"fax\"]\n").is_err());
    }
}
