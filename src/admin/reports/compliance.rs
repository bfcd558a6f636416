//! The compliance report of a period: issued and renewed, revoked by reason, expired before
//! renewal, unowned, policy violations and weak cryptography (privca's certificates issued in
//! the period, read from their DER, and the external ones live in it), approvals, notification
//! delivery, and the audit chain's verification.

use der::Decode;

use super::{ComplianceReport, ReportContext, ReportKind, Row, Section, Total, ROW_LIMIT};
use crate::{
    clm::discover::certinfo::{weak_hash, CertInfo},
    ledger::{IssuedCert, Ledger, LedgerError, ReportCert},
    signer::KeyAlgorithm,
};

/// RSA keys shorter than this are weak.
const MIN_RSA_BITS: usize = 2048;
/// notBefore is backdated by a minute at issuance: a validity this much longer than the
/// profile's is still within it.
const VALIDITY_SLACK: i64 = 120;

/// Builds the compliance report of `[from, to)`.
pub async fn compliance(
    ledger: &Ledger,
    from: i64,
    to: i64,
    context: &ReportContext,
) -> Result<ComplianceReport, LedgerError> {
    let mut r = ComplianceReport {
        kind: ReportKind::Compliance,
        from,
        to,
        generated_at: context.now,
        facts: Vec::new(),
        totals: Vec::new(),
        rows: Vec::new(),
    };
    issued(ledger, &mut r).await?;
    revoked(ledger, &mut r).await?;
    let (n, rows) = ledger.report_expired_unrenewed(from, to.min(context.now), ROW_LIMIT).await?;
    certificates(&mut r, Section::ExpiredBeforeRenewal, n, rows);
    let (n, rows) = ledger.report_unowned(to.min(context.now), ROW_LIMIT).await?;
    certificates(&mut r, Section::Unowned, n, rows);
    findings(ledger, &mut r, context).await?;
    approvals(ledger, &mut r).await?;
    notifications(ledger, &mut r).await?;
    audit(ledger, &mut r, context).await?;
    Ok(r)
}

impl ComplianceReport {
    pub(super) fn total(&mut self, section: Section, item: impl Into<String>, value: i64) {
        self.totals.push(Total { section, item: item.into(), value });
    }

    /// Says so when a section lists fewer rows than it counts.
    pub(super) fn note_truncated(&mut self, section: Section, count: i64, listed: usize) {
        if count > listed as i64 {
            self.facts.push((section.title().to_owned(), format!("the first {listed} of {count} are listed")));
        }
    }
}

async fn issued(ledger: &Ledger, r: &mut ComplianceReport) -> Result<(), LedgerError> {
    let by_profile = ledger.report_issued(r.from, r.to).await?;
    let (issued, renewed) = by_profile.iter().fold((0, 0), |(i, n), (_, a, b)| (i + a, n + b));
    r.total(Section::Issued, "all", issued);
    for (profile, n, _) in &by_profile {
        r.total(Section::Issued, format!("profile {profile}"), *n);
    }
    r.total(Section::Renewed, "all", renewed);
    for (profile, _, n) in by_profile.iter().filter(|p| p.2 > 0) {
        r.total(Section::Renewed, format!("profile {profile}"), *n);
    }
    Ok(())
}

async fn revoked(ledger: &Ledger, r: &mut ComplianceReport) -> Result<(), LedgerError> {
    let (by_reason, rows) = ledger.report_revoked(r.from, r.to, ROW_LIMIT).await?;
    let all = by_reason.iter().map(|(_, n)| n).sum();
    r.total(Section::Revoked, "all", all);
    for (reason, n) in &by_reason {
        r.total(Section::Revoked, if reason.is_empty() { "unspecified" } else { reason }, *n);
    }
    r.note_truncated(Section::Revoked, all, rows.len());
    r.rows.extend(rows.into_iter().map(|c| cert_row(Section::Revoked, c)));
    Ok(())
}

fn certificates(r: &mut ComplianceReport, section: Section, count: i64, rows: Vec<ReportCert>) {
    r.total(section, "all", count);
    r.note_truncated(section, count, rows.len());
    r.rows.extend(rows.into_iter().map(|c| cert_row(section, c)));
}

fn cert_row(section: Section, c: ReportCert) -> Row {
    Row { section, item: c.id, subject: c.subject, owner: c.owner, at: Some(c.at), detail: c.detail }
}

/// Policy violations and weak cryptography: privca's certificates of the period (from their
/// DER, streamed) and the external certificates live in it.
async fn findings(ledger: &Ledger, r: &mut ComplianceReport, context: &ReportContext) -> Result<(), LedgerError> {
    let (mut violations, mut weak) = (Vec::new(), Vec::new());
    ledger
        .report_each_issued(r.from, r.to, |c| {
            let (v, w) = check_issued(&c, context);
            violations.extend(v.into_iter().map(|d| issued_row(Section::PolicyViolations, &c, d)));
            weak.extend(w.into_iter().map(|d| issued_row(Section::WeakCrypto, &c, d)));
        })
        .await?;
    for e in ledger.report_external(r.from, r.to).await? {
        for finding in weak_crypto(&e.key_type, &e.signature_algorithm, false) {
            weak.push(Row {
                section: Section::WeakCrypto,
                item: e.fingerprint.clone(),
                subject: e.subject.clone(),
                owner: e.owner.clone(),
                at: Some(e.not_after),
                detail: format!("{finding} ({} certificate)", e.source),
            });
        }
    }
    for (section, mut rows) in [(Section::PolicyViolations, violations), (Section::WeakCrypto, weak)] {
        let count = rows.len() as i64;
        r.total(section, "all", count);
        rows.truncate(usize::try_from(ROW_LIMIT).unwrap_or(usize::MAX));
        r.note_truncated(section, count, rows.len());
        r.rows.extend(rows);
    }
    Ok(())
}

fn issued_row(section: Section, c: &IssuedCert, detail: String) -> Row {
    Row {
        section,
        item: c.serial.clone(),
        subject: c.subject.clone(),
        owner: c.owner.clone(),
        at: Some(c.created_at),
        detail,
    }
}

/// (policy violations, weak-crypto findings) of one certificate privca issued.
fn check_issued(c: &IssuedCert, context: &ReportContext) -> (Vec<String>, Vec<String>) {
    let info = match CertInfo::from_der(&c.der) {
        Ok(i) => i,
        Err(e) => return (vec![format!("the stored certificate cannot be read: {e}")], Vec::new()),
    };
    let weak = weak_crypto(&info.key_type, &info.signature_algorithm, weak_hash(info.signature_oid));
    let mut violations = Vec::new();
    if let Some(rules) = context.profiles.get(&c.profile) {
        let validity = c.not_after - c.not_before;
        if validity > rules.validity.saturating_add(VALIDITY_SLACK) {
            violations.push(format!(
                "validity {} days exceeds profile {}'s {} days",
                validity / 86_400,
                c.profile,
                rules.validity / 86_400
            ));
        }
        let key =
            spki::SubjectPublicKeyInfoRef::from_der(&info.spki_der).ok().and_then(|s| KeyAlgorithm::from_spki(&s));
        match key {
            Some(k) if !rules.allowed_keys.contains(&k) => {
                violations.push(format!("key {} is not allowed by profile {}", k.name(), c.profile))
            }
            None => violations.push(format!("key {} is not allowed by profile {}", info.key_type, c.profile)),
            Some(_) => {}
        }
    }
    (violations, weak)
}

/// Weak-crypto findings of a key type (`rsa-1024`, `dsa`, …) and signature algorithm.
pub(super) fn weak_crypto(key_type: &str, signature_algorithm: &str, weak_oid: bool) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(bits) = key_type.strip_prefix("rsa-").and_then(|b| b.parse::<usize>().ok()) {
        if bits < MIN_RSA_BITS {
            found.push(format!("RSA key of {bits} bits (< {MIN_RSA_BITS})"));
        }
    } else if key_type == "dsa" {
        found.push("DSA key".to_owned());
    }
    let alg = signature_algorithm.to_ascii_lowercase();
    if weak_oid || ["sha1", "sha-1", "md5", "md2"].iter().any(|w| alg.contains(w)) {
        found.push(format!("signature algorithm {signature_algorithm}"));
    }
    found
}

async fn approvals(ledger: &Ledger, r: &mut ComplianceReport) -> Result<(), LedgerError> {
    let (requested, decided, rows) = ledger.report_approvals(r.from, r.to, ROW_LIMIT).await?;
    r.total(Section::Approvals, "requested", requested);
    let count = |s: &[&str]| decided.iter().filter(|(st, _)| s.contains(&st.as_str())).map(|(_, n)| n).sum();
    r.total(Section::Approvals, "approved", count(&["approved", "issued"]));
    r.total(Section::Approvals, "denied", count(&["denied"]));
    let all: i64 = decided.iter().map(|(_, n)| n).sum();
    r.note_truncated(Section::Approvals, all, rows.len());
    r.rows.extend(rows.into_iter().map(|a| Row {
        section: Section::Approvals,
        item: a.id.to_string(),
        subject: a.subject,
        owner: a.decided_by,
        at: Some(a.decided_at),
        detail: if a.reason.is_empty() {
            format!("{} (requested by {})", a.status, a.requester)
        } else {
            format!("{} (requested by {}): {}", a.status, a.requester, a.reason)
        },
    }));
    Ok(())
}

async fn notifications(ledger: &Ledger, r: &mut ComplianceReport) -> Result<(), LedgerError> {
    let (counts, dead) = ledger.report_notifications(r.from, r.to, ROW_LIMIT).await?;
    r.total(Section::Notifications, "all", counts.iter().map(|c| c.2).sum());
    for (channel, state, n) in &counts {
        r.total(Section::Notifications, format!("{channel} {state}"), *n);
    }
    let dead_count = counts.iter().filter(|c| c.1 == "dead").map(|c| c.2).sum();
    r.note_truncated(Section::Notifications, dead_count, dead.len());
    r.rows.extend(dead.into_iter().map(|m| Row {
        section: Section::Notifications,
        item: m.event,
        subject: format!("{} {}", m.channel, m.recipient),
        owner: m.owner,
        at: Some(m.created_at),
        detail: m.last_error,
    }));
    Ok(())
}

/// The whole chain is verified (as `privca audit verify` does), not only the period's rows: a
/// break anywhere makes every period's record doubtful.
async fn audit(ledger: &Ledger, r: &mut ComplianceReport, context: &ReportContext) -> Result<(), LedgerError> {
    let Some(spki) = &context.checkpoint_spki else {
        r.facts.push(("Audit chain".into(), "not verified: the checkpoint key was not available".into()));
        return Ok(());
    };
    let v = crate::audit::verify(ledger, spki).await?;
    r.total(Section::Audit, "sealed rows", v.rows);
    r.total(Section::Audit, "checkpoints", v.checkpoints as i64);
    r.total(Section::Audit, "unsealed rows", v.unsealed);
    r.total(Section::Audit, "findings", v.findings.len() as i64);
    let verdict = if v.findings.is_empty() {
        "verified: hash chain and checkpoint signatures intact".to_owned()
    } else {
        format!("FAILED: {} finding(s)", v.findings.len())
    };
    r.facts.push(("Audit chain".into(), verdict));
    r.rows.extend(v.findings.into_iter().take(usize::try_from(ROW_LIMIT).unwrap_or(usize::MAX)).map(|f| Row {
        section: Section::Audit,
        item: "chain".into(),
        subject: String::new(),
        owner: String::new(),
        at: None,
        detail: f.0,
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::weak_crypto;

    #[test]
    fn weak_keys_and_hashes_are_found() {
        assert_eq!(weak_crypto("rsa-1024", "sha256WithRSAEncryption", false), ["RSA key of 1024 bits (< 2048)"]);
        assert_eq!(
            weak_crypto("rsa-2048", "sha1WithRSAEncryption", false),
            ["signature algorithm sha1WithRSAEncryption"]
        );
        assert_eq!(weak_crypto("ec-p256", "ecdsa-with-SHA1", false).len(), 1);
        assert_eq!(weak_crypto("dsa", "1.2.3", true).len(), 2);
        assert!(weak_crypto("ec-p384", "ecdsa-with-SHA384", false).is_empty());
        assert!(weak_crypto("rsa-4096", "sha512WithRSAEncryption", false).is_empty());
    }
}
