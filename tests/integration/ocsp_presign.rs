//! The OCSP pre-signer on both databases: with its periodic sweep an hour apart, a certificate
//! committed in-process has its first response from the moment it exists (signed before and
//! committed with the certificate), and a revocation is re-signed at once (the CA's change
//! feed); the stored responses say `good`, then `revoked`.

use std::time::Duration;

use privca::ca::{changes::ChangeFeed, ocsp::OcspService, IssuanceRequest, IssueOutcome, Requester, RevocationReason};
use tokio::sync::watch;

use crate::harness::{Db, TestCa};

/// The stored SHA-1 response for `serial` once its revocation sequence reaches `min_seq`.
async fn stored(t: &TestCa, serial: &str, min_seq: i64) -> privca::ledger::OcspRecord {
    for _ in 0..100 {
        if let Some(r) = t.app.ledger.ocsp_response(serial, "sha1").await.unwrap() {
            if r.revocation_seq >= min_seq {
                return r;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no pre-signed response for {serial} within 5 s");
}

async fn signed_at_commit(db: Db) {
    let Some(t) = TestCa::with_config(db, "[ocsp]\ncheck_interval = \"1h\"\n").await else { return };
    let (feed, changes) = ChangeFeed::channel();
    let ca = t.ca.clone().with_change_feed(feed);
    let ocsp = OcspService::start(ca.clone()).await.unwrap();
    let (stop_tx, stop_rx) = watch::channel(false);
    let jobs = privca::jobs::spawn(&t.app, &ca, &ocsp, None, changes, stop_rx);
    // Let the first (immediate) sweep pass; the next one is an hour away.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let csr = t.csr("ec:P-256", "/CN=presign.example.test", Some("DNS:presign.example.test"));
    let req = IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap();
    let serial = match ca.issue(req).await.unwrap() {
        IssueOutcome::Issued(c) => c.record.serial,
        IssueOutcome::Pending(_) => panic!("pending"),
    };
    let first = t.app.ledger.ocsp_response(&serial, "sha1").await.unwrap().expect("committed with the certificate");
    assert_eq!((first.issuer_id.as_str(), first.revocation_seq), ("ec", 0));
    assert!(first.next_update > first.this_update);

    ca.revoke(&serial, RevocationReason::KeyCompromise, None, &Requester::cli()).await.unwrap();
    let seq = t.app.ledger.certificate_status(&serial).await.unwrap().unwrap().revocation_seq;
    assert!(seq > 0);
    let resigned = stored(&t, &serial, seq).await;
    assert_ne!(resigned.der, first.der, "the revocation was re-signed");

    stop_tx.send(true).unwrap();
    for j in jobs {
        j.await.unwrap();
    }
}

mod signed_at_commit {
    use crate::harness::Db;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::signed_at_commit(Db::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::signed_at_commit(Db::Postgres).await
    }
}
