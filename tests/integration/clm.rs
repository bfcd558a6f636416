//! CLM on both databases, with a real SMTP conversation (a loopback SMTP sink) and a webhook
//! receiver: each certificate × threshold × channel gives exactly one message across a restart
//! between decision and delivery; a customer-facing certificate not renewed inside 30 days
//! escalates to the security lead; a superseded certificate raises nothing unless an endpoint
//! still serves it; a failing webhook is retried, dead-lettered, and queued again by an operator.
//! The policy job's clock is the `now` the test passes.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{extract::State, http::HeaderMap, routing::post, Router};
use privca::{
    audit::{AuditEvent, AuditKind},
    ca::{IssuanceRequest, IssueOutcome, Requester},
    clm::{self, notify::Notifier, templates::Templates},
    ledger::{InventoryChange, InventoryFilter, InventoryStatus, Ledger, Owner},
    policy::Tier,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

use crate::harness::{Db, TestCa};

pub(crate) const DAY: i64 = 86_400;

/// A mail as the SMTP sink received it.
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    pub(crate) rcpt: Vec<String>,
    pub(crate) data: String,
}

impl Mail {
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}: ", name.to_ascii_lowercase());
        self.data.lines().find(|l| l.to_ascii_lowercase().starts_with(&prefix)).map(|l| l[prefix.len()..].to_owned())
    }
}

/// A loopback SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT)
/// that keeps every message.
pub(crate) async fn smtp_sink() -> (u16, Arc<Mutex<Vec<Mail>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails = Arc::new(Mutex::new(Vec::new()));
    let store = mails.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut rcpt = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "HELO" | "MAIL" | "NOOP" => b"250 ok\r\n",
                        "RSET" => {
                            rcpt.clear();
                            b"250 ok\r\n"
                        }
                        "RCPT" => {
                            let to = line.split(['<', '>']).nth(1).unwrap_or("").to_owned();
                            rcpt.push(to);
                            b"250 ok\r\n"
                        }
                        "DATA" => {
                            w.write_all(b"354 go on\r\n").await.unwrap();
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                                data.push('\n');
                            }
                            store.lock().unwrap().push(Mail { rcpt: std::mem::take(&mut rcpt), data });
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"502 no\r\n",
                    };
                    if w.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, mails)
}

/// A received webhook call: its headers of interest and body.
#[derive(Debug, Clone)]
struct Hook {
    delivery: String,
    timestamp: Option<String>,
    signature: Option<String>,
    body: String,
}

#[derive(Clone)]
struct Receiver {
    calls: Arc<Mutex<Vec<Hook>>>,
    status: Arc<Mutex<u16>>,
}

async fn webhook_receiver() -> (u16, Receiver) {
    let state = Receiver { calls: Arc::default(), status: Arc::new(Mutex::new(200)) };
    async fn hook(State(s): State<Receiver>, headers: HeaderMap, body: String) -> axum::http::StatusCode {
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        s.calls.lock().unwrap().push(Hook {
            delivery: h("x-privca-delivery").unwrap_or_default(),
            timestamp: h("x-privca-timestamp"),
            signature: h("x-privca-signature"),
            body,
        });
        axum::http::StatusCode::from_u16(*s.status.lock().unwrap()).unwrap()
    }
    let app = Router::new().route("/hook", post(hook)).with_state(state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, state)
}

pub(crate) async fn issue(t: &TestCa, name: &str, renews: Option<&str>) -> (String, String, i64) {
    let csr = t.csr("ec:P-256", &format!("/CN={name}"), Some(&format!("DNS:{name}")));
    let mut req = IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap();
    req.owner = Some("web-team".into());
    req.renews = renews.map(str::to_owned);
    match t.ca.issue(req).await.unwrap() {
        IssueOutcome::Issued(c) => (c.record.serial, c.record.fingerprint_sha256, c.record.not_after),
        IssueOutcome::Pending(_) => panic!("pending"),
    }
}

pub(crate) async fn set_tier(ledger: &Ledger, fingerprint: &str, tier: Tier) {
    let change = InventoryChange { tier: Some(tier), ..Default::default() };
    let event = AuditEvent::new(AuditKind::InventoryChanged, "cli:test");
    ledger.set_inventory(fingerprint, &change, &event).await.unwrap();
}

pub(crate) async fn add_owner(ledger: &Ledger, name: &str, email: &str, webhook: Option<String>) {
    let mut o = Owner::new(name, "team");
    o.email = Some(email.into());
    o.webhook = webhook;
    ledger.put_owner(&o, &AuditEvent::new(AuditKind::OwnerChanged, "cli:test")).await.unwrap();
}

/// (event, certificate name, channel, recipient) of every message delivered so far.
fn delivered(mails: &[Mail], hooks: &[Hook]) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for m in mails {
        let subject = m.header("Subject").unwrap_or_default();
        let event = if subject.contains("ESCALATION") { "escalation" } else { "expiry" };
        let name = subject.split_whitespace().find(|w| w.ends_with(".test")).unwrap_or("").trim_end_matches(',');
        for r in &m.rcpt {
            out.push((event.into(), name.into(), "email".into(), r.clone()));
        }
    }
    for h in hooks {
        let v: serde_json::Value = serde_json::from_str(&h.body).unwrap();
        let subject = v["subject"].as_str().unwrap_or("");
        let name = subject.split_whitespace().find(|w| w.ends_with(".test")).unwrap_or("").trim_end_matches(',');
        out.push((v["event"].as_str().unwrap_or("").into(), name.into(), "webhook".into(), "hook".into()));
    }
    out.sort();
    out
}

async fn exactly_once_escalation_and_renewal_chains(db: Db) {
    let (smtp_port, mails) = smtp_sink().await;
    let (hook_port, receiver) = webhook_receiver().await;
    let secret = "hook-secret-for-tests";
    let extra = format!(
        "[clm]\nsecurity_lead = \"security-lead\"\nwebhook = {{ secret = {{ env = \"PRIVCA_TEST_HOOK_SECRET\" }} }}\n\
         [clm.smtp]\nurl = \"smtp://127.0.0.1:{smtp_port}\"\n"
    );
    std::env::set_var("PRIVCA_TEST_HOOK_SECRET", secret);
    let Some(t) = TestCa::with_config(db, &extra).await else { return };
    let ledger = t.app.ledger.clone();
    let config = t.app.config.clm.clone();
    add_owner(&ledger, "web-team", "web@example.test", Some(format!("http://127.0.0.1:{hook_port}/hook"))).await;
    add_owner(&ledger, "security-lead", "ciso@example.test", None).await;

    // A: customer-facing, never renewed. B: internal. C → C2 renewed (renews_serial); D → D2
    // renewed with the same names, but an endpoint still serves D.
    let (_, a, not_after) = issue(&t, "a.example.test", None).await;
    let (_, b, _) = issue(&t, "b.example.test", None).await;
    let (c_serial, c, _) = issue(&t, "c.example.test", None).await;
    let (_, c2, _) = issue(&t, "c2.example.test", Some(&c_serial)).await;
    let (_, d, _) = issue(&t, "d.example.test", None).await;
    // A successor by names is one issued later (notBefore has one-second resolution).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, d2, _) = issue(&t, "d.example.test", None).await;
    for fp in [&a, &c, &d] {
        set_tier(&ledger, fp, Tier::customer_facing()).await;
    }
    let mut raw = t.raw().await;
    sqlx::query(
        "INSERT INTO endpoints (host, port, sni, fingerprint_sha256, chain, findings, first_seen, last_seen) \
         VALUES ('127.0.0.1', 443, 'd.example.test', $1, '[]', '[]', 1, 1)",
    )
    .bind(&d)
    .execute(&mut raw)
    .await
    .unwrap();
    let templates = Templates::default();

    // 29 days before expiry: decided, then the process "crashes" before delivering.
    let now = not_after - 29 * DAY;
    let run = clm::run_policy(&ledger, &config, now).await.unwrap();
    assert_eq!(run.evaluated, 6, "{run:?}");
    assert_eq!(run.superseded, 1, "C only: D is still served ({run:?})");
    ledger.close().await;

    // Restart: a new ledger handle on the same database decides nothing new, then delivers.
    let url = if db == Db::Sqlite { format!("{}?mode=rwc", t.db_url) } else { t.db_url.clone() };
    let ledger = Ledger::connect(&url, 4).await.unwrap();
    let again = clm::run_policy(&ledger, &config, now + 3600).await.unwrap();
    assert_eq!(again.queued, 0, "{again:?}");
    let notifier = Notifier::new(&config).unwrap();
    let sent = clm::deliver(&ledger, &notifier, &config, &templates, now + 3600).await.unwrap();
    assert_eq!((sent.retried, sent.dead), (0, 0), "{sent:?}");
    let got = delivered(&mails.lock().unwrap(), &receiver.calls.lock().unwrap());
    let want = |e: &str, n: &str, ch: &str, r: &str| (e.to_owned(), n.to_owned(), ch.to_owned(), r.to_owned());
    let mut expected = vec![
        want("expiry", "a.example.test", "email", "web@example.test"),
        want("expiry", "a.example.test", "webhook", "hook"),
        want("escalation", "a.example.test", "email", "ciso@example.test"),
        want("expiry", "b.example.test", "email", "web@example.test"),
        want("expiry", "b.example.test", "webhook", "hook"),
        want("expiry", "c2.example.test", "email", "web@example.test"),
        want("expiry", "c2.example.test", "webhook", "hook"),
        want("expiry", "d.example.test", "email", "web@example.test"),
        want("expiry", "d.example.test", "webhook", "hook"),
        want("escalation", "d.example.test", "email", "ciso@example.test"),
        want("expiry", "d.example.test", "email", "web@example.test"),
        want("expiry", "d.example.test", "webhook", "hook"),
    ];
    expected.sort();
    assert_eq!(got, expected, "D2 (internal, same names) is notified too; C is superseded and silent");
    assert_eq!(sent.sent as usize, expected.len());

    // Mail headers: a stable Message-ID per decision; the 30-day notice text.
    let first = mails
        .lock()
        .unwrap()
        .iter()
        .find(|m| m.rcpt == ["ciso@example.test"] && m.header("Subject").unwrap_or_default().contains("a.example.test"))
        .cloned()
        .unwrap();
    assert!(first.header("Message-ID").is_some_and(|id| id.ends_with("@privca>")), "{}", first.data);
    assert!(first.header("Subject").unwrap().starts_with("[privca] ESCALATION: a.example.test (customer-facing)"));
    // Webhooks carry a valid HMAC-SHA256 signature over "<timestamp>.<body>".
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    for h in receiver.calls.lock().unwrap().iter() {
        let ts = h.timestamp.clone().unwrap();
        assert_eq!(
            h.signature.as_deref(),
            Some(format!("sha256={}", clm::notify::signature(&key, &ts, &h.body)).as_str())
        );
        assert_eq!(h.delivery.len(), 32);
    }

    // Still at 29 days, another run and delivery send nothing more.
    let quiet = clm::run_policy(&ledger, &config, now + 7200).await.unwrap();
    assert_eq!((quiet.evaluated, quiet.queued), (0, 0), "nothing is due before the 15-day mark: {quiet:?}");
    assert_eq!(clm::deliver(&ledger, &notifier, &config, &templates, now + 7200).await.unwrap().sent, 0);

    // At 14 days: the 15-day notices, no second escalation.
    let later = not_after - 14 * DAY;
    clm::run_policy(&ledger, &config, later).await.unwrap();
    let before = mails.lock().unwrap().len();
    clm::deliver(&ledger, &notifier, &config, &templates, later).await.unwrap();
    let new: Vec<Mail> = mails.lock().unwrap()[before..].to_vec();
    assert!(new.iter().all(|m| !m.header("Subject").unwrap().contains("ESCALATION")), "{new:?}");
    assert_eq!(new.len(), 5, "15-day emails for a, b, c2, d and d2 — {new:?}");

    // The inventory shows C superseded by C2 and A as expiring.
    let first_threshold = clm::first_threshold(&config);
    let superseded = ledger
        .inventory(
            &InventoryFilter { status: Some(InventoryStatus::Superseded), limit: 10, ..Default::default() },
            &first_threshold,
        )
        .await
        .unwrap();
    // D is superseded too (by D2): an endpoint serving it keeps its notices coming, not its status.
    let serial = |fp: String| {
        let ledger = ledger.clone();
        async move { ledger.certificate_by_fingerprint(&fp).await.unwrap().map(|r| r.serial) }
    };
    let mut got: Vec<(String, Option<String>)> =
        superseded.iter().map(|i| (i.fingerprint.clone(), i.superseded_by.clone())).collect();
    got.sort();
    let mut want = vec![(c.clone(), serial(c2.clone()).await), (d.clone(), serial(d2.clone()).await)];
    want.sort();
    assert_eq!(got, want);
    let expiring = ledger
        .inventory(&InventoryFilter { expiring_within: Some(0), ..Default::default() }, &first_threshold)
        .await
        .unwrap();
    assert!(expiring.is_empty(), "nothing has expired yet");
    let mine = ledger
        .inventory(
            &InventoryFilter { search: Some("B.EXAMPLE".into()), limit: 10, ..Default::default() },
            &first_threshold,
        )
        .await
        .unwrap();
    assert_eq!(mine.iter().map(|i| i.fingerprint.as_str()).collect::<Vec<_>>(), [b.as_str()]);
    assert_eq!(
        (mine[0].source.as_str(), mine[0].renewal_method.as_str(), mine[0].owner.as_str()),
        ("cli", "manual", "web-team")
    );
    // The metrics' counts: six certificates, two superseded, the rest by tier.
    let stats = ledger.inventory_stats(&first_threshold).await.unwrap();
    let total: i64 = stats.counts.iter().map(|c| c.3).sum();
    assert_eq!(total, 6, "{stats:?}");
    let superseded: i64 = stats.counts.iter().filter(|c| c.0 == "superseded").map(|c| c.3).sum();
    assert_eq!(superseded, 2, "{stats:?}");
    let tiers: Vec<&str> = stats.earliest_expiry.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tiers, ["customer-facing", "internal"], "{stats:?}");
    ledger.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_exactly_once_sqlite() {
    exactly_once_escalation_and_renewal_chains(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_exactly_once_postgres() {
    exactly_once_escalation_and_renewal_chains(Db::Postgres).await;
}

async fn failing_webhook_is_retried_then_dead_lettered(db: Db) {
    let (hook_port, receiver) = webhook_receiver().await;
    *receiver.status.lock().unwrap() = 500;
    let extra = "[clm.delivery]\nmax_attempts = 2\nbackoff = \"1m\"\n";
    let Some(t) = TestCa::with_config(db, extra).await else { return };
    let ledger = t.app.ledger.clone();
    let config = t.app.config.clm.clone();
    let mut o = Owner::new("web-team", "team");
    o.webhook = Some(format!("http://127.0.0.1:{hook_port}/hook"));
    o.webhook_format = "slack".into();
    ledger.put_owner(&o, &AuditEvent::new(AuditKind::OwnerChanged, "cli:test")).await.unwrap();
    let (_, _, not_after) = issue(&t, "e.example.test", None).await;
    let now = not_after - 20 * DAY;
    let run = clm::run_policy(&ledger, &config, now).await.unwrap();
    assert_eq!(run.queued, 1, "one Slack message: {run:?}");
    let notifier = Notifier::new(&config).unwrap();
    let first = clm::deliver(&ledger, &notifier, &config, &Templates::default(), now).await.unwrap();
    assert_eq!((first.sent, first.retried, first.dead), (0, 1, 0));
    // Not due again before the backoff.
    assert_eq!(clm::deliver(&ledger, &notifier, &config, &Templates::default(), now + 30).await.unwrap().retried, 0);
    let second = clm::deliver(&ledger, &notifier, &config, &Templates::default(), now + 61).await.unwrap();
    assert_eq!((second.sent, second.dead), (0, 1));
    let dead = ledger.outbox(Some("dead"), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].last_error.as_deref().unwrap_or("").contains("500"), "{:?}", dead[0].last_error);
    assert_eq!(dead[0].channel, "slack");
    let calls = receiver.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    let v: serde_json::Value = serde_json::from_str(&calls[0].body).unwrap();
    assert!(v["text"].as_str().unwrap().starts_with("*[privca] e.example.test expires in 20 days"), "{v}");
    assert!(calls[0].signature.is_none(), "Slack payloads are not signed");

    // The operator requeues it; the receiver is back.
    *receiver.status.lock().unwrap() = 200;
    let requeued = ledger.outbox_retry(None, &AuditEvent::new(AuditKind::ClmOutboxRetried, "cli:test")).await.unwrap();
    assert_eq!(requeued, 1);
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let third = clm::deliver(&ledger, &notifier, &config, &Templates::default(), wall).await.unwrap();
    assert_eq!(third.sent, 1);
    let counts: HashMap<String, i64> =
        ledger.outbox_counts().await.unwrap().into_iter().map(|(ch, st, n)| (format!("{ch}/{st}"), n)).collect();
    assert_eq!(counts.get("slack/sent"), Some(&1), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_dead_letter_sqlite() {
    failing_webhook_is_retried_then_dead_lettered(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_dead_letter_postgres() {
    failing_webhook_is_retried_then_dead_lettered(Db::Postgres).await;
}

async fn audit_events_become_notices(db: Db) {
    let extra = "[clm]\nevents = [\"issued\", \"revoked\", \"approval-pending\"]\n";
    let Some(t) = TestCa::with_config(db, extra).await else { return };
    let ledger = t.app.ledger.clone();
    add_owner(&ledger, "web-team", "web@example.test", None).await;
    add_owner(&ledger, "security-lead", "ciso@example.test", None).await;
    let templates = Templates::default();
    let now = 1_800_000_000;
    // The first run starts at the end of the log: history is not replayed.
    issue(&t, "old.example.test", None).await;
    assert_eq!(clm::events::run(&ledger, &t.app.config, &templates, now).await.unwrap(), 0);

    let (serial, _, _) = issue(&t, "f.example.test", None).await;
    t.ca.revoke(&serial, privca::ca::RevocationReason::KeyCompromise, None, &Requester::cli()).await.unwrap();
    let csr = t.csr("ec:P-256", "/CN=g.example.test", Some("DNS:g.example.test"));
    let req = IssuanceRequest::from_csr(&csr, "tls-server-gated", Requester::cli()).unwrap();
    assert!(matches!(t.ca.issue(req).await.unwrap(), IssueOutcome::Pending(_)));
    assert_eq!(clm::events::run(&ledger, &t.app.config, &templates, now).await.unwrap(), 3);
    // Once only.
    assert_eq!(clm::events::run(&ledger, &t.app.config, &templates, now).await.unwrap(), 0);
    let mut got: Vec<(String, String, String)> = ledger
        .outbox(Some("pending"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.event, m.recipient, m.subject))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "approval-pending".into(),
                "ciso@example.test".into(),
                "[privca] approval needed: g.example.test (profile tls-server-gated)".into()
            ),
            ("issued".into(), "web@example.test".into(), "[privca] issued: f.example.test".into()),
            ("revoked".into(), "web@example.test".into(), "[privca] revoked: f.example.test".into()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_events_sqlite() {
    audit_events_become_notices(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_events_postgres() {
    audit_events_become_notices(Db::Postgres).await;
}

async fn daily_digest_once_a_day(db: Db) {
    let Some(t) = TestCa::with_config(db, "[clm]\nevents = [\"digest\"]\n").await else { return };
    let ledger = t.app.ledger.clone();
    add_owner(&ledger, "web-team", "web@example.test", None).await;
    let (a, _, not_after) = issue(&t, "h.example.test", None).await;
    let (b, _, _) = issue(&t, "i.example.test", None).await;
    let config = t.app.config.clm.clone();
    // Nothing to tell while every certificate is far from expiry.
    assert_eq!(clm::digest::run(&ledger, &config, not_after - 80 * DAY).await.unwrap(), 0);
    // The digest lists what the inventory calls expiring now (wall clock, the tier's first
    // threshold): the 90-day certificates are inside customer-facing's 90 days, not internal's 60.
    for fp in ledger
        .inventory(&InventoryFilter { limit: 10, ..Default::default() }, &clm::first_threshold(&config))
        .await
        .unwrap()
    {
        set_tier(&ledger, &fp.fingerprint, Tier::customer_facing()).await;
    }
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert_eq!(clm::digest::run(&ledger, &config, wall).await.unwrap(), 1);
    assert_eq!(clm::digest::run(&ledger, &config, wall + 60).await.unwrap(), 0, "once a day");
    let pending = ledger.outbox(Some("pending"), 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    let m = &pending[0];
    assert_eq!((m.event.as_str(), m.recipient.as_str()), ("digest", "web@example.test"));
    assert!(m.body.contains(&a) && m.body.contains(&b), "{}", m.body);
    assert_eq!(clm::digest::run(&ledger, &config, wall + 86_400).await.unwrap(), 1, "the next day");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_digest_sqlite() {
    daily_digest_once_a_day(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_digest_postgres() {
    daily_digest_once_a_day(Db::Postgres).await;
}

async fn superseded_certificates_are_revoked_once_replaced(db: Db) {
    let extra = "[clm.tiers.internal]\nrevoke_superseded_after = 7\n";
    let Some(t) = TestCa::with_config(db, extra).await else { return };
    let ledger = t.app.ledger.clone();
    let config = t.app.config.clm.clone();
    let (old, _, not_after) = issue(&t, "j.example.test", None).await;
    issue(&t, "j2.example.test", Some(&old)).await;
    let (served, served_fp, _) = issue(&t, "k.example.test", None).await;
    issue(&t, "k2.example.test", Some(&served)).await;
    clm::run_policy(&ledger, &config, not_after - 20 * DAY).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    // Both successors passed a deployment check ten days ago; K is still served somewhere.
    let mut raw = t.raw().await;
    for predecessor in [&old, &served] {
        sqlx::query(
            "INSERT INTO deployment_checks (fingerprint, serial, predecessor_serial, host, port, sni, checked_at, ok, \
             served_fingerprint, failures) VALUES ('fp', 's', $1, '127.0.0.1', 443, '', $2, 1, 'fp', '[]')",
        )
        .bind(predecessor)
        .bind(now - 10 * DAY)
        .execute(&mut raw)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO endpoints (host, port, sni, fingerprint_sha256, chain, findings, first_seen, last_seen) \
         VALUES ('127.0.0.2', 443, '', $1, '[]', '[]', 1, 1)",
    )
    .bind(&served_fp)
    .execute(&mut raw)
    .await
    .unwrap();
    // Not yet: the check is ten days old, the tier waits fourteen.
    let mut strict = config.clone();
    if let Some(p) = strict.tiers.get_mut(&Tier::internal()) {
        p.revoke_superseded_after = Some(14);
    }
    assert_eq!(clm::retire::run(&t.ca, &strict, now).await.unwrap(), 0);
    assert_eq!(clm::retire::run(&t.ca, &config, now).await.unwrap(), 1);
    let rec = ledger.certificate(&old).await.unwrap().unwrap();
    assert_eq!(rec.revocation_reason.as_deref(), Some("superseded"));
    assert!(ledger.certificate(&served).await.unwrap().unwrap().revocation_reason.is_none(), "still served");
    assert_eq!(clm::retire::run(&t.ca, &config, now).await.unwrap(), 0, "once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_retire_sqlite() {
    superseded_certificates_are_revoked_once_replaced(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_retire_postgres() {
    superseded_certificates_are_revoked_once_replaced(Db::Postgres).await;
}
