//! Renewal-failed notices on both databases: a certificate flagged for early renewal and not
//! renewed inside its tier's window, and a denied request that would have replaced a live
//! certificate, each tell the owner once per channel, across repeated runs; and
//! `inventory flag-renewal --query` flags the live certificates `inventory list`'s filters
//! select, with one audit row; a tier configured by name drives the inventory status and the
//! notices of its certificates.

use privca::{
    ca::{IssuanceRequest, IssueOutcome, Requester},
    clm::{self, cli::InventoryCommand, templates::Templates},
    ledger::{InventoryFilter, InventoryStatus, Ledger, OutboxMessage},
    policy::Tier,
};

use crate::{
    clm::{add_owner, issue, DAY},
    harness::{Db, TestCa},
};

fn wall() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn failed(ledger: &Ledger) -> Vec<OutboxMessage> {
    let mut all = ledger.outbox(None, 100).await.unwrap();
    all.retain(|m| m.event == "renewal-failed");
    all
}

async fn renewal_failures_are_told_once(db: Db) {
    let extra = "[clm.tiers.internal]\nrenew_flagged_within = 5\n";
    let Some(t) = TestCa::with_config(db, extra).await else { return };
    let ledger = t.app.ledger.clone();
    let config = t.app.config.clm.clone();
    let templates = Templates::default();
    add_owner(&ledger, "web-team", "web@example.test", None).await;
    // The audit watermark starts at the end of the log.
    clm::events::run(&ledger, &t.app.config, &templates, wall()).await.unwrap();

    // Flagged far from expiry (outside the notice window), then never renewed.
    let (serial, fp, _) = issue(&t, "flagged.example.test", None).await;
    let (renewed, _, _) = issue(&t, "renewed.example.test", None).await;
    for s in [&serial, &renewed] {
        assert!(t.ca.flag_renew_early(s, "CA change", &Requester::cli()).await.unwrap());
    }
    issue(&t, "renewed2.example.test", Some(&renewed)).await;
    let now = wall();
    let run = clm::run_policy(&ledger, &config, now + 60).await.unwrap();
    assert!(run.queued >= 1, "the renewal request is told: {run:?}");
    assert!(failed(&ledger).await.is_empty());
    // Four days on: still inside the tier's five.
    clm::run_policy(&ledger, &config, now + 4 * DAY).await.unwrap();
    assert!(failed(&ledger).await.is_empty());
    for later in [now + 5 * DAY + 120, now + 6 * DAY, now + 30 * DAY] {
        clm::run_policy(&ledger, &config, later).await.unwrap();
    }
    let mut told = failed(&ledger).await;
    assert_eq!(told.len(), 1, "once, and not for the renewed one: {told:?}");
    // The outbox holds the decision; the text is rendered when it is sent.
    assert!(told[0].body.is_empty());
    clm::render_policy_notices(&ledger, &config, &templates, &mut told, now + 30 * DAY).await.unwrap();
    let m = &told[0];
    assert_eq!((m.fingerprint.as_deref(), m.channel.as_str()), (Some(fp.as_str()), "email"));
    assert_eq!(m.recipient, "web@example.test");
    assert_eq!(m.subject.split(" (").next(), Some("[privca] renewal failed: flagged.example.test"));
    assert!(m.body.contains("is still not renewed 5 days later"), "{}", m.body);

    // A denied request for the names of a live certificate: its renewal failed.
    let (_, denied_fp, _) = issue(&t, "gated.example.test", None).await;
    let csr = t.csr("ec:P-256", "/CN=gated.example.test", Some("DNS:gated.example.test"));
    let mut req = IssuanceRequest::from_csr(&csr, "tls-server-gated", Requester::cli()).unwrap();
    req.owner = Some("web-team".into());
    let IssueOutcome::Pending(id) = t.ca.issue(req).await.unwrap() else { panic!("not queued for approval") };
    t.ca.deny(id, &Requester::cli(), "wrong team").await.unwrap();
    // A denied request for new names is no renewal.
    let csr = t.csr("ec:P-256", "/CN=new.example.test", Some("DNS:new.example.test"));
    let req = IssuanceRequest::from_csr(&csr, "tls-server-gated", Requester::cli()).unwrap();
    let IssueOutcome::Pending(other) = t.ca.issue(req).await.unwrap() else { panic!("not queued for approval") };
    t.ca.deny(other, &Requester::cli(), "no").await.unwrap();
    clm::events::run(&ledger, &t.app.config, &templates, wall()).await.unwrap();
    clm::events::run(&ledger, &t.app.config, &templates, wall()).await.unwrap();
    let told = failed(&ledger).await;
    let denied: Vec<&OutboxMessage> = told.iter().filter(|m| m.fingerprint.as_deref() == Some(&denied_fp)).collect();
    assert_eq!(told.len(), 2, "{told:?}");
    assert_eq!(denied.len(), 1, "{told:?}");
    assert!(denied[0].body.contains(&format!("(approval {id}) was denied by cli:")), "{}", denied[0].body);
    assert!(denied[0].body.contains("wrong team"), "{}", denied[0].body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_renewal_failed_sqlite() {
    renewal_failures_are_told_once(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_renewal_failed_postgres() {
    renewal_failures_are_told_once(Db::Postgres).await;
}

async fn flag_renewal_by_query(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let (q1, _, _) = issue(&t, "q1.example.test", None).await;
    let (q2, _, _) = issue(&t, "q2.example.test", None).await;
    let (q3, _, _) = issue(&t, "q3.example.test", None).await;
    let (r, _, _) = issue(&t, "r.example.test", None).await;
    t.ca.revoke(&q3, privca::ca::RevocationReason::KeyCompromise, None, &Requester::cli()).await.unwrap();
    let flag = |query: &str| InventoryCommand::FlagRenewal {
        issuer: None,
        query: Some(query.into()),
        all: false,
        reason: "algorithm change".into(),
    };
    clm::cli::inventory(&t.app, flag("owner=web-team search=Q tier=internal")).await.unwrap();
    let flagged = |s: String| {
        let ledger = t.app.ledger.clone();
        async move { ledger.certificate(&s).await.unwrap().unwrap().renew_early_at.is_some() }
    };
    assert!(flagged(q1.clone()).await && flagged(q2.clone()).await);
    assert!(!flagged(q3.clone()).await, "revoked: not live");
    assert!(!flagged(r.clone()).await, "not selected");
    // Audited, with the query.
    let mut raw = t.raw().await;
    let details: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit_events WHERE event = 'renew-early-flagged' ORDER BY id")
            .fetch_all(&mut raw)
            .await
            .unwrap();
    assert_eq!(details.len(), 1);
    let d: serde_json::Value = serde_json::from_str(&details[0]).unwrap();
    assert_eq!(d["query"], "owner=web-team search=Q tier=internal");
    assert_eq!((d["flagged"].as_i64(), d["selected"].as_i64()), (Some(2), Some(2)));
    // Bad terms are refused before anything is written.
    let e = clm::cli::inventory(&t.app, flag("colour=red")).await.unwrap_err().to_string();
    assert!(e.contains("colour=red"), "{e}");
    let e = clm::cli::inventory(&t.app, flag("tier=gold")).await.unwrap_err().to_string();
    assert!(e.contains("tier `gold`"), "{e}");
    clm::cli::inventory(&t.app, flag("search=r.example")).await.unwrap();
    assert!(flagged(r).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_flag_renewal_query_sqlite() {
    flag_renewal_by_query(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_flag_renewal_query_postgres() {
    flag_renewal_by_query(Db::Postgres).await;
}

async fn configured_tiers(db: Db) {
    let extra = "[clm.tiers.payments]\nthresholds = [100, 20]\nchannels = [\"email\"]\n";
    let Some(t) = TestCa::with_config(db, extra).await else { return };
    let ledger = t.app.ledger.clone();
    let config = t.app.config.clm.clone();
    add_owner(&ledger, "web-team", "web@example.test", Some("http://127.0.0.1:9/hook".into())).await;
    let (serial, fp, _) = issue(&t, "pay.example.test", None).await;
    let set = |tier: &str| InventoryCommand::Set {
        id: serial.clone(),
        owner: None,
        tier: Some(tier.into()),
        application: None,
        renewal_method: None,
        tags: None,
    };
    let e = clm::cli::inventory(&t.app, set("gold")).await.unwrap_err().to_string();
    assert!(e.contains("tier `gold`: use customer-facing, internal, network-critical, payments"), "{e}");
    clm::cli::inventory(&t.app, set("payments")).await.unwrap();
    // Its first threshold (100 days) is what "expiring" means for it.
    let payments = Tier::parse("payments").unwrap();
    let filter = InventoryFilter { tier: Some(payments.clone()), limit: 10, ..Default::default() };
    let items = ledger.inventory(&filter, &clm::first_threshold(&config)).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!((items[0].fingerprint.as_str(), items[0].status), (fp.as_str(), InventoryStatus::Expiring));
    assert_eq!(items[0].tier, payments);
    // The policy notifies at the tier's threshold, on the tier's channels.
    let run = clm::run_policy(&ledger, &config, wall()).await.unwrap();
    assert_eq!(run.queued, 1, "{run:?}");
    let mut pending = ledger.outbox(Some("pending"), 10).await.unwrap();
    clm::render_policy_notices(&ledger, &config, &Templates::default(), &mut pending, wall()).await.unwrap();
    let m = &pending[0];
    assert_eq!((m.event.as_str(), m.channel.as_str()), ("expiry", "email"));
    assert!(m.body.contains("the 100-day notice of tier payments"), "{}", m.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_configured_tiers_sqlite() {
    configured_tiers(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clm_configured_tiers_postgres() {
    configured_tiers(Db::Postgres).await;
}
