//! CRL publication on both databases: numbers strictly increase across complete and delta
//! CRLs, complete CRLs list every revoked certificate, deltas exactly the changes since their
//! base (including a hold lifted with removeFromCRL), and every CRL verifies with the issuer key.
//! The publisher re-signs the complete CRL `crl.full_after_revocation` after it sees a
//! revocation (not before), and a burst of 1,000 revocations makes at most two complete CRLs.

use std::time::{Duration, Instant};

use der::{Decode, Encode};
use privca::{
    ca::{IssuanceRequest, IssueOutcome, Requester, RevocationReason},
    jobs::crl_publish::{Publisher, Refreshed},
    ledger::CrlKind,
    signer::verify_spki,
};
use sqlx::{Connection, Row};
use x509_cert::crl::CertificateList;

use crate::harness::{Db, TestCa};

async fn issue(t: &TestCa, n: usize) -> String {
    let name = format!("crl{n}.example.test");
    let csr = t.csr("ec:P-256", &format!("/CN={name}"), Some(&format!("DNS:{name}")));
    let req = IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap();
    match t.ca.issue(req).await.unwrap() {
        IssueOutcome::Issued(c) => c.record.serial,
        IssueOutcome::Pending(_) => panic!("pending"),
    }
}

/// (cRLNumber, [(serial hex, reason code)]) of the newest published CRL, after checking its
/// signature with the issuer's key.
async fn fetch(t: &TestCa, delta: bool) -> (u64, Vec<(String, Option<u8>)>) {
    let kind = if delta { CrlKind::Delta } else { CrlKind::Full };
    let rec = t.app.ledger.latest_crl("ec", kind, true).await.unwrap().unwrap();
    let crl = CertificateList::from_der(&rec.der).unwrap();
    let issuer = t.ca.issuer("ec").unwrap();
    let tbs = crl.tbs_cert_list.to_der().unwrap();
    verify_spki(&issuer.spki_der, issuer.signature, &tbs, crl.signature.raw_bytes()).unwrap();
    let entries = crl
        .tbs_cert_list
        .revoked_certificates
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let reason = r.crl_entry_extensions.as_ref().and_then(|exts| {
                exts.iter().find(|e| e.extn_id.to_string() == "2.5.29.21").map(|e| e.extn_value.as_bytes()[2])
            });
            (hex::encode(r.serial_number.as_bytes()), reason)
        })
        .collect();
    (rec.number as u64, entries)
}

async fn crl_contents_and_numbers(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let (a, b, _c) = (issue(&t, 1).await, issue(&t, 2).await, issue(&t, 3).await);
    let by = Requester::cli();
    let mut numbers = Vec::new();
    numbers.push(t.ca.publish_crl("ec", false).await.unwrap().number);
    assert!(fetch(&t, false).await.1.is_empty());
    t.ca.revoke(&a, RevocationReason::KeyCompromise, None, &by).await.unwrap();
    numbers.push(t.ca.publish_crl("ec", false).await.unwrap().number);
    assert_eq!(fetch(&t, false).await.1, vec![(a.clone(), Some(1))]);
    t.ca.revoke(&b, RevocationReason::CertificateHold, None, &by).await.unwrap();
    numbers.push(t.ca.publish_crl("ec", true).await.unwrap().number);
    assert_eq!(fetch(&t, true).await.1, vec![(b.clone(), Some(6))], "the delta lists only the change");
    t.ca.revoke(&b, RevocationReason::RemoveFromCrl, None, &by).await.unwrap();
    numbers.push(t.ca.publish_crl("ec", true).await.unwrap().number);
    assert_eq!(fetch(&t, true).await.1, vec![(b.clone(), Some(8))], "lifted hold: removeFromCRL");
    numbers.push(t.ca.publish_crl("ec", false).await.unwrap().number);
    assert_eq!(fetch(&t, false).await.1, vec![(a.clone(), Some(1))], "a lifted hold leaves the complete CRL");
    numbers.push(t.ca.publish_crl("ec", true).await.unwrap().number);
    assert!(fetch(&t, true).await.1.is_empty(), "nothing changed since the new base");
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert!(t.ca.revoke(&b, RevocationReason::RemoveFromCrl, None, &by).await.is_err(), "not on hold any more");
    // The root publishes its own (empty) CRL over the intermediates.
    assert_eq!(t.ca.publish_crl("root", false).await.unwrap().entries, 0);
    assert!(t.ca.publish_crl("nope", false).await.is_err());
}

/// Published complete CRLs of the `ec` issuer.
async fn full_count(t: &TestCa) -> i64 {
    let mut conn = t.raw().await;
    sqlx::query("SELECT COUNT(*) AS n FROM crls WHERE issuer_id = 'ec' AND kind = 'full' AND state = 'published'")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .try_get("n")
        .unwrap()
}

async fn full_follows_revocation_after_the_delay(db: Db) {
    let delay = Duration::from_secs(2);
    let cfg = "[crl]\ncheck_interval = \"250ms\"\nfull_after_revocation = \"2s\"\n";
    let Some(t) = TestCa::with_config(db, cfg).await else { return };
    let a = issue(&t, 1).await;
    let mut publisher = Publisher::default();
    assert_eq!(publisher.refresh(&t.ca, "ec").await.unwrap(), Refreshed { full: true, delta: true });
    let (n0, entries) = fetch(&t, false).await;
    assert!(entries.is_empty());
    assert_eq!(publisher.refresh(&t.ca, "ec").await.unwrap(), Refreshed::default(), "nothing to do");

    t.ca.revoke(&a, RevocationReason::KeyCompromise, None, &Requester::cli()).await.unwrap();
    let revoked = Instant::now();
    // The first tick that sees it: a delta at once, the complete CRL not yet.
    assert_eq!(publisher.refresh(&t.ca, "ec").await.unwrap(), Refreshed { full: false, delta: true });
    assert_eq!(fetch(&t, true).await.1, vec![(a.clone(), Some(1))], "the delta lists it at once");
    assert!(publisher.next_deadline(&t.ca).is_some());
    let mut waited = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let done = publisher.refresh(&t.ca, "ec").await.unwrap();
        let elapsed = revoked.elapsed();
        if done.full {
            assert!(elapsed >= delay, "complete CRL re-signed {elapsed:?} after the revocation");
            assert!(done.delta, "and a delta on it");
            break;
        }
        assert!(elapsed < delay + Duration::from_secs(5), "no complete CRL {elapsed:?} after the revocation");
        assert_eq!(fetch(&t, false).await, (n0, vec![]), "the complete CRL is unchanged before the delay");
        waited += 1;
    }
    assert!(waited >= 1, "no tick before the delay kept the old complete CRL");
    let (n1, entries) = fetch(&t, false).await;
    assert!(n1 > n0);
    assert_eq!(entries, vec![(a.clone(), Some(1))], "the new complete CRL lists the revocation");
    let (d, delta_entries) = fetch(&t, true).await;
    assert!(d > n1 && delta_entries.is_empty(), "a fresh delta on the new base");
    // Caught up: nothing pending, nothing more to publish.
    assert_eq!(publisher.next_deadline(&t.ca), None);
    assert_eq!(publisher.refresh(&t.ca, "ec").await.unwrap(), Refreshed::default());
    assert_eq!(full_count(&t).await, 2);

    // A complete CRL published meanwhile by someone else (`privca crl publish`, another instance)
    // restarts the wait: a revocation after it gets its full delay, not what was left of the old one.
    let (b, c) = (issue(&t, 2).await, issue(&t, 3).await);
    t.ca.revoke(&b, RevocationReason::Superseded, None, &Requester::cli()).await.unwrap();
    assert!(!publisher.refresh(&t.ca, "ec").await.unwrap().full);
    tokio::time::sleep(delay).await;
    t.ca.publish_crl("ec", false).await.unwrap();
    t.ca.revoke(&c, RevocationReason::Superseded, None, &Requester::cli()).await.unwrap();
    let done = publisher.refresh(&t.ca, "ec").await.unwrap();
    assert_eq!(done, Refreshed { full: false, delta: true }, "the wait restarted at the other complete CRL");
    assert_eq!(full_count(&t).await, 3);
}

/// `n` valid certificates of the `ec` issuer straight into the ledger (no signature needed to
/// revoke them); their serials.
async fn insert_valid(t: &TestCa, n: usize) -> Vec<String> {
    let mut conn = t.raw().await;
    let mut tx = conn.begin().await.unwrap();
    let mut serials = Vec::with_capacity(n);
    for i in 1..=n {
        let serial = format!("7{i:015x}");
        sqlx::query(
            "INSERT INTO reservations (serial, issuer_id, profile, requester, tbs_sha256, state, created_at, updated_at) \
             VALUES ($1, 'ec', 'tls-server', 'test', $2, 'committed', 0, 0)",
        )
        .bind(&serial)
        .bind(format!("{i:064x}"))
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO certificates (serial, issuer_id, subject, sans, fingerprint_sha256, not_before, not_after, \
             profile, requester, owner, tier, status, der, created_at) \
             VALUES ($1, 'ec', 'CN=burst', '[]', $2, 0, 4102444800, 'tls-server', 'test', 'test', 'internal', 'valid', $3, 0)",
        )
        .bind(&serial)
        .bind(format!("{i:064x}"))
        .bind(vec![0u8])
        .execute(&mut *tx)
        .await
        .unwrap();
        serials.push(serial);
    }
    tx.commit().await.unwrap();
    serials
}

async fn burst_makes_at_most_two_full_crls(db: Db) {
    // Longer than the burst takes on a busy machine (1.6 s on SQLite, 7 s on PostgreSQL with other
    // tests running): a burst longer than the delay makes one complete CRL per delay, by design.
    let delay = Duration::from_secs(10);
    let cfg = "[crl]\ncheck_interval = \"250ms\"\nfull_after_revocation = \"10s\"\n";
    let Some(t) = TestCa::with_config(db, cfg).await else { return };
    let serials = insert_valid(&t, 1000).await;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut keeper = privca::jobs::lease::Keeper::new(t.app.ledger.clone(), Duration::from_secs(30));
    let lease = keeper.lease(privca::jobs::lease::job::CRL_PUBLISH);
    keeper.renew().await;
    let job = tokio::spawn(privca::jobs::crl_publish::run(t.ca.clone(), lease, stop));
    let started = Instant::now();
    while t.app.ledger.latest_crl("ec", CrlKind::Delta, false).await.unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(20), "the job published no CRL");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = full_count(&t).await;

    let burst = Instant::now();
    let mut tasks = Vec::new();
    for part in serials.chunks(250) {
        let (ca, part) = (t.ca.clone(), part.to_vec());
        tasks.push(tokio::spawn(async move {
            for s in part {
                ca.revoke(&s, RevocationReason::Superseded, None, &Requester::cli()).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let burst_took = burst.elapsed();
    eprintln!("1,000 revocations took {burst_took:?}");
    loop {
        let (_, entries) = fetch(&t, false).await;
        if entries.len() == serials.len() {
            break;
        }
        assert!(burst.elapsed() < burst_took + 2 * delay + Duration::from_secs(5), "the complete CRL never caught up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let caught_up = burst.elapsed();
    eprintln!("complete CRL listing all 1,000 after {caught_up:?}");
    assert!(caught_up >= delay, "a complete CRL listing the burst came before the delay ({caught_up:?})");
    // A complete CRL listing every revocation reflects the newest revocation sequence, so nothing
    // is left pending; a few more ticks publish no further complete CRL.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let made = full_count(&t).await - before;
    assert!((1..=2).contains(&made), "{made} complete CRLs for a burst of 1,000 revocations");
    let (full, entries) = fetch(&t, false).await;
    assert_eq!(entries.len(), serials.len());
    let (_, delta) = fetch(&t, true).await;
    assert!(delta.is_empty(), "the delta is based on the newest complete CRL");
    let base = t.app.ledger.latest_crl("ec", CrlKind::Delta, false).await.unwrap().unwrap().base_number;
    assert_eq!(base, Some(full as i64));
    stop_tx.send(true).unwrap();
    job.await.unwrap();
}

mod full_follows_revocation_after_the_delay {
    use crate::harness::Db;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::full_follows_revocation_after_the_delay(Db::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::full_follows_revocation_after_the_delay(Db::Postgres).await
    }
}

mod burst_makes_at_most_two_full_crls {
    use crate::harness::Db;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::burst_makes_at_most_two_full_crls(Db::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::burst_makes_at_most_two_full_crls(Db::Postgres).await
    }
}

mod crl_contents_and_numbers {
    use crate::harness::Db;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::crl_contents_and_numbers(Db::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::crl_contents_and_numbers(Db::Postgres).await
    }
}
