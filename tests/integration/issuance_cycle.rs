//! The issuance cycle end to end with a real SoftHSM2 token: every profile, refusals that
//! change nothing but the audit log, the approval gate, validity capping and key protection.

use std::path::Path;

use der::Decode;
use privca::{
    ca::{IssuanceRequest, IssueOutcome, Requester},
    error::ErrorKind,
};
use x509_cert::Certificate;

use crate::harness::{both_databases, Db, TestCa};

const PROFILES: [(&str, &str, Option<&str>); 6] = [
    ("tls-server", "/CN=www.example.test", Some("DNS:www.example.test,DNS:api.example.test,IP:127.0.0.1")),
    ("tls-client", "/CN=client1.example.test", Some("DNS:client1.example.test")),
    ("device", "/CN=router1.example.test", Some("DNS:router1.example.test")),
    ("vpn-gateway", "/CN=vpn.example.test", Some("DNS:vpn.example.test,IP:127.0.0.2")),
    ("code-signing", "/CN=Example Release Signing/O=Example Corp", None),
    ("email", "/CN=Alice Example", Some("email:alice@example.test")),
];

async fn failed_audit_rows(t: &TestCa) -> usize {
    let mut rows = t.app.ledger.unsealed_audit(10_000).await.unwrap();
    rows.extend(t.app.ledger.sealed_audit(0, 10_000).await.unwrap());
    rows.iter().filter(|r| r.event == "failed").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_issues_a_chain_openssl_accepts() {
    let t = TestCa::new(Db::Sqlite).await.unwrap();
    for (profile, subject, san) in PROFILES {
        for key in ["ec:P-256", "rsa:2048"] {
            let csr = t.csr(key, subject, san);
            let req = IssuanceRequest::from_csr(&csr, profile, Requester::cli()).unwrap();
            let IssueOutcome::Issued(cert) = t.ca.issue(req).await.unwrap() else { panic!("pending") };
            let (ok, out) = t.openssl_verify(&cert.chain_pem);
            assert!(ok, "{profile} {key}: {out}");
            let leaf = Certificate::from_der(&cert.record.der).unwrap();
            let ids: Vec<String> =
                leaf.tbs_certificate.extensions.unwrap().iter().map(|e| e.extn_id.to_string()).collect();
            for oid in ["2.5.29.14", "2.5.29.35", "2.5.29.31", "1.3.6.1.5.5.7.1.1", "2.5.29.15", "2.5.29.19"] {
                assert!(ids.iter().any(|i| i == oid), "{profile}: extension {oid} missing");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_csr_signature_is_refused_and_audited() {
    let t = TestCa::new(Db::Sqlite).await.unwrap();
    let mut csr = t.csr("ec:P-256", "/CN=x.example.test", Some("DNS:x.example.test"));
    let before = t.app.ledger.count_certificates().await.unwrap();
    let last = csr.len() - 2;
    csr[last] ^= 0x01;
    let err = IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest);
    assert!(err.detail().contains("signature"), "{err}");
    assert_eq!(t.app.ledger.count_certificates().await.unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_key_and_forbidden_names_are_refused_with_the_rule() {
    let t = TestCa::new(Db::Sqlite).await.unwrap();
    let before = t.app.ledger.count_certificates().await.unwrap();
    let failed_before = failed_audit_rows(&t).await;
    let cases = [
        ("rsa:1024", "tls-server", Some("DNS:weak.example.test"), "RSA-1024 is too weak"),
        ("ec:P-256", "tls-server", Some("DNS:ok.example.test,email:a@example.test"), "san.types"),
        ("ec:P-256", "device", Some("DNS:*.example.test"), "wildcards are not allowed"),
        ("ec:P-256", "email", None, "san.required"),
        ("ec:P-256", "code-signing", None, "subject.require"),
        ("ec:P-256", "no-such-profile", Some("DNS:a.example.test"), "unknown profile"),
    ];
    for (key, profile, san, rule) in cases {
        let subject = if profile == "code-signing" { "/CN=Only CN" } else { "/CN=x" };
        let csr = t.csr(key, subject, san);
        let req = match IssuanceRequest::from_csr(&csr, profile, Requester::cli()) {
            Ok(r) => r,
            Err(e) => panic!("{profile}: CSR refused early: {e}"),
        };
        let err = t.ca.issue(req).await.unwrap_err();
        assert!(err.detail().contains(rule), "{profile} {key}: expected `{rule}` in `{err}`");
        assert_eq!(err.kind(), ErrorKind::PolicyViolation, "{err}");
    }
    assert_eq!(t.app.ledger.count_certificates().await.unwrap(), before);
    assert_eq!(failed_audit_rows(&t).await, failed_before + cases.len());
}

/// The leaf's subjectAltName as openssl prints it (empty without one).
fn openssl_san(t: &TestCa, der: &[u8]) -> String {
    let path = t.dir.path().join("leaf.der");
    std::fs::write(&path, der).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["x509", "-inform", "DER", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().skip(1).map(str::trim).collect::<Vec<_>>().join(",")
}

both_databases!(cn_only_device_requests);

/// What devices send (a subject CN and nothing else) on the device profiles: a host-name CN gets
/// a DNS SAN, an IP address an IP SAN, a serial number or MAC address none; tls-server still
/// refuses, naming the rule and the way out, and changes nothing but the audit log.
async fn cn_only_device_requests(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let cases = [
        ("device", "/CN=router7.example.test", "DNS:router7.example.test"),
        ("vpn-gateway", "/CN=192.0.2.7", "IP Address:192.0.2.7"),
        ("device", "/CN=FTX1234W0AB", ""),
        ("device", "/CN=00:1a:2b:3c:4d:5e", ""),
    ];
    for (profile, subject, san) in cases {
        for key in ["ec:P-256", "rsa:2048"] {
            let req = IssuanceRequest::from_csr(&t.csr(key, subject, None), profile, Requester::cli()).unwrap();
            let IssueOutcome::Issued(cert) = t.ca.issue(req).await.unwrap() else { panic!("pending") };
            let (ok, out) = t.openssl_verify(&cert.chain_pem);
            assert!(ok, "{profile} {subject} {key}: {out}");
            assert_eq!(openssl_san(&t, &cert.record.der), san, "{profile} {subject}");
            assert_eq!(cert.record.subject, format!("CN={}", &subject[4..]));
        }
    }
    let before = t.app.ledger.count_certificates().await.unwrap();
    let failed_before = failed_audit_rows(&t).await;
    let csr = t.csr("ec:P-256", "/CN=www.example.test", None);
    let err = t.ca.issue(IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PolicyViolation);
    assert_eq!(
        err.detail(),
        "profile tls-server requires at least one subjectAltName (dns or ip) (san.required): add one to the request"
    );
    assert_eq!(t.app.ledger.count_certificates().await.unwrap(), before);
    assert_eq!(failed_audit_rows(&t).await, failed_before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_gate_holds_then_issues() {
    let profiles = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/profiles");
    for f in ["tls-server.toml", "code-signing.toml"] {
        let text = std::fs::read_to_string(src.join(f)).unwrap();
        std::fs::write(profiles.path().join(f), text.replace("approval = false", "approval = true")).unwrap();
    }
    let t = TestCa::with_profiles(Db::Sqlite, profiles.path()).await.unwrap();
    let csr = t.csr("ec:P-256", "/CN=Rel/O=Example Corp", None);
    let req = IssuanceRequest::from_csr(&csr, "code-signing", Requester::cli()).unwrap();
    let IssueOutcome::Pending(id) = t.ca.issue(req.clone()).await.unwrap() else { panic!("not held") };
    assert_eq!(t.app.ledger.count_certificates().await.unwrap(), 0, "held, not issued");
    let IssueOutcome::Pending(other) = t.ca.issue(req).await.unwrap() else { panic!("not held") };
    let privca::ca::Approved::Issued(cert) = t.ca.approve(id, &Requester::cli()).await.unwrap() else {
        panic!("one approver suffices")
    };
    assert!(t.openssl_verify(&cert.chain_pem).0);
    let a = t.app.ledger.approval(id).await.unwrap().unwrap();
    assert_eq!(a.serial.as_deref(), Some(cert.record.serial.as_str()));
    assert!(t.ca.approve(id, &Requester::cli()).await.is_err(), "approving twice");
    t.ca.deny(other, &Requester::cli(), "duplicate").await.unwrap();
    assert!(t.ca.approve(other, &Requester::cli()).await.is_err(), "denied stays denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_validity_is_capped_at_the_issuer() {
    let profiles = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/profiles/tls-server.toml");
    let text = std::fs::read_to_string(src).unwrap().replace("validity = \"90d\"", "validity = \"50y\"");
    std::fs::write(profiles.path().join("tls-server.toml"), text).unwrap();
    let t = TestCa::with_profiles(Db::Sqlite, profiles.path()).await.unwrap();
    let csr = t.csr("ec:P-256", "/CN=long.example.test", Some("DNS:long.example.test"));
    let req = IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap();
    let IssueOutcome::Issued(cert) = t.ca.issue(req).await.unwrap() else { panic!() };
    let issuer = t.ca.issuer("ec").unwrap();
    let issuer_end = issuer.not_after.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert_eq!(cert.record.not_after, issuer_end);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_keys_are_always_sensitive_and_never_extractable() {
    let t = TestCa::new(Db::Sqlite).await.unwrap();
    for label in ["privca-root", "privca-issuer-ec", "privca-issuer-rsa", "privca-audit", "privca-tls"] {
        assert_eq!(t.app.token.key_protection(label).unwrap(), (true, true), "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_bootstrap_changes_nothing() {
    let t = TestCa::new(Db::Sqlite).await.unwrap();
    let root = std::fs::read(t.dir.path().join("root.pem")).unwrap();
    let report = t.app.bootstrap(false).await.unwrap();
    assert!(report.generated_keys.is_empty() && report.created_certificates.is_empty());
    assert_eq!(std::fs::read(t.dir.path().join("root.pem")).unwrap(), root);
}

/// `renewal_reuse_key = false` (tls-server) refuses a renewal with the renewed certificate's
/// key and takes a new key; `true` (device) takes either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_reuses_the_key_only_where_the_profile_allows_it() {
    let t = TestCa::new(Db::Sqlite).await.unwrap();
    for (profile, reuse) in [("tls-server", false), ("device", true)] {
        let (subject, san) = ("/CN=renew.example.test", Some("DNS:renew.example.test"));
        let csr = t.csr("ec:P-256", subject, san);
        let req = IssuanceRequest::from_csr(&csr, profile, Requester::cli()).unwrap();
        let IssueOutcome::Issued(first) = t.ca.issue(req).await.unwrap() else { panic!("pending") };
        let renewal = |csr: &[u8]| {
            let mut req = IssuanceRequest::from_csr(csr, profile, Requester::cli()).unwrap();
            req.renews = Some(first.record.serial.clone());
            req
        };
        let same_key = t.ca.issue(renewal(&csr)).await;
        if reuse {
            assert!(matches!(same_key, Ok(IssueOutcome::Issued(_))), "{profile}");
        } else {
            let Err(err) = same_key else { panic!("{profile}: the same key is refused") };
            assert_eq!(err.kind(), ErrorKind::PolicyViolation, "{profile}: {err}");
            assert!(err.detail().contains("reuse the key"), "{err}");
        }
        let new_key = t.ca.issue(renewal(&t.csr("ec:P-256", subject, san))).await.unwrap();
        assert!(matches!(new_key, IssueOutcome::Issued(_)), "{profile}");
    }
}
