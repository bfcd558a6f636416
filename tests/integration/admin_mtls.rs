//! Client-certificate login on the admin router (issue 26), with `[admin] client_ca` and
//! `[admin.client_certs]` set: a verified certificate mapped to an enabled user is that user on
//! the API (and needs `X-Requested-With` to change something); an unmapped, unverified or
//! disabled one is 401 and audited, past the per-address limit 429 and no longer written down;
//! no certificate changes
//! nothing; on the dashboard the certificate opens a session. The TLS side (the listener asks
//! for a certificate, curl presents it) is `interop/admin/mtls.sh`.

use axum::http::{Method, StatusCode};
use privca::{admin::access, ca::Requester};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

use crate::{
    admin_client::{audit_count, router, send, With},
    harness::{both_databases, Db, TestCa},
};

both_databases!(a_mapped_client_certificate_logs_in_and_others_are_refused);

fn params(cn: &str, ca: bool) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::OrganizationName, "Example");
    p.distinguished_name.push(DnType::CommonName, cn);
    if ca {
        p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    } else {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    p
}

async fn a_mapped_client_certificate_logs_in_and_others_are_refused(db: Db) {
    let pki = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let ca_params = params("admin client CA", true);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let leaf = |cn: &str| params(cn, false).signed_by(&KeyPair::generate().unwrap(), &issuer).unwrap().der().to_vec();
    let (alice, mallory) = (leaf("alice"), leaf("mallory"));
    let rogue = params("alice", false).self_signed(&KeyPair::generate().unwrap()).unwrap().der().to_vec();
    let ca_file = pki.path().join("client-ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let extra = format!(
        "[admin]\nclient_ca = \"{}\"\n[admin.client_certs]\nalice = \"subject:CN=alice,O=Example\"\n",
        ca_file.display()
    );
    let Some(t) = TestCa::with_config(db, &extra).await else { return };
    access::create_user(&t.app.ledger, &t.app.signing, "alice", "operator", None, None, false, &Requester::cli())
        .await
        .unwrap();
    let admin = router(&t);
    let with = |chain: &[u8]| With { chain: Some(vec![chain.to_vec()]), ..Default::default() };

    // Alice's certificate is alice, operator.
    let a = send(&admin, Method::GET, "/api/v1/certificates?limit=1", with(&alice)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let a = send(&admin, Method::GET, "/api/v1/users", with(&alice)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "an operator does not read the access list");
    // Changing something needs X-Requested-With.
    let body =
        serde_json::json!({ "profile": "tls-server", "names": ["mtls.example.test"], "password": "x".repeat(16) });
    let refused = audit_count(&t, "admin-refused").await;
    let mut w = with(&alice);
    w.json = Some(body.to_string());
    let a = send(&admin, Method::POST, "/api/v1/certificates/keystore", w.clone()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text());
    assert!(a.text().contains("X-Requested-With"));
    assert_eq!(audit_count(&t, "admin-refused").await, refused + 1);
    w.headers = vec![("x-requested-with", "curl")];
    let a = send(&admin, Method::POST, "/api/v1/certificates/keystore", w).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let mut conn = t.raw().await;
    let requester: String = sqlx::query_scalar("SELECT requester FROM certificates WHERE serial = $1")
        .bind(a.header("x-privca-serial"))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(requester, "admin:alice");

    // Unmapped and unverified certificates: 401, audited with the method and fingerprint.
    for (what, chain) in [("unmapped", &mallory), ("unverified", &rogue)] {
        let failed = audit_count(&t, "admin-login-failed").await;
        let a = send(&admin, Method::GET, "/api/v1/certificates", with(chain)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(a.header("content-type"), "application/problem+json");
        assert_eq!(audit_count(&t, "admin-login-failed").await, failed + 1, "{what}");
        let detail: String = sqlx::query_scalar("SELECT detail FROM audit_events ORDER BY id DESC LIMIT 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let fp = hex::encode(ring::digest::digest(&ring::digest::SHA256, chain));
        assert!(detail.contains("client-certificate") && detail.contains(&fp), "{what}: {detail}");
    }
    // No certificate, no credentials: 401, nothing written.
    let before = audit_count(&t, "admin-login-failed").await;
    let a = send(&admin, Method::GET, "/api/v1/certificates", With::default()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(audit_count(&t, "admin-login-failed").await, before);

    // The dashboard: the certificate button shows only with a certificate, and logs in.
    let form = send(&admin, Method::GET, "/ui/login", with(&alice)).await;
    assert!(form.text().contains("Log in with your client certificate"));
    let plain = send(&admin, Method::GET, "/ui/login", With::default()).await;
    assert!(!plain.text().contains("Log in with your client certificate"));
    let login_cookie = form.header("set-cookie").split(';').next().unwrap().to_owned();
    let csrf = form.text().split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let post = |chain: &[u8]| With {
        cookie: Some(login_cookie.clone()),
        form: Some(format!("csrf={csrf}&code=")),
        chain: Some(vec![chain.to_vec()]),
        ..Default::default()
    };
    let a = send(&admin, Method::POST, "/ui/login/certificate", post(&mallory)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.text().contains("logs nobody in"));
    let logins = audit_count(&t, "admin-login").await;
    let a = send(&admin, Method::POST, "/ui/login/certificate", post(&alice)).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text());
    let session = a.header("set-cookie");
    assert!(session.starts_with("privca_session=") && session.contains("HttpOnly"), "{session}");
    assert_eq!(audit_count(&t, "admin-login").await, logins + 1);
    let cookie = session.split(';').next().unwrap().to_owned();
    let a = send(&admin, Method::GET, "/ui/certificates", With { cookie: Some(cookie), ..Default::default() }).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.text().contains("alice (operator)"));

    // A disabled user's certificate logs in no more.
    access::set_disabled(&t.app.ledger, "alice", true, &Requester::cli()).await.unwrap();
    let a = send(&admin, Method::GET, "/api/v1/certificates", with(&alice)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // Past the per-address limit of failures: 429, right certificate or not.
    access::set_disabled(&t.app.ledger, "alice", false, &Requester::cli()).await.unwrap();
    for _ in 0..privca::admin::dashboard::login::PER_ADDRESS {
        send(&admin, Method::GET, "/api/v1/certificates", with(&mallory)).await;
    }
    let a = send(&admin, Method::GET, "/api/v1/certificates", with(&alice)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text());
    // From then on nothing more is written.
    let failed = audit_count(&t, "admin-login-failed").await;
    for _ in 0..5 {
        let a = send(&admin, Method::GET, "/api/v1/certificates", with(&mallory)).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(audit_count(&t, "admin-login-failed").await, failed);
}
