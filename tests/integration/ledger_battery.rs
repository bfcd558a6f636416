//! The ledger battery: the same assertions against SQLite and PostgreSQL (hickory's store
//! battery idea). Each function runs twice, once per database.

use privca::{
    audit::{self, AuditEvent, AuditKind},
    ca::{IssuanceRequest, IssueOutcome, Requester, RevocationReason},
    error::ErrorKind,
    ledger::{
        ApprovalStatus, CertFilter, CertStatus, CrlKind, LedgerError, NewApproval, NonceUse, Reservation,
        RevokeOutcome, NONCES_PER_STATEMENT,
    },
};
use privca_acme::backend::{Account, AccountStatus, Authz, AuthzStatus, Identifier, Order, OrderStatus, Redeemed};
use sqlx::Row;

use crate::harness::{Db, TestCa};

use crate::harness::both_databases as battery;

battery!(
    issue_commits_one_row,
    duplicate_serial_conflicts,
    aborted_reservation_keeps_serial,
    a_transaction_gets_one_certificate,
    a_transaction_racing_itself_gets_one_reservation,
    an_interrupted_crl_is_aborted,
    revoke_is_idempotent,
    approval_lifecycle,
    acme_order_moves_with_the_issuance,
    a_commit_needs_an_open_reservation,
    audit_edit_is_detected,
    audit_deleting_newest_rows_is_detected,
    audit_recomputed_chain_is_detected,
    audit_seal_links_more_rows_than_one_statement,
    audit_verifies_while_another_process_seals,
    connections_dropped_by_the_database_are_replaced,
    nonce_redemption_sees_account_changes,
    an_order_and_its_authorizations_are_one_unit,
    acme_secrets_are_sealed_by_the_token,
);

async fn issue(t: &TestCa, profile: &str) -> privca::ledger::CertRecord {
    let csr = t.csr("ec:P-256", "/CN=battery.example.test", Some("DNS:battery.example.test"));
    let req = IssuanceRequest::from_csr(&csr, profile, Requester::cli()).unwrap();
    match t.ca.issue(req).await.unwrap() {
        IssueOutcome::Issued(c) => c.record,
        IssueOutcome::Pending(_) => panic!("unexpected approval"),
    }
}

async fn issue_commits_one_row(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let before = t.app.ledger.count_certificates().await.unwrap();
    let rec = issue(&t, "tls-server").await;
    assert_eq!(t.app.ledger.count_certificates().await.unwrap(), before + 1);
    let stored = t.app.ledger.certificate(&rec.serial).await.unwrap().unwrap();
    assert_eq!(stored.der, rec.der);
    assert_eq!(stored.sans, vec!["dns:battery.example.test"]);
    assert_eq!(stored.status, CertStatus::Valid);
    assert_eq!(stored.owner, "unassigned");
    assert_eq!(t.app.ledger.reservation_state(&rec.serial).await.unwrap().as_deref(), Some("committed"));
    let mine = CertFilter { owner: Some("unassigned".into()), ..Default::default() };
    assert!(t.app.ledger.list_certificates(&mine).await.unwrap().iter().any(|c| c.serial == rec.serial));
    let other = CertFilter { owner: Some("nobody".into()), ..Default::default() };
    assert!(t.app.ledger.list_certificates(&other).await.unwrap().is_empty());
    let soon = CertFilter { expiring_before: Some(privca_now() + 100 * 86_400), ..Default::default() };
    assert!(t.app.ledger.list_certificates(&soon).await.unwrap().iter().any(|c| c.serial == rec.serial));
    let very_soon = CertFilter { expiring_before: Some(privca_now() + 86_400), ..Default::default() };
    assert!(!t.app.ledger.list_certificates(&very_soon).await.unwrap().iter().any(|c| c.serial == rec.serial));
}

fn privca_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn reservation(serial: &str) -> Reservation {
    Reservation {
        serial: serial.into(),
        issuer_id: "ec".into(),
        profile: "tls-server".into(),
        requester: "cli:test".into(),
        tbs_sha256: "00".into(),
        acme_order: None,
        one_per_requester: false,
    }
}

async fn duplicate_serial_conflicts(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let ev = AuditEvent::new(AuditKind::Reserve, "cli:test").serial("0a0b");
    t.app.ledger.reserve_issuance(&reservation("0a0b"), &ev).await.unwrap();
    let again = t.app.ledger.reserve_issuance(&reservation("0a0b"), &ev).await;
    assert!(matches!(again, Err(LedgerError::Conflict(_))), "{again:?}");
}

async fn aborted_reservation_keeps_serial(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let before = t.app.ledger.count_certificates().await.unwrap();
    let ev = AuditEvent::new(AuditKind::Reserve, "cli:test").serial("0c0d");
    t.app.ledger.reserve_issuance(&reservation("0c0d"), &ev).await.unwrap();
    let failed = AuditEvent::new(AuditKind::Failed, "cli:test").serial("0c0d");
    t.app.ledger.abort_reservation("0c0d", "HSM down", &failed, None).await.unwrap();
    assert_eq!(t.app.ledger.reservation_state("0c0d").await.unwrap().as_deref(), Some("aborted"));
    assert_eq!(t.app.ledger.count_certificates().await.unwrap(), before);
    let again = t.app.ledger.reserve_issuance(&reservation("0c0d"), &ev).await;
    assert!(matches!(again, Err(LedgerError::Conflict(_))), "a serial is never reused");
}

/// `one_per_requester` (SCEP transactions): a second reservation is refused while the
/// requester has a committed one, one in flight (for ten minutes) or an approval request, and
/// writes nothing; an aborted one does not count, and reservations without the flag are not
/// limited.
async fn a_transaction_gets_one_certificate(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let csr = t.csr("ec:P-256", "/CN=tx.example.test", Some("DNS:tx.example.test"));
    let scep = |tx: &str| Requester { protocol: "scep", identity: format!("lab/{tx}") };
    let request = |tx: &str| IssuanceRequest {
        one_per_requester: true,
        ..IssuanceRequest::from_csr(&csr, "tls-server", scep(tx)).unwrap()
    };
    let IssueOutcome::Issued(first) = t.ca.issue(request("tx1")).await.unwrap() else { panic!("approval") };
    let certificates = t.app.ledger.count_certificates().await.unwrap();
    let audit_rows = || async {
        let n: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM audit_events").fetch_one(&mut t.raw().await).await.unwrap().get("n");
        n
    };
    let audited = audit_rows().await;
    let again = t.ca.issue(request("tx1")).await.expect_err("a second certificate for tx1");
    assert_eq!(again.kind(), ErrorKind::Conflict, "{again}");
    assert_eq!(t.app.ledger.count_certificates().await.unwrap(), certificates);
    assert_eq!(audit_rows().await, audited, "the refused reservation wrote nothing");
    match t.app.ledger.transaction_record("scep:lab/tx1").await.unwrap() {
        Some(privca::ledger::TransactionRecord::Certificate(c)) => assert_eq!(c.serial, first.record.serial),
        other => panic!("{other:?}"),
    }
    assert!(matches!(t.ca.issue(request("tx2")).await.unwrap(), IssueOutcome::Issued(_)), "another transaction");

    let once = |serial: &str, tx: &str| Reservation {
        requester: format!("scep:lab/{tx}"),
        one_per_requester: true,
        ..reservation(serial)
    };
    let ev = AuditEvent::new(AuditKind::Reserve, "scep:lab/tx3");
    t.app.ledger.reserve_issuance(&once("0e01", "tx3"), &ev).await.unwrap();
    let failed = AuditEvent::new(AuditKind::Failed, "scep:lab/tx3");
    t.app.ledger.abort_reservation("0e01", "HSM down", &failed, None).await.unwrap();
    t.app.ledger.reserve_issuance(&once("0e02", "tx3"), &ev).await.expect("an aborted reservation does not count");
    let in_flight = t.app.ledger.reserve_issuance(&once("0e05", "tx3"), &ev).await;
    assert!(matches!(in_flight, Err(LedgerError::Conflict(_))), "0e02 is in flight: {in_flight:?}");
    sqlx::query("UPDATE reservations SET created_at = created_at - 601 WHERE serial = '0e02'")
        .execute(&mut t.raw().await)
        .await
        .unwrap();
    t.app.ledger.reserve_issuance(&once("0e06", "tx3"), &ev).await.expect("an interrupted reservation does not count");
    let unlimited = Reservation { requester: "scep:lab/tx1".into(), ..reservation("0e03") };
    t.app.ledger.reserve_issuance(&unlimited, &ev).await.expect("without the flag");

    let approval = NewApproval {
        profile: "tls-server".into(),
        requester: "scep:lab/tx4".into(),
        owner: None,
        subject: "CN=tx4".into(),
        sans: Vec::new(),
        csr_der: vec![1],
        acme_order: None,
        approvals_required: 1,
    };
    t.app
        .ledger
        .create_approval(&approval, &AuditEvent::new(AuditKind::ApprovalRequested, "scep:lab/tx4"))
        .await
        .unwrap();
    let refused = t.app.ledger.reserve_issuance(&once("0e04", "tx4"), &ev).await;
    assert!(matches!(refused, Err(LedgerError::Conflict(_))), "an approval request counts: {refused:?}");
    assert_eq!(t.app.ledger.reservation_state("0e04").await.unwrap(), None);
}

/// Two copies of one SCEP transaction reserved at the same moment on two connections: the
/// unique index lets exactly one through, every time; interrupted reservations are aborted by
/// the cleanup and the transaction can then be retried.
async fn a_transaction_racing_itself_gets_one_reservation(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let ev = AuditEvent::new(AuditKind::Reserve, "scep:lab/race");
    for i in 0..40 {
        let r = |n: u32| Reservation {
            requester: format!("scep:lab/race{i}"),
            one_per_requester: true,
            ..reservation(&format!("0f{i:02}{n}"))
        };
        let (a, b) = (r(1), r(2));
        let (ra, rb) = tokio::join!(t.app.ledger.reserve_issuance(&a, &ev), t.app.ledger.reserve_issuance(&b, &ev));
        let won = usize::from(ra.is_ok()) + usize::from(rb.is_ok());
        assert_eq!(won, 1, "round {i}: {ra:?} {rb:?}");
        for lost in [ra, rb].into_iter().filter_map(Result::err) {
            assert!(matches!(lost, LedgerError::Conflict(ref m) if m.contains("already has")), "{lost:?}");
        }
    }
    let mut conn = t.raw().await;
    let reserved: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM reservations WHERE state = 'reserved' AND requester LIKE 'scep:lab/race%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap()
    .get("n");
    assert_eq!(reserved, 40);
    // Eleven minutes later they count as interrupted: the cleanup aborts them, with one audit row.
    sqlx::query("UPDATE reservations SET created_at = created_at - 660 WHERE requester LIKE 'scep:lab/race%'")
        .execute(&mut conn)
        .await
        .unwrap();
    let cleanup = AuditEvent::new(AuditKind::Failed, "system:privca");
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 - 600;
    assert_eq!(t.app.ledger.abort_interrupted_reservations(before, &cleanup).await.unwrap(), 40);
    assert_eq!(t.app.ledger.abort_interrupted_reservations(before, &cleanup).await.unwrap(), 0);
    let again = Reservation { requester: "scep:lab/race0".into(), one_per_requester: true, ..reservation("0f9999") };
    t.app.ledger.reserve_issuance(&again, &ev).await.expect("a retry after the cleanup");
}

/// A CRL whose process stopped between the cRLNumber's reservation and the publication (a
/// SIGKILL during CRL generation) is aborted by the cleanup once it counts as interrupted, with
/// an audit row; a recent reservation is left alone, and the next CRL takes a higher number.
async fn an_interrupted_crl_is_aborted(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let first = t.ca.publish_crl("ec", false).await.unwrap().number;
    let ev = AuditEvent::new(AuditKind::CrlReserve, "system:privca").issuer("ec");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let old = t.app.ledger.reserve_crl("ec", CrlKind::Full, None, now, now + 3600, &ev).await.unwrap();
    let recent = t.app.ledger.reserve_crl("ec", CrlKind::Delta, Some(first), now, now + 600, &ev).await.unwrap();
    assert!(old.number > first && recent.number > old.number);
    let mut conn = t.raw().await;
    sqlx::query("UPDATE crls SET created_at = created_at - 660 WHERE issuer_id = 'ec' AND crl_number = $1")
        .bind(old.number)
        .execute(&mut conn)
        .await
        .unwrap();
    let cleanup = AuditEvent::new(AuditKind::Failed, "system:privca");
    let before = now - 600;
    assert_eq!(t.app.ledger.abort_interrupted_crls(before, &cleanup).await.unwrap(), 1);
    assert_eq!(t.app.ledger.abort_interrupted_crls(before, &cleanup).await.unwrap(), 0);
    let states: Vec<(i64, String)> = t.app.ledger.crl_numbers("ec").await.unwrap();
    assert!(states.contains(&(old.number, "aborted".into())), "{states:?}");
    assert!(states.contains(&(recent.number, "reserved".into())), "{states:?}");
    let audited: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE event = 'failed' AND detail LIKE '%aborted_crls%'")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get("n");
    assert_eq!(audited, 1);
    let next = t.ca.publish_crl("ec", false).await.unwrap().number;
    assert!(next > recent.number, "cRLNumbers never reused: {next} after {}", recent.number);
    assert_eq!(t.app.ledger.latest_crl("ec", CrlKind::Full, false).await.unwrap().unwrap().number, next);
}

async fn revoke_is_idempotent(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let rec = issue(&t, "tls-server").await;
    let by = Requester::cli();
    let first = t.ca.revoke(&rec.serial, RevocationReason::KeyCompromise, None, &by).await.unwrap();
    assert_eq!(first, RevokeOutcome::Revoked);
    let second = t.ca.revoke(&rec.serial.to_uppercase(), RevocationReason::Superseded, None, &by).await.unwrap();
    assert_eq!(second, RevokeOutcome::AlreadyRevoked("keyCompromise".into()));
    let stored = t.app.ledger.certificate(&rec.serial).await.unwrap().unwrap();
    assert_eq!(stored.status, CertStatus::Revoked);
    assert_eq!(stored.revocation_reason.as_deref(), Some("keyCompromise"));
    let missing = t.ca.revoke("00ff", RevocationReason::KeyCompromise, None, &by).await;
    assert!(missing.is_err());
}

async fn approval_lifecycle(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let new = NewApproval {
        profile: "tls-server".into(),
        requester: "est:alice".into(),
        owner: Some("team-a".into()),
        subject: "CN=a".into(),
        sans: vec!["dns:a.example.test".into()],
        csr_der: vec![1, 2, 3],
        acme_order: None,
        approvals_required: 1,
    };
    let ev = AuditEvent::new(AuditKind::ApprovalRequested, "est:alice");
    let id = t.app.ledger.create_approval(&new, &ev).await.unwrap();
    let pending = t.app.ledger.approvals(Some(ApprovalStatus::Pending)).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].sans, vec!["dns:a.example.test"]);
    let deny = AuditEvent::new(AuditKind::ApprovalDenied, "cli:op");
    t.app.ledger.decide_approval(id, false, "cli:op", Some("no"), &deny).await.unwrap();
    let again = t.app.ledger.decide_approval(id, true, "cli:op", None, &deny).await;
    assert!(matches!(again, Err(LedgerError::Conflict(_))));
    let a = t.app.ledger.approval(id).await.unwrap().unwrap();
    assert_eq!(a.status, ApprovalStatus::Denied);
    assert_eq!(a.reason.as_deref(), Some("no"));
    assert!(t.app.ledger.approvals(Some(ApprovalStatus::Pending)).await.unwrap().is_empty());
}

async fn order_status(t: &TestCa, id: &str) -> (OrderStatus, Option<String>) {
    let o = t.app.ledger.acme_order(id).await.unwrap().unwrap();
    (o.status, o.certificate_serial)
}

/// A `pending` order of account `acct-1` for the DNS name `name`.
fn pending_order(id: &str, name: &str, authz_ids: &[&str]) -> Order {
    Order {
        id: id.into(),
        account_id: "acct-1".into(),
        status: OrderStatus::Pending,
        expires: privca_now() + 3600,
        identifiers: vec![Identifier { kind: "dns".into(), value: name.into() }],
        profile: "tls-server".into(),
        replaces: None,
        replaces_serial: None,
        authz_ids: authz_ids.iter().map(|a| a.to_string()).collect(),
        error: None,
        certificate_serial: None,
        approval_id: None,
    }
}

/// The ACME order is claimed with the reservation, handed back by an abort and completed by
/// the commit, each in the same transaction; a second finalize of it reserves nothing.
async fn acme_order_moves_with_the_issuance(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let order = pending_order("order-1", "battery.example.test", &[]);
    t.app.ledger.create_acme_order(&order, &[]).await.unwrap();
    let claiming = |serial: &str| Reservation { acme_order: Some(order.id.clone()), ..reservation(serial) };
    let ev = AuditEvent::new(AuditKind::Reserve, "cli:test");

    t.app.ledger.reserve_issuance(&claiming("0e01"), &ev).await.unwrap();
    assert_eq!(order_status(&t, "order-1").await, (OrderStatus::Processing, None));
    let again = t.app.ledger.reserve_issuance(&claiming("0e02"), &ev).await;
    assert!(matches!(again, Err(LedgerError::Conflict(_))), "{again:?}");
    assert_eq!(t.app.ledger.reservation_state("0e02").await.unwrap(), None, "the losing reservation rolled back");
    let failed = AuditEvent::new(AuditKind::Failed, "cli:test");
    t.app.ledger.abort_reservation("0e01", "HSM down", &failed, Some("order-1")).await.unwrap();
    assert_eq!(order_status(&t, "order-1").await, (OrderStatus::Pending, None));

    let before = t.app.ledger.count_certificates().await.unwrap();
    let csr = t.csr("ec:P-256", "/CN=battery.example.test", Some("DNS:battery.example.test"));
    let finalize = || {
        let mut req = IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap();
        req.acme_order = Some("order-1".into());
        req
    };
    let IssueOutcome::Issued(cert) = t.ca.issue(finalize()).await.unwrap() else { panic!("unexpected approval") };
    assert_eq!(order_status(&t, "order-1").await, (OrderStatus::Valid, Some(cert.record.serial.clone())));
    let second = t.ca.issue(finalize()).await;
    assert!(matches!(&second, Err(e) if e.kind() == ErrorKind::Conflict), "{second:?}");
    assert_eq!(t.app.ledger.count_certificates().await.unwrap(), before + 1);
}

/// Committing a reservation that is no longer `reserved` writes nothing: no certificate, no
/// OCSP response, no `valid` order, no audit row.
async fn a_commit_needs_an_open_reservation(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let issued = issue(&t, "tls-server").await;
    let order = pending_order("order-2", "battery.example.test", &[]);
    t.app.ledger.create_acme_order(&order, &[]).await.unwrap();
    let reserved = Reservation { acme_order: Some(order.id.clone()), ..reservation("0f01") };
    t.app.ledger.reserve_issuance(&reserved, &AuditEvent::new(AuditKind::Reserve, "cli:test")).await.unwrap();
    let failed = AuditEvent::new(AuditKind::Failed, "cli:test");
    t.app.ledger.abort_reservation("0f01", "HSM down", &failed, Some("order-2")).await.unwrap();

    let late = privca::ledger::CertRecord { serial: "0f01".into(), fingerprint_sha256: "ff".repeat(32), ..issued };
    let ocsp = privca::ledger::OcspRecord {
        serial: "0f01".into(),
        hash_alg: "sha1".into(),
        issuer_id: late.issuer_id.clone(),
        revocation_seq: 0,
        this_update: privca_now(),
        next_update: privca_now() + 3600,
        der: vec![0x30, 0x00],
    };
    let audit_rows = t.app.ledger.unsealed_count().await.unwrap();
    let committed = AuditEvent::new(AuditKind::Committed, "cli:test").serial("0f01");
    let again = t.app.ledger.record_issued(&late, &committed, Some("order-2"), Some(&ocsp)).await;
    assert!(matches!(again, Err(LedgerError::Conflict(_))), "{again:?}");
    assert!(t.app.ledger.certificate("0f01").await.unwrap().is_none());
    assert!(t.app.ledger.ocsp_response("0f01", "sha1").await.unwrap().is_none());
    assert_eq!(order_status(&t, "order-2").await, (OrderStatus::Pending, None));
    assert_eq!(t.app.ledger.reservation_state("0f01").await.unwrap().as_deref(), Some("aborted"));
    assert_eq!(t.app.ledger.unsealed_count().await.unwrap(), audit_rows);
}

async fn sealed_and_clean(t: &TestCa) -> Vec<u8> {
    issue(t, "tls-server").await;
    issue(t, "tls-server").await;
    audit::seal(&t.app.ledger, &t.app.signing).await.unwrap();
    let spki = t.app.signing.key_info(audit::CHECKPOINT_KEY).unwrap().spki_der;
    let report = audit::verify(&t.app.ledger, &spki).await.unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert!(report.rows >= 4 && report.checkpoints >= 1 && report.unsealed == 0);
    spki
}

async fn audit_seal_links_more_rows_than_one_statement(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    for i in 0..600 {
        let event = AuditEvent::new(AuditKind::Failed, "cli:test").serial(format!("{i:04x}"));
        t.app.ledger.record_event(&event).await.unwrap();
    }
    let sealed = audit::seal(&t.app.ledger, &t.app.signing).await.unwrap();
    assert!(sealed >= 600, "{sealed}");
    assert_eq!(audit::seal(&t.app.ledger, &t.app.signing).await.unwrap(), 0);
    let spki = t.app.signing.key_info(audit::CHECKPOINT_KEY).unwrap().spki_der;
    let report = audit::verify(&t.app.ledger, &spki).await.unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert!(report.rows >= 600 && report.checkpoints >= 2 && report.unsealed == 0, "{report:?}");
}

/// `audit verify` while another sealer links rows (the server, or any CLI command, seals as it
/// ends): the chain up to the head it read first verifies, with no finding.
async fn audit_verifies_while_another_process_seals(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let spki = t.app.signing.key_info(audit::CHECKPOINT_KEY).unwrap().spki_der;
    for round in 0..20 {
        for i in 0..40 {
            let event = AuditEvent::new(AuditKind::Failed, "cli:test").serial(format!("{round:02x}{i:02x}"));
            t.app.ledger.record_event(&event).await.unwrap();
        }
        let (sealed, report) =
            tokio::join!(audit::seal(&t.app.ledger, &t.app.signing), audit::verify(&t.app.ledger, &spki));
        assert!(sealed.unwrap() > 0);
        assert!(report.unwrap().findings.is_empty(), "round {round}");
    }
    // Rows sealed beyond a head that did not move were added by hand.
    let mut conn = t.raw().await;
    sqlx::query("UPDATE audit_head SET seq = seq - 1 WHERE id = 1").execute(&mut conn).await.unwrap();
    let report = audit::verify(&t.app.ledger, &spki).await.unwrap();
    assert!(report.findings.iter().any(|f| f.0.contains("rows were added")), "{:?}", report.findings);
}

async fn audit_edit_is_detected(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let spki = sealed_and_clean(&t).await;
    let mut conn = t.raw().await;
    sqlx::query("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3").execute(&mut conn).await.unwrap();
    let report = audit::verify(&t.app.ledger, &spki).await.unwrap();
    assert!(report.findings.iter().any(|f| f.0.contains("seq 3") && f.0.contains("edited")), "{:?}", report.findings);
}

async fn audit_deleting_newest_rows_is_detected(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let spki = sealed_and_clean(&t).await;
    let mut conn = t.raw().await;
    let max: i64 = sqlx::query("SELECT MAX(seq) AS m FROM audit_events").fetch_one(&mut conn).await.unwrap().get("m");
    sqlx::query("DELETE FROM audit_events WHERE seq >= $1").bind(max - 1).execute(&mut conn).await.unwrap();
    let report = audit::verify(&t.app.ledger, &spki).await.unwrap();
    assert!(report.findings.iter().any(|f| f.0.contains("deleted")), "{:?}", report.findings);
    // Deleting the newest checkpoint and moving the head back too is still caught through the
    // certificate whose `committed` row vanished.
    sqlx::query("DELETE FROM audit_checkpoints WHERE seq = $1").bind(max).execute(&mut conn).await.unwrap();
    let last: i64 =
        sqlx::query("SELECT MAX(seq) AS m FROM audit_checkpoints").fetch_one(&mut conn).await.unwrap().get("m");
    sqlx::query("DELETE FROM audit_events WHERE seq > $1").bind(last).execute(&mut conn).await.unwrap();
    let hash: String = sqlx::query("SELECT head_hash FROM audit_checkpoints WHERE seq = $1")
        .bind(last)
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get("head_hash");
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(last)
        .bind(hash)
        .execute(&mut conn)
        .await
        .unwrap();
    let report = audit::verify(&t.app.ledger, &spki).await.unwrap();
    assert!(report.findings.iter().any(|f| f.0.contains("no `committed` audit row")), "{:?}", report.findings);
}

async fn audit_recomputed_chain_is_detected(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let spki = sealed_and_clean(&t).await;
    let mut conn = t.raw().await;
    sqlx::query("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2").execute(&mut conn).await.unwrap();
    // Recompute every hash and the head, as an attacker without the HSM can.
    let rows = t.app.ledger.sealed_audit(0, 10_000).await.unwrap();
    let mut prev = audit::GENESIS_HASH.to_owned();
    for row in &rows {
        let seq = row.seq.unwrap();
        let hash = audit::row_hash(&prev, seq, row);
        sqlx::query("UPDATE audit_events SET prev_hash = $1, hash = $2 WHERE seq = $3")
            .bind(&prev)
            .bind(&hash)
            .bind(seq)
            .execute(&mut conn)
            .await
            .unwrap();
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&prev).execute(&mut conn).await.unwrap();
    let report = audit::verify(&t.app.ledger, &spki).await.unwrap();
    assert!(
        report.findings.iter().any(|f| f.0.contains("checkpoint") && f.0.contains("rewritten")),
        "{:?}",
        report.findings
    );
}

/// The ledger keeps its connections out of sqlx's pool (no ping per statement). When the
/// database drops them (PostgreSQL: `pg_terminate_backend`, as in a restart), the units of work
/// that find a dead connection fail with `Unavailable` and every later one runs on a checked
/// or new connection: reads and a full issuance work again at once.
async fn connections_dropped_by_the_database_are_replaced(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let ledger = t.ca.ledger();
    let first = issue(&t, "tls-server").await;
    if db == Db::Postgres {
        let mut admin = t.raw().await;
        let killed: i64 = sqlx::query(
            "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
        assert!(killed >= 1, "the ledger had no connection open");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let mut failed = 0;
    for _ in 0..20 {
        match ledger.certificate(&first.serial).await {
            Ok(found) => assert_eq!(found.map(|c| c.serial), Some(first.serial.clone())),
            Err(e) => {
                assert!(matches!(e, LedgerError::Unavailable(_)), "{e}");
                failed += 1;
            }
        }
    }
    eprintln!("{db:?}: {failed} of 20 reads failed after the connections were dropped");
    assert!(failed <= 2, "{failed} of 20 reads failed after the connections were dropped");
    let second = issue(&t, "tls-server").await;
    assert_ne!(second.serial, first.serial);
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM certificates")
        .fetch_one(&mut t.raw().await)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(count, 2);
}

/// A nonce is redeemed once; the redemption of a `kid` request also tells whether the account
/// the request read (possibly a copy in memory) is still what the ledger holds, so a change
/// made by another instance (here: straight through the ledger) is seen at once.
async fn nonce_redemption_sees_account_changes(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let ledger = t.ca.ledger();
    let mut account = Account {
        id: "acct1".into(),
        jwk: serde_json::json!({"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}),
        thumbprint: "thumb-1".into(),
        status: AccountStatus::Valid,
        contact: vec!["mailto:ops@example.test".into()],
        eab: None,
        owner: None,
        profile: None,
    };
    let created = AuditEvent::new(AuditKind::AcmeAccountCreated, "acme:account/acct1");
    ledger.create_acme_account(&account, None, &created).await.unwrap();
    let far = privca_now() + 3600;

    assert_eq!(ledger.redeem_acme_nonce("n1", far, None).await.unwrap(), Redeemed::Fresh);
    assert_eq!(ledger.redeem_acme_nonce("n1", far, None).await.unwrap(), Redeemed::Used);
    assert_eq!(ledger.redeem_acme_nonce("n2", far, Some(&account)).await.unwrap(), Redeemed::Fresh);
    assert_eq!(ledger.redeem_acme_nonce("n2", far, Some(&account)).await.unwrap(), Redeemed::Used);

    let seen = account.clone();
    let updated = AuditEvent::new(AuditKind::AcmeAccountUpdated, "acme:account/acct1");
    for change in ["contact", "key", "status"] {
        match change {
            "contact" => account.contact = vec!["mailto:other@example.test".into()],
            "key" => account.thumbprint = "thumb-2".into(),
            _ => account.status = AccountStatus::Deactivated,
        }
        ledger.update_acme_account(&account, &updated).await.unwrap();
        let nonce = format!("after-{change}");
        assert_eq!(ledger.redeem_acme_nonce(&nonce, far, Some(&seen)).await.unwrap(), Redeemed::AccountChanged);
        assert_eq!(ledger.redeem_acme_nonce(&nonce, far, Some(&seen)).await.unwrap(), Redeemed::Used);
    }
    assert_eq!(ledger.redeem_acme_nonce("current", far, Some(&account)).await.unwrap(), Redeemed::Fresh);
    let mut unknown = account.clone();
    unknown.id = "nobody".into();
    assert_eq!(ledger.redeem_acme_nonce("unknown", far, Some(&unknown)).await.unwrap(), Redeemed::AccountChanged);

    // Batched (one statement per NONCES_PER_STATEMENT on PostgreSQL): the same answers, in order.
    let names: Vec<String> = (0..NONCES_PER_STATEMENT + 3).map(|i| format!("batch-{i}")).collect();
    let mut uses: Vec<NonceUse<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| NonceUse {
            nonce: n,
            expires: far,
            account: match i % 3 {
                0 => None,
                1 => Some(&account),
                _ => Some(&seen),
            },
        })
        .collect();
    uses[4].nonce = "current";
    let answers = ledger.redeem_acme_nonces(&uses).await.unwrap();
    for (i, (u, answer)) in uses.iter().zip(&answers).enumerate() {
        let expected = match (u.nonce, i % 3) {
            ("current", _) => Redeemed::Used,
            (_, 2) => Redeemed::AccountChanged,
            _ => Redeemed::Fresh,
        };
        assert_eq!(*answer, expected, "{}", u.nonce);
    }
    let again = ledger.redeem_acme_nonces(&uses).await.unwrap();
    assert!(again.iter().all(|a| *a == Redeemed::Used));
}

/// An order is stored with its new authorizations or not at all (one transaction): a clash on
/// the second authorization leaves neither the first nor the order behind.
async fn an_order_and_its_authorizations_are_one_unit(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let ledger = &t.app.ledger;
    let authz = |id: &str, name: &str| Authz {
        id: id.into(),
        account_id: "acct-1".into(),
        identifier: Identifier { kind: "dns".into(), value: name.into() },
        wildcard: name.starts_with("wild"),
        status: AuthzStatus::Pending,
        expires: privca_now() + 3600,
        challenges: Vec::new(),
    };
    let two = [authz("az-1", "a.example.test"), authz("az-2", "wild.example.test")];
    ledger.create_acme_order(&pending_order("o-1", "a.example.test", &["az-1", "az-2"]), &two).await.unwrap();
    let stored = ledger.acme_order("o-1").await.unwrap().unwrap();
    assert_eq!(stored.authz_ids, ["az-1", "az-2"]);
    // One read for several ids: answers in the order asked, a missing id is `None`, an id
    // asked twice is answered twice (five ids: the statement's list is padded to eight).
    let ids = ["az-2", "az-9", "az-1", "az-2", "az-8"].map(String::from);
    let got = ledger.acme_authzs(&ids).await.unwrap();
    let names: Vec<Option<(String, bool)>> =
        got.into_iter().map(|a| a.map(|a| (a.identifier.value, a.wildcard))).collect();
    let some = |n: &str, w: bool| Some((n.to_owned(), w));
    let wild = some("wild.example.test", true);
    assert_eq!(names, [wild.clone(), None, some("a.example.test", false), wild, None]);

    let clash = [authz("az-3", "b.example.test"), authz("az-1", "c.example.test")];
    assert!(ledger
        .create_acme_order(&pending_order("o-2", "a.example.test", &["az-3", "az-1"]), &clash)
        .await
        .is_err());
    assert!(ledger.acme_order("o-2").await.unwrap().is_none());
    let after = ledger.acme_authzs(&["az-3".into(), "az-1".into()]).await.unwrap();
    assert!(after[0].is_none());
    assert_eq!(after[1].as_ref().unwrap().identifier.value, "a.example.test");

    // Several authorizations updated by one statement; each keeps its own values.
    let mut updated = two.clone();
    updated[0].status = AuthzStatus::Valid;
    updated[1].status = AuthzStatus::Invalid;
    ledger.update_acme_authzs(&updated).await.unwrap();
    let got = ledger.acme_authzs(&["az-1".into(), "az-2".into()]).await.unwrap();
    let statuses: Vec<AuthzStatus> = got.into_iter().map(|a| a.unwrap().status).collect();
    assert_eq!(statuses, [AuthzStatus::Valid, AuthzStatus::Invalid]);
}

/// EAB HMAC keys reach the ledger sealed by the token only, open again for the EAB check, and
/// do not open under another key id; a key stored in the clear by an earlier version is sealed
/// at start-up and its clear column emptied. On PostgreSQL the shared nonce key is sealed too.
async fn acme_secrets_are_sealed_by_the_token(db: Db) {
    use base64ct::{Base64UrlUnpadded, Encoding};
    use privca::{adapters::acme::AcmeAdapter, sealing};
    use privca_acme::AcmeBackend;

    let Some(t) = TestCa::new(db).await else { return };
    let ledger = t.ca.ledger();
    let adapter = AcmeAdapter::new(t.ca.clone(), db == Db::Sqlite);
    let (kid, key) = privca::adapters::acme::create_eab_key(&t.ca, "team-a", None, &Requester::cli()).await.unwrap();
    let hex_key = hex::encode(Base64UrlUnpadded::decode_vec(&key).unwrap());
    let mut raw = t.raw().await;
    let row = sqlx::query("SELECT hmac_key, sealed_key FROM acme_eab_keys WHERE kid = $1")
        .bind(&kid)
        .fetch_one(&mut raw)
        .await
        .unwrap();
    let (clear, sealed): (String, String) = (row.get(0), row.get(1));
    assert_eq!(clear, "");
    assert!(sealed.starts_with("v1.") && !sealed.contains(&key) && !sealed.contains(&hex_key), "{sealed}");
    let opened = adapter.eab_key(&kid).await.unwrap().unwrap();
    assert_eq!(Base64UrlUnpadded::encode_string(opened.hmac_key.expose()), key);
    assert!(!format!("{opened:?}").contains(&hex_key[..8]));

    // The sealed value of one key moved to another key id does not open.
    let (other, _) = privca::adapters::acme::create_eab_key(&t.ca, "team-b", None, &Requester::cli()).await.unwrap();
    sqlx::query("UPDATE acme_eab_keys SET sealed_key = $1 WHERE kid = $2")
        .bind(&sealed)
        .bind(&other)
        .execute(&mut raw)
        .await
        .unwrap();
    assert!(adapter.eab_key(&other).await.is_err());

    // A key stored in the clear (before migration 11): refused until sealed, then it opens.
    let legacy = Base64UrlUnpadded::encode_string(&[0x5a; 32]);
    sqlx::query(
        "INSERT INTO acme_eab_keys (kid, hmac_key, owner, profile, account_id, created_at) \
         VALUES ('kid-legacy', $1, 'team-c', NULL, NULL, 0)",
    )
    .bind(&legacy)
    .execute(&mut raw)
    .await
    .unwrap();
    assert!(adapter.eab_key("kid-legacy").await.is_err());
    assert_eq!(sealing::seal_clear_eab_keys(ledger, t.ca.signing()).await.unwrap(), 1);
    assert_eq!(sealing::seal_clear_eab_keys(ledger, t.ca.signing()).await.unwrap(), 0);
    let clear: String = sqlx::query("SELECT hmac_key FROM acme_eab_keys WHERE kid = 'kid-legacy'")
        .fetch_one(&mut raw)
        .await
        .unwrap()
        .get(0);
    assert_eq!(clear, "");
    assert_eq!(adapter.eab_key("kid-legacy").await.unwrap().unwrap().hmac_key.expose(), [0x5a; 32]);

    // The shared nonce key (PostgreSQL): stored sealed, the same for every instance.
    if db == Db::Postgres {
        privca::adapters::acme::state(&t.ca).await.unwrap().unwrap();
        let first: String = sqlx::query("SELECT value FROM acme_settings WHERE name = 'nonce_key_sealed'")
            .fetch_one(&mut raw)
            .await
            .unwrap()
            .get(0);
        assert!(first.starts_with("v1."));
        privca::adapters::acme::state(&t.ca).await.unwrap().unwrap();
        let names: Vec<String> = sqlx::query("SELECT name FROM acme_settings")
            .fetch_all(&mut raw)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(names, ["nonce_key_sealed"]);
    }
}
