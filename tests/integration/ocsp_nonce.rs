//! OCSP nonces are the first HSM work to shed: at most `ocsp.nonce_signatures_per_second`
//! responses echo the request's nonce, and the Nonce queue has its own small capacity; a
//! request over either gets the pre-signed response without the nonce (RFC 9654 allows it),
//! never an error.

use std::{process::Command, time::Instant};

use privca::ca::{ocsp::OcspService, CertificateAuthority, IssuanceRequest, IssueOutcome, Requester};
use privca_ocsp::ParsedRequest;

use crate::harness::{Db, TestCa};

/// Issues a certificate and returns its serial and an OpenSSL-built request (with a random
/// nonce) for it.
async fn certificate_and_request(t: &TestCa, ca: &CertificateAuthority) -> (String, ParsedRequest) {
    let csr = t.csr("ec:P-256", "/CN=nonce.example.test", Some("DNS:nonce.example.test"));
    let req = IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap();
    let cert = match ca.issue(req).await.unwrap() {
        IssueOutcome::Issued(c) => c,
        IssueOutcome::Pending(_) => panic!("pending"),
    };
    let pems: Vec<&str> = cert.chain_pem.split_inclusive("-----END CERTIFICATE-----\n").collect();
    let dir = t.dir.path();
    std::fs::write(dir.join("leaf.pem"), pems[0]).unwrap();
    std::fs::write(dir.join("issuer.pem"), pems[1]).unwrap();
    let out = Command::new("openssl")
        .args(["ocsp", "-issuer", "issuer.pem", "-cert", "leaf.pem", "-reqout", "req.der"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(dir.join("req.der").exists(), "openssl ocsp: {}", String::from_utf8_lossy(&out.stderr));
    let request = privca_ocsp::request::parse(&std::fs::read(dir.join("req.der")).unwrap()).unwrap();
    assert!(request.nonce.is_some(), "openssl sends a nonce by default");
    (cert.record.serial, request)
}

fn echoes(der: &[u8], nonce: &[u8]) -> bool {
    der.windows(nonce.len()).any(|w| w == nonce)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonces_over_the_rate_get_the_presigned_response() {
    let t = TestCa::with_config(Db::Sqlite, "[ocsp]\nnonce_signatures_per_second = 3\n").await.unwrap();
    let ocsp = OcspService::start(t.ca.clone()).await.unwrap();
    let (serial, request) = certificate_and_request(&t, &t.ca).await;
    let nonce = request.nonce.clone().unwrap();
    let presigned = t.app.ledger.ocsp_response(&serial, "sha1").await.unwrap().expect("signed at commit");
    let started = Instant::now();
    let mut echoed = 0;
    for _ in 0..10 {
        let reply = ocsp.respond(request.clone()).await.unwrap();
        if echoes(&reply.der, &nonce) {
            assert!(!reply.cacheable);
            echoed += 1;
        } else {
            assert_eq!(*reply.der, presigned.der, "without the nonce: the pre-signed response");
        }
    }
    let allowed = 3.0 + 3.0 * started.elapsed().as_secs_f64();
    assert!(echoed >= 3 && f64::from(echoed) <= allowed + 1.0, "{echoed} nonces echoed, {allowed:.1} allowed");
    assert!(echoed < 10, "the rate was not applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_nonce_queue_falls_back_instead_of_failing() {
    let extra = "[hsm.queue_capacity]\nnonce = 1\n[ocsp]\nnonce_signatures_per_second = 100000\n";
    let t = TestCa::with_config(Db::Sqlite, extra).await.unwrap();
    let ocsp = OcspService::start(t.ca.clone()).await.unwrap();
    let (serial, request) = certificate_and_request(&t, &t.ca).await;
    let nonce = request.nonce.clone().unwrap();
    let presigned = t.app.ledger.ocsp_response(&serial, "sha1").await.unwrap().unwrap();
    let (mut echoed, mut fell_back) = (0, 0);
    // Bursts of 64 until one overflows the queue (on a loaded machine the signer can keep up
    // with a burst that the runtime hands it slowly).
    for _ in 0..10 {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let (ocsp, request) = (ocsp.clone(), request.clone());
            tasks.spawn(async move { ocsp.respond(request).await });
        }
        while let Some(reply) = tasks.join_next().await {
            let reply = reply.unwrap().expect("no request fails: over capacity, the nonce is left out");
            if echoes(&reply.der, &nonce) {
                echoed += 1;
            } else {
                assert_eq!(*reply.der, presigned.der);
                fell_back += 1;
            }
        }
        if fell_back > 0 {
            break;
        }
    }
    assert!(echoed > 0, "some nonces fit");
    assert!(fell_back > 0, "bursts of 64 do not fit a Nonce queue of 1 beside 2 sessions");
}
