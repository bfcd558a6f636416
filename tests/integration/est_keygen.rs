//! `/serverkeygen` whose answer cannot be built after issuance: the EST adapter's undo revokes
//! the certificate nobody received (cessationOfOperation, through the single revocation path)
//! and audits why.

use der::Decode;
use privca::{adapters::est::EstAdapter, ledger::CertStatus};
use privca_est::{EnrollRequest, EstBackend, Identity, KeygenOutcome};
use x509_cert::Certificate;

use crate::harness::{both_databases, Db, TestCa};

both_databases!(an_undeliverable_serverkeygen_certificate_is_revoked_and_audited);

const EST: &str = "[est]\nenabled = true\n[est.labels.default]\nprofile = \"device\"\n";

async fn an_undeliverable_serverkeygen_certificate_is_revoked_and_audited(db: Db) {
    let Some(t) = TestCa::with_config(db, EST).await else { return };
    let est = EstAdapter::new(t.ca.clone(), Vec::new()).unwrap();
    let request = EnrollRequest {
        label: "default".into(),
        identity: Identity::Basic { user: "dev1".into() },
        csr_der: t.csr("ec:P-256", "/CN=router9.example.test", None),
        renews: None,
    };
    let KeygenOutcome::Issued { cert_der, .. } = est.server_keygen(request).await.unwrap() else { panic!("pending") };
    Certificate::from_der(&cert_der).unwrap();
    let fingerprint = hex::encode(ring::digest::digest(&ring::digest::SHA256, &cert_der));
    let record = t.app.ledger.certificate_by_fingerprint(&fingerprint).await.unwrap().expect("in the ledger");
    assert_eq!(record.status, CertStatus::Valid);
    let serial = record.serial;

    est.undeliverable("default", &cert_der, "SignedData: the HSM failed").await.unwrap();

    let record = t.app.ledger.certificate(&serial).await.unwrap().unwrap();
    assert_eq!(record.status, CertStatus::Revoked);
    assert_eq!(record.revocation_reason.as_deref(), Some("cessationOfOperation"));
    let mut rows = t.app.ledger.unsealed_audit(10_000).await.unwrap();
    rows.extend(t.app.ledger.sealed_audit(0, 10_000).await.unwrap());
    let rows: Vec<_> = rows.into_iter().filter(|r| r.serial.as_deref() == Some(serial.as_str())).collect();
    let failed = rows.iter().find(|r| r.event == "failed").expect("a failed row says why");
    let detail: serde_json::Value = serde_json::from_str(&failed.detail).unwrap();
    assert_eq!(detail["stage"], "est-serverkeygen-delivery");
    assert_eq!(detail["error"], "SignedData: the HSM failed");
    let revoked = rows.iter().find(|r| r.event == "revoked").expect("a revoked row");
    assert_eq!(revoked.actor, "system:privca");
    assert!(revoked.detail.contains("cessationOfOperation"), "{}", revoked.detail);

    // Idempotent; a certificate the ledger does not know is an error and changes nothing.
    est.undeliverable("default", &cert_der, "again").await.unwrap();
    let before = t.app.ledger.unsealed_audit(10_000).await.unwrap().len();
    assert!(est.undeliverable("default", b"not ours", "x").await.is_err());
    assert_eq!(t.app.ledger.unsealed_audit(10_000).await.unwrap().len(), before);
}
