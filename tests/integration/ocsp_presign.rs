//! The OCSP pre-signer on both databases: with its periodic sweep an hour apart, a certificate
//! committed in-process has its first response from the moment it exists (signed before and
//! committed with the certificate), and a revocation is re-signed at once (the CA's change
//! feed); the stored responses say `good`, then `revoked`. Each tick's indexed read finds only
//! what changed, and with it a revocation made by another process.

use std::time::Duration;

use privca::ca::{changes::ChangeFeed, ocsp::OcspService, IssuanceRequest, IssueOutcome, Requester, RevocationReason};
use tokio::sync::watch;

use crate::harness::{both_databases, Db, TestCa};

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

/// The background jobs over a CA with a change feed and an OCSP service, as `serve` runs them.
struct Jobs {
    stop: watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Jobs {
    async fn start(t: &TestCa) -> (privca::ca::CertificateAuthority, Jobs) {
        let (feed, changes) = ChangeFeed::channel();
        let ca = t.ca.clone().with_change_feed(feed);
        let ocsp = OcspService::start(ca.clone()).await.unwrap();
        let (stop, stop_rx) = watch::channel(false);
        let handles = privca::jobs::spawn(&t.app, &ca, &ocsp, None, changes, stop_rx).await;
        (ca, Jobs { stop, handles })
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        for j in self.handles {
            j.await.unwrap();
        }
    }
}

async fn signed_at_commit(db: Db) {
    let Some(t) = TestCa::with_config(db, "[ocsp]\ncheck_interval = \"1h\"\n").await else { return };
    let (ca, jobs) = Jobs::start(&t).await;
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

    jobs.stop().await;
}

async fn issue(ca: &privca::ca::CertificateAuthority, t: &TestCa, name: &str) -> String {
    let csr = t.csr("ec:P-256", &format!("/CN={name}"), Some(&format!("DNS:{name}")));
    let req = IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap();
    match ca.issue(req).await.unwrap() {
        IssueOutcome::Issued(c) => c.record.serial,
        IssueOutcome::Pending(_) => panic!("pending"),
    }
}

/// `ocsp_recent_work` finds each kind of due work through its index, and only what changed.
async fn recent_work(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let ledger = &t.app.ledger;
    let serials =
        |w: Vec<privca::ledger::OcspWork>| w.into_iter().map(|w| (w.serial, w.revocation_pending)).collect::<Vec<_>>();
    // No OCSP service runs: certificates are committed without a first response.
    let bare = issue(&t.ca, &t, "bare.example.test").await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (far, soon) = (now + 86_400, now + 3_600);
    assert_eq!(serials(ledger.ocsp_recent_work(now, soon, 0, now - 120, 10).await.unwrap()), [(bare.clone(), false)]);
    assert!(ledger.ocsp_recent_work(now, soon, 0, now + 1, 10).await.unwrap().is_empty(), "only recent commits");

    let answered = |serial: &str, seq: i64, next_update: i64| privca::ledger::OcspRecord {
        serial: serial.to_owned(),
        hash_alg: "sha1".into(),
        issuer_id: "ec".into(),
        revocation_seq: seq,
        this_update: now,
        next_update,
        der: vec![0x30, 0x00],
    };
    ledger.store_ocsp_response(&answered(&bare, 0, far)).await.unwrap();
    assert!(ledger.ocsp_recent_work(now, soon, 0, now - 120, 10).await.unwrap().is_empty(), "answered, fresh");
    assert_eq!(serials(ledger.ocsp_work(now, soon, 10).await.unwrap()), [], "the full sweep agrees");

    let before = ledger.revocation_counter().await.unwrap();
    t.ca.revoke(&bare, RevocationReason::KeyCompromise, None, &Requester::cli()).await.unwrap();
    let seq = ledger.revocation_counter().await.unwrap();
    assert!(seq > before);
    assert_eq!(serials(ledger.ocsp_recent_work(now, soon, before, now + 1, 10).await.unwrap()), [(bare.clone(), true)]);
    assert!(
        ledger.ocsp_recent_work(now, soon, seq, now + 1, 10).await.unwrap().is_empty(),
        "handled revocations are skipped"
    );
    assert_eq!(serials(ledger.ocsp_work(now, soon, 10).await.unwrap()), [(bare.clone(), true)]);

    ledger.store_ocsp_response(&answered(&bare, seq, now + 60)).await.unwrap();
    assert_eq!(
        serials(ledger.ocsp_recent_work(now, soon, seq, now + 1, 10).await.unwrap()),
        [(bare.clone(), false)],
        "a response that expires before the refresh point"
    );
}

/// With the full sweep minutes apart, a revocation committed by another process (no change
/// feed here) is re-signed by the next tick.
async fn tick_finds_other_revocations(db: Db) {
    let Some(t) = TestCa::with_config(db, "[ocsp]\ncheck_interval = \"100ms\"\n").await else { return };
    let (ca, jobs) = Jobs::start(&t).await;
    let serial = issue(&ca, &t, "tick.example.test").await;
    let first = stored(&t, &serial, 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // past the first (full) sweep

    t.ca.revoke(&serial, RevocationReason::Superseded, None, &Requester::cli()).await.unwrap();
    let seq = t.app.ledger.certificate_status(&serial).await.unwrap().unwrap().revocation_seq;
    let resigned = stored(&t, &serial, seq).await;
    assert_ne!(resigned.der, first.der);

    jobs.stop().await;
}

/// A certificate without a response (here: its response deleted by hand, as after a commit by
/// a process that could not sign one) gets one from the next tick, which looks back from the
/// last clean tick rather than over a fixed window.
async fn tick_finds_certificates_without_a_response(db: Db) {
    let Some(t) = TestCa::with_config(db, "[ocsp]\ncheck_interval = \"100ms\"\n").await else { return };
    let (ca, jobs) = Jobs::start(&t).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // past the first (full) sweep and a tick

    let serial = issue(&ca, &t, "bare.example.test").await;
    let first = stored(&t, &serial, 0).await;
    sqlx::query("DELETE FROM ocsp_responses WHERE serial = $1")
        .bind(&serial)
        .execute(&mut t.raw().await)
        .await
        .unwrap();
    let again = stored(&t, &serial, 0).await;
    assert!(again.this_update >= first.this_update);

    jobs.stop().await;
}

/// A request without a nonce for `serial`'s certificate (its PEM chain), built by openssl.
fn request_for(t: &TestCa, chain_pem: &str) -> privca_ocsp::ParsedRequest {
    let pems: Vec<&str> = chain_pem.split_inclusive("-----END CERTIFICATE-----\n").collect();
    let dir = t.dir.path();
    std::fs::write(dir.join("leaf.pem"), pems[0]).unwrap();
    std::fs::write(dir.join("issuer.pem"), pems[1]).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["ocsp", "-issuer", "issuer.pem", "-cert", "leaf.pem", "-no_nonce", "-reqout", "req.der"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl ocsp: {}", String::from_utf8_lossy(&out.stderr));
    privca_ocsp::request::parse(&std::fs::read(dir.join("req.der")).unwrap()).unwrap()
}

/// Whether a response says `revoked` (else `good`; anything else fails).
fn says_revoked(der: &[u8]) -> bool {
    use der::Decode;
    let response = x509_ocsp::OcspResponse::from_der(der).unwrap();
    let bytes = response.response_bytes.expect("a successful response");
    let basic = x509_ocsp::BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
    match &basic.tbs_response_data.responses[0].cert_status {
        x509_ocsp::CertStatus::Good(_) => false,
        x509_ocsp::CertStatus::Revoked(_) => true,
        other => panic!("unexpected status {other:?}"),
    }
}

/// Two responders on one ledger (two instances) with no pre-signer running (its lease holder
/// down): after a revocation made elsewhere (the CLI), neither answers `good` from its memory
/// cache once it caught up with the revocation counter, nor from the ledger's stored response,
/// which misses the revocation: the answer is signed on demand, and stored.
async fn no_instance_answers_good_for_a_revoked_certificate(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let (a, b) = (OcspService::start(t.ca.clone()).await.unwrap(), OcspService::start(t.ca.clone()).await.unwrap());
    let csr = t.csr("ec:P-256", "/CN=stale.example.test", Some("DNS:stale.example.test"));
    let req = IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap();
    let cert = match t.ca.issue(req).await.unwrap() {
        IssueOutcome::Issued(c) => c,
        IssueOutcome::Pending(_) => panic!("pending"),
    };
    let request = request_for(&t, &cert.chain_pem);
    for ocsp in [&a, &b] {
        assert!(!says_revoked(&ocsp.respond(request.clone()).await.unwrap().der), "good before");
        assert!(!says_revoked(&ocsp.respond(request.clone()).await.unwrap().der), "good, from memory");
    }

    t.ca.revoke(&cert.record.serial, RevocationReason::KeyCompromise, None, &Requester::cli()).await.unwrap();
    let seq = t.app.ledger.certificate_status(&cert.record.serial).await.unwrap().unwrap().revocation_seq;
    assert!(t.app.ledger.current_ocsp_response(&cert.record.serial, "sha1").await.unwrap().is_none(), "stale");
    for ocsp in [&a, &b] {
        ocsp.forget_revoked().await.unwrap();
        assert!(says_revoked(&ocsp.respond(request.clone()).await.unwrap().der), "revoked");
        assert!(says_revoked(&ocsp.respond(request.clone()).await.unwrap().der), "revoked, again");
    }
    let stored = t.app.ledger.current_ocsp_response(&cert.record.serial, "sha1").await.unwrap().unwrap();
    assert_eq!(stored.revocation_seq, seq, "the on-demand answer is stored");
}

both_databases!(
    no_instance_answers_good_for_a_revoked_certificate,
    signed_at_commit,
    recent_work,
    tick_finds_other_revocations,
    tick_finds_certificates_without_a_response
);
