//! CA rollover (`[[issuer]] replaces` + `active_from`): before `active_from` the successor is
//! only announced (SCEP GetNextCACert), after it the successor signs for the profiles that name
//! the replaced issuer, which stays loaded for OCSP and CRLs of what it issued.

use der::{Decode, Encode};
use privca::ca::{x509, IssuanceRequest, IssueOutcome, Requester};
use x509_cert::Certificate;

use crate::harness::{Db, TestCa};

fn successor(active_from: &str) -> String {
    format!(
        r#"[[issuer]]
id = "ec-2"
key = "ecdsa-p256"
subject = "CN=test issuer EC 2,O=privca tests"
validity = "5y"
replaces = "ec"
active_from = "{active_from}"
"#
    )
}

async fn issue(t: &TestCa) -> privca::ca::IssuedCertificate {
    let csr = t.csr("ec:P-256", "/CN=www.example.test", Some("DNS:www.example.test"));
    let req = IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap();
    let IssueOutcome::Issued(cert) = t.ca.issue(req).await.unwrap() else { panic!("pending") };
    let (ok, out) = t.openssl_verify(&cert.chain_pem);
    assert!(ok, "{out}");
    *cert
}

fn issuer_name(der: &[u8]) -> Vec<u8> {
    Certificate::from_der(der).unwrap().tbs_certificate.issuer.to_der().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_successor_is_announced_but_does_not_sign() {
    for db in [Db::Sqlite, Db::Postgres] {
        let Some(t) = TestCa::with_config(db, &successor("2099-01-01T00:00:00Z")).await else { continue };
        let (next, _) = t.ca.next_issuer("ec").expect("ec-2 is announced");
        assert_eq!(next.id, "ec-2");
        let (ok, out) = t.openssl_verify(&x509::pem(&next.der));
        assert!(ok, "the successor chains to the root: {out}");
        assert_eq!(t.ca.current_issuer("ec").unwrap().id, "ec");
        let cert = issue(&t).await;
        assert_eq!(cert.record.issuer_id, "ec");
        assert_eq!(
            issuer_name(&cert.record.der),
            t.ca.issuer("ec").unwrap().cert.tbs_certificate.subject.to_der().unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_active_from_the_successor_signs_and_the_replaced_issuer_stays() {
    for db in [Db::Sqlite, Db::Postgres] {
        let Some(t) = TestCa::with_config(db, &successor("2020-01-01T00:00:00Z")).await else { continue };
        assert_eq!(t.ca.current_issuer("ec").unwrap().id, "ec-2");
        assert!(t.ca.next_issuer("ec").is_none(), "nothing is announced once the successor is active");
        let cert = issue(&t).await;
        assert_eq!(cert.record.issuer_id, "ec-2");
        let ec2 = t.ca.issuer("ec-2").unwrap();
        assert_eq!(issuer_name(&cert.record.der), ec2.cert.tbs_certificate.subject.to_der().unwrap());
        assert!(cert.chain_pem.contains(&x509::pem(&ec2.der)), "the chain carries the successor");
        assert!(t.ca.issuer("ec").is_some(), "the replaced issuer stays loaded for OCSP and CRLs");
        let stored = t.app.ledger.certificate(&cert.record.serial).await.unwrap().unwrap();
        assert_eq!(stored.issuer_id, "ec-2");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scep_ra_certificate_is_reissued_by_the_successor_once_it_is_active() {
    // Both databases at once: each waits for its successor's active_from.
    tokio::join!(ra_follows_the_rollover(Db::Sqlite), ra_follows_the_rollover(Db::Postgres));
}

async fn ra_follows_the_rollover(db: Db) {
    use privca::adapters::scep::ScepAdapter;
    use privca_scep::ScepBackend;
    // Far enough ahead for the set-up (token, keys, database) to finish before it.
    let at = std::time::SystemTime::now() + std::time::Duration::from_secs(20);
    let active_from = der::DateTime::from_system_time(at).unwrap().to_string();
    let extra =
        format!("{}[scep]\nenabled = true\n[scep.names.default]\nprofile = \"device\"\n", successor(&active_from));
    let Some(t) = TestCa::with_config(db, &extra).await else { return };
    let scep = ScepAdapter::start(t.ca.clone()).await.unwrap();
    assert!(std::time::SystemTime::now() < at, "set-up took longer than the test allows");
    let subject = |id: &str| t.ca.issuer(id).unwrap().cert.tbs_certificate.subject.to_der().unwrap();
    let spki =
        |der: &[u8]| Certificate::from_der(der).unwrap().tbs_certificate.subject_public_key_info.to_der().unwrap();
    let (ec, ec2) = (t.ca.issuer("ec").unwrap().der.clone(), t.ca.issuer("ec-2").unwrap().der.clone());

    let before = scep.ca_certs("default").await.unwrap();
    assert_eq!(issuer_name(&before.ra), subject("ec"));
    assert_eq!(before.chain[0], ec);
    assert!(!scep.refresh_ra_certificate().await.unwrap(), "a fresh RA certificate of the current CA is kept");

    tokio::time::sleep(at.duration_since(std::time::SystemTime::now()).unwrap_or_default()).await;
    let rolled = scep.ca_certs("default").await.unwrap();
    assert_eq!(rolled.ra, before.ra, "the RA certificate changes only when the job reissues it");
    assert_eq!(rolled.chain[..2], [ec2.clone(), ec.clone()], "meanwhile the chain carries the RA certificate's CA");

    assert!(scep.refresh_ra_certificate().await.unwrap(), "the successor reissues the RA certificate");
    let after = scep.ca_certs("default").await.unwrap();
    assert_eq!(issuer_name(&after.ra), subject("ec-2"));
    assert_eq!(spki(&after.ra), spki(&before.ra), "same RA key in the token");
    let encryption = after.ra_encryption.as_deref().unwrap();
    assert_eq!(issuer_name(encryption), subject("ec-2"), "the encryption certificate follows too");
    assert_eq!(spki(encryption), spki(before.ra_encryption.as_deref().unwrap()));
    assert!(!after.chain.contains(&ec), "the replaced CA has left the chain");
    assert!(!scep.refresh_ra_certificate().await.unwrap(), "and is kept from then on");
}
