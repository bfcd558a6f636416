//! Copies of one SCEP transaction with a one-time challenge, through the port, as two instances
//! would see them when a client's PKCSReq reaches both in the same millisecond: one
//! certificate between them, the other copy answered with the same certificate or PENDING
//! (then the same certificate on CertPoll), never a refusal; another transaction presenting the
//! used challenge is refused. On an approval profile both copies are PENDING on one approval
//! request.

use std::{process::Command, time::Duration};

use privca::{
    adapters::scep::{new_challenge, ScepAdapter},
    ca::Requester,
};
use privca_scep::{FailInfo, Outcome, PkiRequest, ScepBackend, ScepError};
use sqlx::Row;

use crate::harness::{both_databases, Db, TestCa};

both_databases!(copies_of_a_transaction_share_a_one_time_challenge, copies_on_an_approval_profile_share_one_request);

const SCEP: &str = "[scep]\nenabled = true\n[scep.names.default]\nprofile = \"device\"\n\
                    [scep.names.gated]\nprofile = \"device-gated\"\n";

/// A one-time challenge for `profile`.
async fn challenge(t: &TestCa, profile: &str) -> String {
    let by = Requester { protocol: "admin", identity: "test".into() };
    new_challenge(&t.ca, profile, None, Duration::from_secs(3600), 1, &by).await.unwrap()
}

/// `openssl req` CSR (DER, P-256) for `cn` carrying the challengePassword `challenge`.
fn csr(t: &TestCa, cn: &str, challenge: &str) -> Vec<u8> {
    let dir = t.dir.path();
    let config = dir.join(format!("{cn}.cnf"));
    std::fs::write(
        &config,
        format!(
            "[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n[dn]\nCN = {cn}\n\
             [attrs]\nchallengePassword = {challenge}\n"
        ),
    )
    .unwrap();
    let out = dir.join(format!("{cn}.der"));
    let status = Command::new("openssl")
        .args(["req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-outform", "DER"])
        .arg("-config")
        .arg(&config)
        .arg("-keyout")
        .arg(dir.join(format!("{cn}.key")))
        .arg("-out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success(), "openssl req: {}", String::from_utf8_lossy(&status.stderr));
    std::fs::read(out).unwrap()
}

fn pkcs_req(name: &str, transaction_id: &str, csr_der: Vec<u8>) -> PkiRequest {
    PkiRequest {
        name: name.into(),
        transaction_id: transaction_id.into(),
        csr_der,
        signer_cert_der: Vec::new(),
        renewal: false,
    }
}

/// Both copies of `request` at once, each on a task of its own.
async fn twice(scep: &ScepAdapter, request: &PkiRequest) -> [Result<Outcome, ScepError>; 2] {
    let copy = |r: PkiRequest| {
        let scep = scep.clone();
        tokio::spawn(async move { scep.enroll(r).await })
    };
    let (a, b) = tokio::join!(copy(request.clone()), copy(request.clone()));
    [a.unwrap(), b.unwrap()]
}

async fn count(t: &TestCa, table: &str, requester: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table} WHERE requester = $1")))
        .bind(requester)
        .fetch_one(&mut t.raw().await)
        .await
        .unwrap()
        .get("n")
}

fn refused(outcome: Result<Outcome, ScepError>) -> bool {
    matches!(outcome, Err(ScepError::Fail(FailInfo::BadRequest, ref m)) if m.contains("challenge password"))
}

async fn copies_of_a_transaction_share_a_one_time_challenge(db: Db) {
    let Some(t) = TestCa::with_config(db, SCEP).await else { return };
    let scep = ScepAdapter::start(t.ca.clone()).await.unwrap();
    for round in 0..5 {
        let ch = challenge(&t, "device").await;
        let tx = format!("race{round}");
        let request = pkcs_req("default", &tx, csr(&t, &format!("race{round}.example.test"), &ch));
        let answers = twice(&scep, &request).await;
        let mut issued = Vec::new();
        for answer in &answers {
            match answer {
                Ok(Outcome::Success { certs, .. }) => issued.push(certs[0].clone()),
                Ok(Outcome::Pending) => {}
                other => panic!("round {round}: a copy got {other:?}"),
            }
        }
        assert!(!issued.is_empty(), "round {round}: no copy got the certificate: {answers:?}");
        assert!(issued.iter().all(|c| *c == issued[0]), "round {round}: two certificates");
        match scep.poll("default", &tx).await {
            Ok(Outcome::Success { certs, .. }) => assert_eq!(certs[0], issued[0], "round {round}: CertPoll"),
            other => panic!("round {round}: CertPoll got {other:?}"),
        }
        match scep.enroll(request.clone()).await {
            Ok(Outcome::Success { certs, .. }) => assert_eq!(certs[0], issued[0], "round {round}: retransmission"),
            other => panic!("round {round}: a retransmission got {other:?}"),
        }
        assert_eq!(count(&t, "certificates", &format!("scep:default/{tx}")).await, 1, "round {round}");
        // Another transaction (a new key, a new transactionID) with the used challenge.
        let other = pkcs_req("default", &format!("other{round}"), csr(&t, &format!("o{round}.example.test"), &ch));
        assert!(refused(scep.enroll(other).await), "round {round}: another transaction got the used challenge");
        assert_eq!(count(&t, "certificates", &format!("scep:default/other{round}")).await, 0);
    }
}

async fn copies_on_an_approval_profile_share_one_request(db: Db) {
    let Some(t) = TestCa::with_config(db, SCEP).await else { return };
    let scep = ScepAdapter::start(t.ca.clone()).await.unwrap();
    for round in 0..3 {
        let ch = challenge(&t, "device-gated").await;
        let tx = format!("gated{round}");
        let request = pkcs_req("gated", &tx, csr(&t, &format!("gated{round}.example.test"), &ch));
        let answers = twice(&scep, &request).await;
        assert!(answers.iter().all(|a| matches!(a, Ok(Outcome::Pending))), "round {round}: {answers:?}");
        assert!(matches!(scep.poll("gated", &tx).await, Ok(Outcome::Pending)), "round {round}: CertPoll");
        assert_eq!(count(&t, "approvals", &format!("scep:gated/{tx}")).await, 1, "round {round}: one approval request");
        let other = pkcs_req("gated", &format!("other{round}"), csr(&t, &format!("og{round}.example.test"), &ch));
        assert!(refused(scep.enroll(other).await), "round {round}: another transaction got the used challenge");
    }
}
