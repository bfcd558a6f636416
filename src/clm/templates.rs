//! Message templates: a subject line and a body per event, with `{placeholder}`s filled from the
//! certificate. Built-in defaults; `clm.templates_dir` may hold `<event>.subject` and
//! `<event>.body` files that replace them (read once at start-up).

use std::{collections::BTreeMap, path::Path};

use crate::ledger::PolicyCandidate;

/// Events with a template.
pub const EVENTS: &[&str] = &[
    "expiry",
    "escalation",
    "renewal-requested",
    "renewal-failed",
    "issued",
    "revoked",
    "approval-pending",
    "deployment-failed",
];

/// The built-in (subject, body) of `event`.
fn builtin(event: &str) -> (&'static str, &'static str) {
    match event {
        "expiry" => (
            "[privca] {names} expires in {days_left} days ({not_after})",
            "The certificate for {names} expires on {not_after}, in {days_left} days \
             (the {threshold}-day notice of tier {tier}).\n\n\
             Owner:       {owner}\nSubject:     {subject}\nIssuer:      {issuer}\nSerial:      {serial}\n\
             Fingerprint: {fingerprint}\n\nRenew it, or acknowledge this notice with\n  \
             privca clm ack {fingerprint} --until YYYY-MM-DD --reason \"…\"\n",
        ),
        "escalation" => (
            "[privca] ESCALATION: {names} ({tier}) not renewed, expires {not_after}",
            "The {tier} certificate for {names}, owned by {owner}, expires on {not_after}, in {days_left} days, \
             and has not been renewed.\n\n\
             Subject:     {subject}\nIssuer:      {issuer}\nSerial:      {serial}\nFingerprint: {fingerprint}\n",
        ),
        "renewal-requested" => (
            "[privca] please renew {names} now",
            "An operator asked for the certificate for {names} to be renewed ahead of its expiry on {not_after} \
             (e.g. after a CA or algorithm change). ACME clients that use ARI are told the same.\n\n\
             Owner:       {owner}\nSubject:     {subject}\nIssuer:      {issuer}\nSerial:      {serial}\n\
             Fingerprint: {fingerprint}\n",
        ),
        "renewal-failed" => (
            "[privca] renewal failed: {names} (expires {not_after})",
            "The certificate for {names} has not been renewed: {reason}.\n\n\
             It expires on {not_after}, in {days_left} days. Renew it, or ask an operator why the \
             renewal was refused.\n\n\
             Owner:       {owner}\nSubject:     {subject}\nIssuer:      {issuer}\nSerial:      {serial}\n\
             Fingerprint: {fingerprint}\n",
        ),
        "issued" => (
            "[privca] issued: {names}",
            "A certificate for {names} was issued to {owner}, valid until {not_after}.\n\n\
             Subject:     {subject}\nIssuer:      {issuer}\nSerial:      {serial}\nFingerprint: {fingerprint}\n",
        ),
        "revoked" => (
            "[privca] revoked: {names}",
            "The certificate for {names} owned by {owner} was revoked; relying parties see it in OCSP and the \
             next CRL.\n\nSubject:     {subject}\nIssuer:      {issuer}\nSerial:      {serial}\nFingerprint: {fingerprint}\n",
        ),
        "approval-pending" => (
            "[privca] approval needed: {names} (profile {issuer})",
            "A request for {names} on profile {issuer} (owner {owner}, tier {tier}) waits for approval:\n  \
             privca approvals list\n\nSubject: {subject}\n",
        ),
        "deployment-failed" => (
            "[privca] renewed certificate not deployed at {endpoint}: {names}",
            "The certificate for {names} was renewed, but {endpoint} failed its deployment check:\n{failures}\n\
             Install the new certificate with its chain, then check again with\n  \
             privca clm verify-deployment --serial {serial}\n\n\
             Owner:       {owner}\nSubject:     {subject}\nSerial:      {serial} (renews {predecessor})\n\
             Fingerprint: {fingerprint}\n",
        ),
        _ => ("[privca] {event}: {names}", "{event}: {subject} ({fingerprint})\n"),
    }
}

/// Values of the placeholders.
#[derive(Debug, Clone)]
pub struct Vars(BTreeMap<&'static str, String>);

impl Vars {
    /// The placeholders of certificate `c` at `now`.
    pub fn of(c: &PolicyCandidate, now: i64, threshold: Option<u32>, successor: Option<&str>) -> Self {
        let names: Vec<&str> = c.sans.iter().map(|s| s.split_once(':').map_or(s.as_str(), |(_, v)| v)).collect();
        let names = if names.is_empty() { c.subject.clone() } else { names.join(", ") };
        let days_left = (c.not_after - now).max(0) / 86_400;
        Vars(BTreeMap::from([
            ("names", names),
            ("subject", c.subject.clone()),
            ("serial", c.serial.clone()),
            ("fingerprint", c.fingerprint.clone()),
            ("issuer", c.issuer.clone()),
            ("owner", c.owner.clone()),
            ("tier", c.tier.as_str().to_owned()),
            ("not_after", utc(c.not_after)),
            ("days_left", days_left.to_string()),
            ("threshold", threshold.map(|t| t.to_string()).unwrap_or_default()),
            ("successor", successor.unwrap_or_default().to_owned()),
            // Deployment checks fill these in (`with`).
            ("endpoint", String::new()),
            ("failures", String::new()),
            ("predecessor", String::new()),
            // Renewal failures fill this in.
            ("reason", String::new()),
        ]))
    }
}

impl Vars {
    /// Adds (or replaces) the placeholder `key`.
    pub fn with(mut self, key: &'static str, value: String) -> Self {
        self.0.insert(key, value);
        self
    }
}

/// `YYYY-MM-DD HH:MM UTC`.
pub fn utc(unix: i64) -> String {
    der::DateTime::from_unix_duration(std::time::Duration::from_secs(unix.max(0) as u64))
        .map(|d| format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", d.year(), d.month(), d.day(), d.hour(), d.minutes()))
        .unwrap_or_else(|_| unix.to_string())
}

/// The templates in use.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    /// Overrides, by event: (subject, body).
    overrides: BTreeMap<String, (Option<String>, Option<String>)>,
}

impl Templates {
    /// Reads the overrides in `dir` (missing files keep the built-in text).
    pub fn load(dir: Option<&Path>) -> Result<Self, std::io::Error> {
        let mut overrides = BTreeMap::new();
        if let Some(dir) = dir {
            for event in EVENTS {
                let read = |ext: &str| match std::fs::read_to_string(dir.join(format!("{event}.{ext}"))) {
                    Ok(s) => Ok(Some(s)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                };
                let (subject, body) = (read("subject")?, read("body")?);
                if subject.is_some() || body.is_some() {
                    overrides.insert((*event).to_owned(), (subject.map(|s| s.trim().to_owned()), body));
                }
            }
        }
        Ok(Templates { overrides })
    }

    /// The subject (one line) and body of `event` with `vars` filled in.
    pub fn render(&self, event: &str, vars: &Vars) -> (String, String) {
        let (subject, body) = builtin(event);
        let (o_subject, o_body) = self.overrides.get(event).cloned().unwrap_or_default();
        let fill = |text: &str| {
            let mut out = text.replace("{event}", event);
            for (k, v) in &vars.0 {
                out = out.replace(&format!("{{{k}}}"), v);
            }
            out
        };
        let subject = fill(o_subject.as_deref().unwrap_or(subject)).replace(['\r', '\n'], " ");
        (subject, fill(o_body.as_deref().unwrap_or(body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Tier;

    fn cert() -> PolicyCandidate {
        PolicyCandidate {
            fingerprint: "f0".repeat(32),
            serial: "0a".into(),
            subject: "CN=vpn1".into(),
            sans: vec!["dns:vpn1.example.test".into(), "ip:192.0.2.1".into()],
            issuer: "issuing".into(),
            not_after: 1_800_000_000,
            owner: "network-team".into(),
            tier: Tier::network_critical(),
            renew_early_at: None,
            successor: None,
            recorded_successor: None,
            served: false,
            muted_until: None,
            external: false,
        }
    }

    #[test]
    fn builtin_templates_fill_every_placeholder() {
        let vars = Vars::of(&cert(), 1_800_000_000 - 30 * 86_400, Some(30), None);
        for event in EVENTS {
            let (subject, body) = Templates::default().render(event, &vars);
            assert!(!subject.contains('{') && !body.contains('{'), "{event}: {subject} / {body}");
        }
        let (subject, body) = Templates::default().render("expiry", &vars);
        assert_eq!(subject, "[privca] vpn1.example.test, 192.0.2.1 expires in 30 days (2027-01-15 08:00 UTC)");
        assert!(body.contains("the 30-day notice of tier network-critical"), "{body}");
    }

    #[test]
    fn overrides_from_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("expiry.subject"), "Renew {names}\nnow\n").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let vars = Vars::of(&cert(), 1_700_000_000, Some(90), None);
        let (subject, body) = t.render("expiry", &vars);
        assert_eq!(subject, "Renew vpn1.example.test, 192.0.2.1 now");
        assert!(body.contains("Fingerprint: f0f0"), "the built-in body stays: {body}");
    }
}
