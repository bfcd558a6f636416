//! Compliance and access-review reports for a period `[from, to)`: one data model,
//! [`ComplianceReport`] (facts, totals and rows), built from the ledger by [`compliance`] and
//! [`access_review`] and rendered as CSV ([`to_csv`]), self-contained HTML ([`to_html`]) and PDF
//! ([`to_pdf`]). Every format prints the same totals from the same struct, so they agree by
//! construction.
//!
//! The builders only read: counts come from the ledger's report units (`ledger::reports`), each a
//! range on an indexed time column; the lists behind them stop at [`ROW_LIMIT`] rows per section
//! (a fact says so when they do), the totals never do. Nothing here writes to the ledger, signs
//! or sends: the CLI, the API and the scheduled job ([`schedule`]) decide where a rendered
//! report goes.

mod access;
pub mod command;
mod compliance;
mod csv;
mod html;
mod pdf;
pub mod schedule;

use std::collections::BTreeMap;

use crate::{app::App, signer::KeyAlgorithm};

pub use self::access::access_review;
pub use self::compliance::compliance;
pub use self::csv::to_csv;
pub use self::html::to_html;
pub use self::pdf::to_pdf;

/// Rows listed per section at most (the totals count every one).
pub const ROW_LIMIT: i64 = 1000;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Who holds which role and token, and when each was last used.
    Access,
    /// Issuance, revocation, expiry, ownership, findings, approvals, notifications, audit.
    Compliance,
}

impl ReportKind {
    /// The report's title.
    pub fn title(self) -> &'static str {
        match self {
            ReportKind::Access => "privca access review",
            ReportKind::Compliance => "privca compliance report",
        }
    }
}

/// A report: what it covers, plain facts (the audit chain's state, truncated lists), totals and
/// the rows behind them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceReport {
    /// Which report.
    pub kind: ReportKind,
    /// Start of the period (Unix seconds, included).
    pub from: i64,
    /// End of the period (Unix seconds, excluded).
    pub to: i64,
    /// When it was built.
    pub generated_at: i64,
    /// (name, value) statements that are not counts.
    pub facts: Vec<(String, String)>,
    /// Counts, in report order.
    pub totals: Vec<Total>,
    /// The rows behind the totals, in report order.
    pub rows: Vec<Row>,
}

/// One count: `section` and, within it, `item` (`all`, a reason, a profile, a role…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Total {
    /// Section.
    pub section: Section,
    /// What in the section.
    pub item: String,
    /// How many.
    pub value: i64,
}

impl Total {
    /// `section / item`, as every format prints it.
    pub fn label(&self) -> String {
        format!("{} / {}", self.section.as_str(), self.item)
    }
}

/// One listed object: a certificate, an approval, a message, a user or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Section.
    pub section: Section,
    /// Serial, fingerprint, approval id, user name or token id.
    pub item: String,
    /// Certificate subject, or a user's or token's role.
    pub subject: String,
    /// CLM owner, or the user a token belongs to.
    pub owner: String,
    /// The time the row is about (revocation, expiry, decision, last use).
    pub at: Option<i64>,
    /// Reason, finding, state.
    pub detail: String,
}

/// Sections of a report. Declared in the order the reports print them (not alphabetically):
/// renderers walk totals and rows in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// Certificates issued in the period.
    Issued,
    /// Of those, renewals.
    Renewed,
    /// Revocations in the period.
    Revoked,
    /// Certificates that expired in the period with no successor.
    ExpiredBeforeRenewal,
    /// Certificates valid at the end of the period with no claimed owner.
    Unowned,
    /// Certificates outside their profile's rules.
    PolicyViolations,
    /// Weak keys and signature algorithms.
    WeakCrypto,
    /// The approval gate.
    Approvals,
    /// CLM notifications by channel and state.
    Notifications,
    /// The audit chain's verification.
    Audit,
    /// Admin users by role.
    Users,
    /// API tokens.
    Tokens,
}

impl Section {
    /// Machine name (CSV, HTML ids).
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Issued => "issued",
            Section::Renewed => "renewed",
            Section::Revoked => "revoked",
            Section::ExpiredBeforeRenewal => "expired-before-renewal",
            Section::Unowned => "unowned",
            Section::PolicyViolations => "policy-violations",
            Section::WeakCrypto => "weak-crypto",
            Section::Approvals => "approvals",
            Section::Notifications => "notifications",
            Section::Audit => "audit",
            Section::Users => "users",
            Section::Tokens => "tokens",
        }
    }

    /// Heading.
    pub fn title(self) -> &'static str {
        match self {
            Section::Issued => "Issued",
            Section::Renewed => "Renewed",
            Section::Revoked => "Revoked",
            Section::ExpiredBeforeRenewal => "Expired before renewal",
            Section::Unowned => "Unowned",
            Section::PolicyViolations => "Policy violations",
            Section::WeakCrypto => "Weak cryptography",
            Section::Approvals => "Approvals",
            Section::Notifications => "Notification delivery",
            Section::Audit => "Audit chain",
            Section::Users => "Admin users",
            Section::Tokens => "API tokens",
        }
    }

    /// Column headings of its rows: item, subject, owner, time, detail.
    pub fn columns(self) -> [&'static str; 5] {
        match self {
            Section::Approvals => ["approval", "subject", "decided by", "decided", "status"],
            Section::Notifications => ["event", "recipient", "owner", "queued", "last error"],
            Section::Audit => ["check", "", "", "", "finding"],
            Section::Users => ["user", "role", "owner", "last login", "state"],
            Section::Tokens => ["token", "role", "user", "last use", "state"],
            Section::Revoked => ["serial", "subject", "owner", "revoked", "reason"],
            Section::ExpiredBeforeRenewal | Section::Unowned => {
                ["certificate", "subject", "owner", "expires", "source"]
            }
            _ => ["certificate", "subject", "owner", "issued", "finding"],
        }
    }
}

/// What the builders need besides the ledger: the audit checkpoint key and each profile's rules.
#[derive(Debug, Clone, Default)]
pub struct ReportContext {
    /// The audit checkpoint key's SubjectPublicKeyInfo (DER); `None` skips the chain check.
    pub checkpoint_spki: Option<Vec<u8>>,
    /// Profiles by name.
    pub profiles: BTreeMap<String, ProfileRules>,
    /// The time the report is built at (Unix seconds).
    pub now: i64,
}

/// What a certificate of a profile must respect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRules {
    /// Longest validity, seconds.
    pub validity: i64,
    /// Key algorithms allowed.
    pub allowed_keys: Vec<KeyAlgorithm>,
}

impl ReportContext {
    /// The context of a running privca: its profiles and its token's checkpoint key (the chain
    /// check is skipped, and a fact says so, when the key cannot be read).
    pub fn of(app: &App) -> ReportContext {
        Self::from_parts(&app.config, &app.signing)
    }

    /// The same from the configuration and the signing service (what the API holds).
    pub fn from_parts(config: &crate::config::Config, signing: &crate::signer::SigningService) -> ReportContext {
        let profiles = config
            .profiles
            .iter()
            .map(|(name, p)| {
                let rules = ProfileRules {
                    validity: i64::try_from(p.validity.as_secs()).unwrap_or(i64::MAX),
                    allowed_keys: p.allowed_keys.clone(),
                };
                (name.clone(), rules)
            })
            .collect();
        let checkpoint_spki = match signing.key_info(crate::audit::CHECKPOINT_KEY) {
            Ok(k) => Some(k.spki_der),
            Err(e) => {
                tracing::warn!(error = %e, "report: the audit checkpoint key cannot be read; the chain is not verified");
                None
            }
        };
        ReportContext { checkpoint_spki, profiles, now: crate::ledger::now() }
    }
}

/// `YYYY-MM-DD HH:MM` (UTC) of a Unix time.
pub(crate) fn datetime(unix: i64) -> String {
    der::DateTime::from_unix_duration(std::time::Duration::from_secs(unix.max(0) as u64))
        .map(|d| format!("{:04}-{:02}-{:02} {:02}:{:02}", d.year(), d.month(), d.day(), d.hour(), d.minutes()))
        .unwrap_or_else(|_| unix.to_string())
}

/// `YYYY-MM-DD` (UTC) of a Unix time.
pub(crate) fn date(unix: i64) -> String {
    let s = datetime(unix);
    s.get(..10).map(str::to_owned).unwrap_or(s)
}

/// The period as printed: `from` to the last day before `to` (both included).
pub(crate) fn period(report: &ComplianceReport) -> String {
    format!("{} to {} (UTC)", date(report.from), date(report.to.saturating_sub(1)))
}

#[cfg(test)]
pub(crate) mod sample;
