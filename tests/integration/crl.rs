//! CRL publication on both databases: numbers strictly increase across complete and delta
//! CRLs, complete CRLs list every revoked certificate, deltas exactly the changes since their
//! base (including a hold lifted with removeFromCRL), and every CRL verifies with the issuer key.

use der::{Decode, Encode};
use privca::{
    ca::{IssuanceRequest, IssueOutcome, Requester, RevocationReason},
    signer::verify_spki,
};
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
    let kind = if delta { privca::ledger::CrlKind::Delta } else { privca::ledger::CrlKind::Full };
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
