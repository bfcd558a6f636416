//! Dependency outages on both databases (issue 28 §2): the HSM returning `CKR_DEVICE_ERROR`
//! (a fault-injecting signer in front of the real SoftHSM2 token), and on PostgreSQL the
//! ledger's connections terminated by the server. Requests fail with "unavailable" (each
//! protocol maps it to its own retry-later answer), the health check names the dependency,
//! nothing is left half-written, and service resumes without a restart once the dependency is
//! back. (A real stopped PostgreSQL, a full disk under SQLite and a vanished token directory are
//! in `interop/outage/outage.sh`.)

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use cryptoki::{context::Function, error::RvError};
use privca::{
    adapters::est::EstAdapter,
    ca::{health::Status, CertificateAuthority, IssuanceRequest, IssueOutcome, Requester},
    error::ErrorKind,
    signer::{KeyInfo, Pkcs11Error, Signer, SignerError, SigningAlgorithm, SigningService},
};
use privca_est::{EnrollRequest, EstBackend, EstError, Identity};
use sqlx::Row;
use zeroize::Zeroizing;

use crate::harness::{both_databases, Db, TestCa};

both_databases!(a_failing_hsm_fails_fast_writes_nothing_and_recovers);

/// The real token, or `CKR_DEVICE_ERROR` from every call while `down` is set.
struct FaultyToken {
    inner: Arc<dyn Signer>,
    down: AtomicBool,
}

impl FaultyToken {
    fn check(&self, function: Function) -> Result<(), SignerError> {
        if self.down.load(Ordering::SeqCst) {
            let source = cryptoki::error::Error::Pkcs11(RvError::DeviceError, function);
            return Err(SignerError::Pkcs11(Pkcs11Error::Call { context: "injected fault", source }));
        }
        Ok(())
    }
}

impl Signer for FaultyToken {
    fn sign(&self, key: &str, algorithm: SigningAlgorithm, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.check(Function::Sign)?;
        self.inner.sign(key, algorithm, message)
    }

    fn key_info(&self, key: &str) -> Result<KeyInfo, SignerError> {
        self.inner.key_info(key)
    }

    fn decrypt(&self, key: &str, ciphertext: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.check(Function::Decrypt)?;
        self.inner.decrypt(key, ciphertext)
    }

    fn encrypt_secret(&self, key: &str, iv: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.check(Function::Encrypt)?;
        self.inner.encrypt_secret(key, iv, aad, plaintext)
    }

    fn decrypt_secret(
        &self,
        key: &str,
        iv: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SignerError> {
        self.check(Function::Decrypt)?;
        self.inner.decrypt_secret(key, iv, aad, ciphertext)
    }
}

fn request(t: &TestCa, name: &str) -> IssuanceRequest {
    let csr = t.csr("ec:P-256", &format!("/CN={name}"), Some(&format!("DNS:{name}")));
    IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap()
}

/// (reservations by state, certificates) in the ledger.
async fn counts(t: &TestCa) -> (Vec<(String, i64)>, i64) {
    let mut raw = t.raw().await;
    let states = sqlx::query("SELECT state, COUNT(*) AS n FROM reservations GROUP BY state ORDER BY state")
        .fetch_all(&mut raw)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>("state"), r.get::<i64, _>("n")))
        .collect();
    let certs: i64 = sqlx::query("SELECT COUNT(*) AS n FROM certificates").fetch_one(&mut raw).await.unwrap().get("n");
    (states, certs)
}

/// Waits out the health probe's reuse interval (one second) so the next check probes again.
async fn next_probe() {
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
}

async fn a_failing_hsm_fails_fast_writes_nothing_and_recovers(db: Db) {
    let est_config = "[est]\nenabled = true\n[est.labels.default]\nprofile = \"device\"\n";
    let Some(t) = TestCa::with_config(db, est_config).await else { return };
    let token = Arc::new(FaultyToken { inner: t.app.token.clone(), down: AtomicBool::new(false) });
    let signing = SigningService::new(token.clone(), 2);
    let ca = CertificateAuthority::open(t.app.config.clone(), t.app.ledger.clone(), signing).await.unwrap();
    assert!(matches!(ca.issue(request(&t, "before.example.test")).await.unwrap(), IssueOutcome::Issued(_)));
    assert!(ca.health().await.is_up());
    let before = counts(&t).await;

    token.down.store(true, Ordering::SeqCst);
    let Err(e) = ca.issue(request(&t, "during.example.test")).await else { panic!("issued while the HSM fails") };
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    // EST answers 503 (with Retry-After, see privca-est's EstError tests).
    let est = EstAdapter::new(ca.clone(), Vec::new()).unwrap();
    let enroll = EnrollRequest {
        label: "default".into(),
        identity: Identity::Basic { user: "dev1".into() },
        csr_der: t.csr("ec:P-256", "/CN=router1.example.test", None),
        renews: None,
    };
    assert_eq!(est.enroll(enroll.clone()).await.err(), Some(EstError::Unavailable));
    next_probe().await;
    let health = ca.health().await;
    assert_eq!((health.ledger, health.hsm), (Status::Up, Status::Down));
    assert_eq!(health.text(), "unavailable: hsm\nledger: ok\nhsm: down\n");

    // Nothing half-written: the failed attempts' reservations are aborted, no certificate row.
    let (states, certs) = counts(&t).await;
    assert_eq!(certs, before.1, "no certificate was stored while the HSM failed");
    assert!(!states.iter().any(|(s, _)| s == "reserved"), "a reservation was left open: {states:?}");
    assert_eq!(states.iter().find(|(s, _)| s == "aborted").map(|(_, n)| *n), Some(2), "{states:?}");
    let mut raw = t.raw().await;
    let failed: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE event = 'failed'")
        .fetch_one(&mut raw)
        .await
        .unwrap()
        .get("n");
    assert!(failed >= 2, "every failed signature is audited ({failed})");

    // Back without a restart.
    token.down.store(false, Ordering::SeqCst);
    next_probe().await;
    assert!(ca.health().await.is_up());
    assert!(matches!(ca.issue(request(&t, "after.example.test")).await.unwrap(), IssueOutcome::Issued(_)));
    assert!(est.enroll(enroll).await.is_ok());
}

/// PostgreSQL terminates every connection of the ledger (`pg_terminate_backend`, as a failover
/// or an operator does): the units of work that find a dead connection fail as "unavailable",
/// the connections are replaced, and issuance goes on without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_postgres_connections_are_replaced() {
    let Some(t) = TestCa::new(Db::Postgres).await else { return };
    for i in 0..4 {
        t.ca.issue(request(&t, &format!("warm{i}.example.test"))).await.unwrap();
    }
    let mut raw = t.raw().await;
    let killed: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) AS k",
    )
    .fetch_one(&mut raw)
    .await
    .unwrap()
    .get("n");
    assert!(killed >= 1, "the ledger had no connection to terminate");
    let mut failures = 0;
    for i in 0..6 {
        match t.ca.issue(request(&t, &format!("after{i}.example.test"))).await {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
                failures += 1;
            }
        }
    }
    assert!(failures <= 2, "{failures} of 6 issuances failed after the connections were dropped");
    assert!(t.ca.health().await.ledger.is_up());
    let open: i64 = sqlx::query("SELECT COUNT(*) AS n FROM reservations WHERE state = 'reserved'")
        .fetch_one(&mut raw)
        .await
        .unwrap()
        .get("n");
    assert_eq!(open, 0, "a reservation was left open");
}
