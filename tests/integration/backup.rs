//! Backup and restore on both databases: issue, back up, revoke and issue more, publish CRLs,
//! restore (later changes read from the ledger being replaced), then check that the revocation
//! made after the backup holds, the serial issued after it is never reused, CRL numbers went on
//! from where they were, and the audit chain verifies. Without a source of later changes the
//! restore refuses and changes nothing.

use privca::{
    backup::{self, restore::RestoreOptions},
    ca::{IssuanceRequest, IssueOutcome, Requester, RevocationReason},
    config::Config,
    ledger::{CertStatus, Ledger},
};

use crate::harness::{both_databases, Db, TestCa};

both_databases!(a_restore_keeps_what_happened_after_the_backup);

async fn issue(t: &TestCa, name: &str) -> String {
    let csr = t.csr("ec:P-256", &format!("/CN={name}"), Some(&format!("DNS:{name}")));
    match t.ca.issue(IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap()).await.unwrap() {
        IssueOutcome::Issued(c) => c.record.serial,
        IssueOutcome::Pending(_) => panic!("pending"),
    }
}

async fn a_restore_keeps_what_happened_after_the_backup(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let before = issue(&t, "before.example.test").await;
    t.ca.publish_crl("ec", false).await.unwrap();
    t.app.seal().await;
    let out = t.dir.path().join("backup");
    let m = backup::backup(&t.app, &out).await.unwrap();
    assert_eq!(m.high_water.certificates, 1);
    assert!(backup::read_manifest(&out).is_ok());

    // After the backup: a revocation, a new certificate, more CRLs.
    t.ca.revoke(&before, RevocationReason::KeyCompromise, None, &Requester::cli()).await.unwrap();
    let after = issue(&t, "after.example.test").await;
    let mut last_crl = 0;
    for _ in 0..3 {
        last_crl = t.ca.publish_crl("ec", false).await.unwrap().number;
    }
    t.app.seal().await;
    t.app.ledger.close().await;

    let config = Config::load(&t.dir.path().join("privca.toml"), Some(t.dir.path().to_owned())).unwrap();
    let opts = RestoreOptions { from: out.clone(), ..Default::default() };
    let report = backup::restore::restore(config, &opts).await.unwrap();
    assert_eq!(report.source, "the current ledger");
    assert_eq!(report.revocations, vec![before.clone()]);
    assert_eq!(report.lost_serials, vec![after.clone()]);
    assert!(report.crl_numbers.iter().any(|(ca, n)| ca == "ec" && *n >= last_crl), "{:?}", report.crl_numbers);

    let ledger = Ledger::connect(&t.db_url, 2).await.unwrap();
    let cert = ledger.certificate(&before).await.unwrap().unwrap();
    assert_eq!(cert.status, CertStatus::Revoked, "the revocation made after the backup holds");
    assert_eq!(cert.revocation_reason.as_deref(), Some("keyCompromise"));
    assert!(ledger.certificate(&after).await.unwrap().is_none());
    assert_eq!(ledger.reservation_state(&after).await.unwrap().as_deref(), Some("aborted"), "never reused");
    let hw = ledger.high_water().await.unwrap();
    assert!(hw.crl_numbers.iter().any(|(ca, n)| ca == "ec" && *n >= last_crl), "{:?}", hw.crl_numbers);
    let spki = t.app.signing.key_info(privca::audit::CHECKPOINT_KEY).unwrap().spki_der;
    privca::audit::seal(&ledger, &t.app.signing).await.unwrap();
    let verified = privca::audit::verify(&ledger, &spki).await.unwrap();
    assert!(verified.findings.is_empty(), "{:?}", verified.findings);
    ledger.close().await;

    // A second restore of the same backup, with the ledger now restored, is still consistent;
    // with no ledger and no audit export it refuses and writes nothing.
    if db == Db::Sqlite {
        std::fs::rename(t.dir.path().join("privca.db"), t.dir.path().join("moved.db")).unwrap();
        let config = Config::load(&t.dir.path().join("privca.toml"), Some(t.dir.path().to_owned())).unwrap();
        let refused = backup::restore::restore(config, &opts).await.unwrap_err();
        assert!(refused.to_string().contains("nothing tells what happened"), "{refused}");
        assert!(!t.dir.path().join("privca.db").exists(), "a refused restore writes nothing");
    }
}
