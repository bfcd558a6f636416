//! A report with a little of everything, for the renderers' tests.

use super::{ComplianceReport, ReportKind, Row, Section, Total};

pub(crate) fn sample() -> ComplianceReport {
    let total = |section, item: &str, value| Total { section, item: item.into(), value };
    ComplianceReport {
        kind: ReportKind::Compliance,
        from: 1_788_220_800, // 2026-09-01
        to: 1_796_083_200,   // 2026-12-01
        generated_at: 1_796_090_000,
        facts: vec![("Audit chain".into(), "verified: hash chain and checkpoint signatures intact".into())],
        totals: vec![
            total(Section::Issued, "all", 3),
            total(Section::Issued, "profile tls-server", 3),
            total(Section::Renewed, "all", 1),
            total(Section::Revoked, "all", 1),
            total(Section::Revoked, "keyCompromise", 1),
            total(Section::Unowned, "all", 0),
        ],
        rows: vec![Row {
            section: Section::Revoked,
            item: "0a1b".into(),
            subject: "CN=<script>alert(1)</script>,O=\"x\"".into(),
            owner: "web & mail".into(),
            at: Some(1_790_000_000),
            detail: "keyCompromise".into(),
        }],
    }
}
