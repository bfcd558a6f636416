//! Compliance and access-review reports on both databases: a ledger with issued, renewed,
//! revoked, expired-unrenewed, unowned, over-long and weak (external) certificates, approvals,
//! notifications, admin users and tokens gives the expected totals; the PDF renders non-blank
//! (`pdftoppm`) and its totals, read back with `pdftotext`, equal the CSV's; the HTML escapes a
//! certificate subject that carries markup.

use std::{collections::BTreeSet, process::Command};

use crate::harness::{Db, TestCa};
use privca::{
    admin::reports::{self, ComplianceReport, ReportContext, Section},
    audit::{AuditEvent, AuditKind},
    ca::{IssuanceRequest, IssueOutcome, Requester, RevocationReason},
    ledger::Owner,
};

const DAY: i64 = 86_400;
const SCRIPT_SUBJECT: &str = "CN=<script>alert(1)</script>";

async fn issue(t: &TestCa, name: &str, owner: &str, renews: Option<&str>) -> String {
    let csr = t.csr("ec:P-256", &format!("/CN={name}"), Some(&format!("DNS:{name}")));
    let mut req = IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap();
    req.owner = Some(owner.into());
    req.renews = renews.map(str::to_owned);
    match t.ca.issue(req).await.unwrap() {
        IssueOutcome::Issued(c) => c.record.serial,
        IssueOutcome::Pending(_) => panic!("pending"),
    }
}

/// Fills the ledger: six certificates (one renewal, two revoked, one unowned, one expired
/// unrenewed, one over-long), a weak external one, approvals, notifications, a user and tokens.
async fn populate(t: &TestCa, now: i64) {
    let owner = Owner::new("web-team", "team");
    t.app.ledger.put_owner(&owner, &AuditEvent::new(AuditKind::OwnerChanged, "cli:test")).await.unwrap();
    let a = issue(t, "a.example.test", "web-team", None).await;
    issue(t, "d.example.test", "web-team", Some(&a)).await;
    let b = issue(t, "b.example.test", "web-team", None).await;
    t.ca.revoke(&b, RevocationReason::KeyCompromise, None, &Requester::cli()).await.unwrap();
    issue(t, "c.example.test", "nobody", None).await;
    let e = issue(t, "e.example.test", "web-team", None).await;
    let f = issue(t, "f.example.test", "web-team", None).await;
    t.ca.revoke(&f, RevocationReason::Superseded, None, &Requester::cli()).await.unwrap();

    let mut raw = t.raw().await;
    // e expired five days ago with no successor; f was valid 200 days longer than its profile allows.
    sqlx::query("UPDATE certificates SET not_after = $1 WHERE serial = $2")
        .bind(now - 5 * DAY)
        .bind(&e)
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("UPDATE certificates SET not_before = not_before - $1 WHERE serial = $2")
        .bind(200 * DAY)
        .bind(&f)
        .execute(&mut raw)
        .await
        .unwrap();
    // A discovered RSA-1024/SHA-1 certificate nobody owns, whose subject carries markup.
    sqlx::query(
        "INSERT INTO external_certificates (fingerprint_sha256, source, subject, issuer, serial, sans, key_type, \
         signature_algorithm, not_before, not_after, owner, tier, der, created_at) \
         VALUES ('ff00', 'discovery', $1, 'CN=old ca', '01', '[]', 'rsa-1024', 'sha1WithRSAEncryption', $2, $3, '', \
         'internal', $4, $5)",
    )
    .bind(SCRIPT_SUBJECT)
    .bind(now - 10 * DAY)
    .bind(now + 100 * DAY)
    .bind(vec![0u8; 4])
    .bind(now)
    .execute(&mut raw)
    .await
    .unwrap();
    for (status, decided) in [("pending", None), ("denied", Some(now - DAY))] {
        sqlx::query(
            "INSERT INTO approvals (profile, requester, owner, subject, sans, csr_der, status, reason, decided_by, \
             created_at, decided_at) VALUES ('tls-server', 'cli:bob', 'web-team', 'CN=x.example.test', '[]', $1, $2, \
             'not ours', 'cli:alice', $3, $4)",
        )
        .bind(vec![0u8; 4])
        .bind(status)
        .bind(now - 2 * DAY)
        .bind(decided)
        .execute(&mut raw)
        .await
        .unwrap();
    }
    for (key, channel, state) in [("k1", "email", "sent"), ("k2", "webhook", "dead")] {
        sqlx::query(
            "INSERT INTO clm_outbox (dedup_key, event, fingerprint, owner, channel, recipient, subject, body, state, \
             attempts, next_attempt_at, last_error, created_at) VALUES ($1, 'expiry-30d', NULL, 'web-team', $2, \
             'ops@example.test', 's', 'b', $3, 1, $4, 'HTTP 500', $4)",
        )
        .bind(key)
        .bind(channel)
        .bind(state)
        .bind(now - DAY)
        .execute(&mut raw)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO admin_users (name, role, password_hash, totp_secret, created_at) \
         VALUES ('alice', 'admin', 'x', 'sealed', $1)",
    )
    .bind(now)
    .execute(&mut raw)
    .await
    .unwrap();
    for (id, user, role, revoked, used) in
        [("t1", Some("alice"), "auditor", None, Some(now)), ("t2", None, "metrics", Some(now), None)]
    {
        sqlx::query(
            "INSERT INTO admin_tokens (id, user_name, role, secret_hash, created_at, expires_at, revoked_at, \
             last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(user)
        .bind(role)
        .bind(vec![0u8; 32])
        .bind(now)
        .bind(now + 30 * DAY)
        .bind(revoked)
        .bind(used)
        .execute(&mut raw)
        .await
        .unwrap();
    }
}

fn total(r: &ComplianceReport, section: Section, item: &str) -> i64 {
    r.totals
        .iter()
        .find(|t| t.section == section && t.item == item)
        .unwrap_or_else(|| panic!("no total {section:?} / {item}: {:?}", r.totals))
        .value
}

/// `section / item: value` of every CSV total line.
fn csv_totals(csv: &str) -> BTreeSet<String> {
    csv.lines()
        .filter_map(|l| l.strip_prefix("total,"))
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            format!("{} / {}: {}", cells[0], cells[1], cells[2])
        })
        .collect()
}

/// The PDF's lines that read as a total (`section / item: count` with a known section).
fn pdf_totals(text: &str, sections: &BTreeSet<&str>) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.split_once(" / ").is_some_and(|(s, _)| sections.contains(s)))
        .filter(|l| l.rsplit_once(": ").is_some_and(|(_, n)| n.parse::<i64>().is_ok()))
        .map(str::to_owned)
        .collect()
}

/// Renders the PDF with pdftoppm (greyscale PGM) and checks that the first page has ink.
fn assert_renders_non_blank(dir: &std::path::Path, pdf: &[u8]) {
    let path = dir.join("report.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftoppm").args(["-gray", "-r", "50", "-f", "1", "-l", "1"]).arg(&path).output();
    let out = out.expect("pdftoppm (Debian poppler-utils) must be installed");
    assert!(out.status.success(), "pdftoppm: {}", String::from_utf8_lossy(&out.stderr));
    let pgm = out.stdout;
    assert!(pgm.starts_with(b"P5"), "not a PGM");
    // Header: P5, width, height, maxval, each followed by whitespace.
    let mut fields = 0;
    let mut at = 0;
    while fields < 4 {
        while pgm[at].is_ascii_whitespace() {
            at += 1;
        }
        while !pgm[at].is_ascii_whitespace() {
            at += 1;
        }
        fields += 1;
    }
    let pixels = &pgm[at + 1..];
    let dark = pixels.iter().filter(|&&p| p < 128).count();
    assert!(pixels.len() > 100_000, "{} pixels", pixels.len());
    assert!(dark > 500 && dark < pixels.len() / 4, "{dark} dark pixels of {}", pixels.len());
}

/// With `PRIVCA_TEST_ARTIFACTS` set, writes the rendered reports there for a person to look at.
fn keep_artifacts(db: Db, files: &[(&str, &[u8])]) {
    let Ok(dir) = std::env::var("PRIVCA_TEST_ARTIFACTS") else { return };
    let dir = std::path::Path::new(&dir).join(format!("reports-{db:?}").to_lowercase());
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn pdftotext(dir: &std::path::Path) -> String {
    let out = Command::new("pdftotext").arg(dir.join("report.pdf")).arg("-").output().expect("pdftotext");
    assert!(out.status.success(), "pdftotext: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

async fn reports_of_a_period(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    populate(&t, now).await;
    privca::audit::seal(&t.app.ledger, &t.app.signing).await.unwrap();
    let context = ReportContext::of(&t.app);
    let (from, to) = (now - 30 * DAY, now + DAY);
    let r = reports::compliance(&t.app.ledger, from, to, &context).await.unwrap();

    assert_eq!(total(&r, Section::Issued, "all"), 6);
    assert_eq!(total(&r, Section::Issued, "profile tls-server"), 6);
    assert_eq!(total(&r, Section::Renewed, "all"), 1);
    assert_eq!(total(&r, Section::Revoked, "all"), 2);
    assert_eq!(total(&r, Section::Revoked, "keyCompromise"), 1);
    assert_eq!(total(&r, Section::Revoked, "superseded"), 1);
    assert_eq!(total(&r, Section::ExpiredBeforeRenewal, "all"), 1);
    assert_eq!(total(&r, Section::Unowned, "all"), 2, "c (owner without record) and the external one");
    assert_eq!(total(&r, Section::PolicyViolations, "all"), 1);
    assert_eq!(total(&r, Section::WeakCrypto, "all"), 2, "RSA-1024 and SHA-1 of the external certificate");
    assert_eq!(total(&r, Section::Approvals, "requested"), 2);
    assert_eq!(total(&r, Section::Approvals, "denied"), 1);
    assert_eq!(total(&r, Section::Approvals, "approved"), 0);
    assert_eq!(total(&r, Section::Notifications, "all"), 2);
    assert_eq!(total(&r, Section::Notifications, "webhook dead"), 1);
    assert_eq!(total(&r, Section::Audit, "findings"), 0, "{:?}", r.rows);
    assert!(total(&r, Section::Audit, "sealed rows") > 6);
    assert!(r.facts.iter().any(|(n, v)| n == "Audit chain" && v.starts_with("verified")), "{:?}", r.facts);
    let expired: Vec<_> = r.rows.iter().filter(|row| row.section == Section::ExpiredBeforeRenewal).collect();
    assert_eq!(expired[0].subject, "CN=e.example.test");
    let violation = r.rows.iter().find(|row| row.section == Section::PolicyViolations).unwrap();
    assert!(violation.detail.contains("exceeds profile tls-server"), "{}", violation.detail);
    // A period before all of it counts nothing.
    let empty = reports::compliance(&t.app.ledger, from - 400 * DAY, from - 300 * DAY, &context).await.unwrap();
    assert_eq!(total(&empty, Section::Issued, "all"), 0);
    assert_eq!(total(&empty, Section::Revoked, "all"), 0);

    // CSV, HTML and PDF say the same.
    let csv = reports::to_csv(&r);
    let from_csv = csv_totals(&csv);
    assert_eq!(from_csv.len(), r.totals.len());
    let html = reports::to_html(&r);
    assert!(!html.contains("<script"), "markup from a subject reached the page");
    assert!(html.contains("CN=&lt;script&gt;alert(1)&lt;/script&gt;"));
    let pdf = reports::to_pdf(&r);
    assert_renders_non_blank(t.dir.path(), &pdf);
    let text = pdftotext(t.dir.path());
    keep_artifacts(
        db,
        &[("compliance.csv", csv.as_bytes()), ("compliance.html", html.as_bytes()), ("compliance.pdf", &pdf)],
    );
    let sections: BTreeSet<&str> = r.totals.iter().map(|t| t.section.as_str()).collect();
    assert_eq!(pdf_totals(&text, &sections), from_csv, "PDF totals differ from the CSV's:\n{text}");

    // The access review.
    let access = reports::access_review(&t.app.ledger, from, to, &context).await.unwrap();
    assert_eq!(total(&access, Section::Users, "active"), 1);
    assert_eq!(total(&access, Section::Users, "role admin"), 1);
    assert_eq!(total(&access, Section::Tokens, "active"), 1);
    assert_eq!(total(&access, Section::Tokens, "revoked"), 1);
    let unused = access.rows.iter().find(|row| row.item == "t2").unwrap();
    assert!(unused.detail.contains("unused in the period"), "{}", unused.detail);
    let pdf = reports::to_pdf(&access);
    assert_renders_non_blank(t.dir.path(), &pdf);
    let sections: BTreeSet<&str> = access.totals.iter().map(|t| t.section.as_str()).collect();
    assert_eq!(pdf_totals(&pdftotext(t.dir.path()), &sections), csv_totals(&reports::to_csv(&access)));
    t.app.ledger.close().await;
}

/// `[reports] schedule = "monthly"`: the last month's report is mailed once to each recipient,
/// as a PDF attachment with the totals in the text; a second look sends nothing.
async fn scheduled_report_is_mailed_once(db: Db) {
    let (port, mails) = crate::clm::smtp_sink().await;
    let extra = format!(
        "[clm.smtp]\nurl = \"smtp://127.0.0.1:{port}\"\n[reports]\nschedule = \"monthly\"\n\
         recipients = [\"audit@example.test\", \"ciso@example.test\"]\n"
    );
    let Some(t) = TestCa::with_config(db, &extra).await else { return };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let notifier = privca::clm::notify::Notifier::new(&t.app.config.clm).unwrap();
    assert_eq!(reports::schedule::send_due(&t.app, &notifier, now).await.unwrap(), 2);
    assert_eq!(reports::schedule::send_due(&t.app, &notifier, now).await.unwrap(), 0, "once per period");
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 2);
    let mut to: Vec<String> = mails.iter().flat_map(|m| m.rcpt.clone()).collect();
    to.sort();
    assert_eq!(to, ["audit@example.test", "ciso@example.test"]);
    let m = &mails[0];
    assert!(m.header("subject").unwrap().starts_with("[privca] compliance report "), "{}", m.data);
    assert!(m.data.contains("issued / all: 0"), "{}", m.data);
    assert!(m.data.contains("Content-Type: application/pdf"), "{}", m.data);
    assert!(m.data.contains("privca-compliance-") && m.data.contains(".pdf\""), "{}", m.data);
    // Next month is due again.
    assert_eq!(reports::schedule::send_due(&t.app, &notifier, now + 32 * DAY).await.unwrap(), 2);
    t.app.ledger.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_report_sqlite() {
    scheduled_report_is_mailed_once(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_report_postgres() {
    scheduled_report_is_mailed_once(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_sqlite() {
    reports_of_a_period(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_postgres() {
    reports_of_a_period(Db::Postgres).await;
}
