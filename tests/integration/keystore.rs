//! Issuance with a server-generated key as a PKCS#12 (issue 26), through the API and the
//! dashboard: OpenSSL opens the PKCS#12 with the password (PBES2 with PBKDF2-HMAC-SHA256 and
//! AES-256-CBC, MAC SHA-256) and its key matches its certificate; the issuance is audited with
//! the caller as requester; the key and the password are nowhere in the ledger; a role that may
//! not issue gets 403 and nothing changes; an owner gets a certificate of its own; short
//! passwords, profiles behind approval and unknown profiles are 400 with nothing issued.

use std::{path::Path, process::Command};

use axum::http::{Method, StatusCode};
use privca::admin::auth::Role;

use crate::{
    admin_client::{audit_count, router, send, session, token, Answer, With},
    harness::{both_databases, Db, TestCa},
};

both_databases!(a_keystore_opens_with_its_password_and_its_key_is_kept_nowhere);

const PASSWORD: &str = "keystore pass phrase 26";

async fn certificates(t: &TestCa) -> i64 {
    let mut conn = t.raw().await;
    sqlx::query_scalar("SELECT COUNT(*) FROM certificates").fetch_one(&mut conn).await.unwrap()
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Opens `p12` with OpenSSL: its `-info` text, and the private key's raw bytes after checking
/// that the key is the certificate's.
fn open(dir: &Path, name: &str, p12: &[u8]) -> (String, Vec<u8>) {
    let file = dir.join(format!("{name}.p12"));
    std::fs::write(&file, p12).unwrap();
    let f = file.to_str().unwrap();
    let pass = format!("pass:{PASSWORD}");
    let (ok, info) = openssl(&["pkcs12", "-info", "-nodes", "-passin", &pass, "-in", f]);
    assert!(ok, "{info}");
    let (ok, wrong) = openssl(&["pkcs12", "-info", "-nodes", "-passin", "pass:not the password", "-in", f]);
    assert!(!ok, "a wrong password opens nothing: {wrong}");
    let key = dir.join(format!("{name}.key"));
    let cert = dir.join(format!("{name}.crt"));
    let (ok, out) =
        openssl(&["pkcs12", "-in", f, "-passin", &pass, "-nocerts", "-nodes", "-out", key.to_str().unwrap()]);
    assert!(ok, "{out}");
    let (ok, out) =
        openssl(&["pkcs12", "-in", f, "-passin", &pass, "-clcerts", "-nokeys", "-out", cert.to_str().unwrap()]);
    assert!(ok, "{out}");
    let (_, from_key) = openssl(&["pkey", "-in", key.to_str().unwrap(), "-pubout"]);
    let (_, from_cert) = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-pubkey"]);
    assert!(from_key.contains("BEGIN PUBLIC KEY") && from_key == from_cert, "{from_key}\n{from_cert}");
    let (_, text) = openssl(&["pkey", "-in", key.to_str().unwrap(), "-noout", "-text"]);
    let hex: String = text
        .split("priv:")
        .nth(1)
        .unwrap()
        .split("pub:")
        .next()
        .unwrap()
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
    (info, hex::decode(hex).unwrap())
}

async fn keystore(api: &axum::Router, token: &str, body: serde_json::Value) -> Answer {
    send(
        api,
        Method::POST,
        "/api/v1/certificates/keystore",
        With { token: Some(token), json: Some(body.to_string()), ..Default::default() },
    )
    .await
}

async fn a_keystore_opens_with_its_password_and_its_key_is_kept_nowhere(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let api = router(&t);
    let dir = tempfile::tempdir().unwrap();
    let operator = token(&t, Role::Operator, None).await;

    let body = serde_json::json!({
        "profile": "tls-server", "names": ["ks.example.test", "127.0.0.9"], "owner": "team-k", "password": PASSWORD,
    });
    let a = keystore(&api, &operator, body.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    assert_eq!(a.header("content-type"), "application/x-pkcs12");
    let serial = a.header("x-privca-serial");
    assert!(a.header("content-disposition").contains(&format!("{serial}.p12")));
    let (info, secret) = open(dir.path(), "api", &a.body);
    assert!(info.contains("MAC: sha256"), "{info}");
    assert!(info.contains("PBES2, PBKDF2, AES-256-CBC"), "{info}");
    assert!(info.contains("PRF hmacWithSHA256"), "{info}");
    assert!(info.contains("subject=CN = ks.example.test"), "{info}");
    assert!(info.contains("test issuer EC"), "the chain above the leaf: {info}");

    // Issued through the cycle, audited with the caller as requester, owned as asked.
    let mut conn = t.raw().await;
    let (owner, requester): (String, String) =
        sqlx::query_as("SELECT owner, requester FROM certificates WHERE serial = $1")
            .bind(&serial)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(owner, "team-k");
    assert!(requester.starts_with("admin:token:"), "{requester}");
    let events: Vec<String> = sqlx::query_scalar("SELECT event FROM audit_events WHERE serial = $1 ORDER BY id")
        .bind(&serial)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(events.contains(&"reserve".to_owned()) && events.contains(&"committed".to_owned()), "{events:?}");

    // Neither the key nor the password in the ledger.
    let details: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit_events").fetch_all(&mut conn).await.unwrap();
    let key_hex = hex::encode(&secret);
    for d in &details {
        assert!(!d.contains(PASSWORD) && !d.contains(&key_hex), "{d}");
    }
    if db == Db::Sqlite {
        let mut bytes = Vec::new();
        for f in ["privca.db", "privca.db-wal"] {
            bytes.extend(std::fs::read(t.dir.path().join(f)).unwrap_or_default());
        }
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_slice()), "the private key is in the SQLite file");
        assert!(!bytes.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()), "the password is in the SQLite file");
    }

    // An owner gets a certificate of its own, whatever it names.
    let owner_token = token(&t, Role::Owner, Some("team-a")).await;
    let mut b = body.clone();
    b["owner"] = "team-b".into();
    b["names"] = serde_json::json!(["own.example.test"]);
    let a = keystore(&api, &owner_token, b).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let owner: String = sqlx::query_scalar("SELECT owner FROM certificates WHERE serial = $1")
        .bind(a.header("x-privca-serial"))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(owner, "team-a");

    // Roles that may not issue: 403, audited, nothing issued.
    for role in [Role::Auditor, Role::Approver, Role::Metrics] {
        let tok = token(&t, role, None).await;
        let (n, refused) = (certificates(&t).await, audit_count(&t, "admin-refused").await);
        let a = keystore(&api, &tok, body.clone()).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{role}: {}", a.text());
        assert_eq!(certificates(&t).await, n, "{role}");
        assert_eq!(audit_count(&t, "admin-refused").await, refused + 1, "{role}");
    }
    // Bad requests: 400, nothing issued.
    let n = certificates(&t).await;
    for (patch, why) in [
        (serde_json::json!({ "password": "short" }), "password"),
        (serde_json::json!({ "profile": "tls-server-gated" }), "approval"),
        (serde_json::json!({ "profile": "nope" }), "unknown profile"),
        (serde_json::json!({ "key": "rsa-2048" }), "ecdsa"),
        (serde_json::json!({ "names": [], "common_name": null }), "name the certificate"),
    ] {
        let mut b = body.clone();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        let a = keystore(&api, &operator, b).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{why}: {}", a.text());
        assert!(a.text().contains(why), "{why}: {}", a.text());
    }
    assert_eq!(certificates(&t).await, n);

    // The dashboard: the form, then the download; CSRF and roles as everywhere.
    let (cookie, csrf) = session(&t, "kim", "operator", None).await;
    let ui = With { cookie: Some(cookie.clone()), ..Default::default() };
    let a = send(&api, Method::GET, "/ui/keystore", ui.clone()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.text().contains("name=\"password2\"") && a.text().contains("tls-server"), "{}", a.text());
    assert!(!a.text().contains("value=\"tls-server-gated\""), "profiles behind approval are not offered");
    let form = |csrf: &str, again: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("csrf", csrf),
                ("profile", "tls-server"),
                ("names", "ui.example.test, 127.0.0.10"),
                ("common_name", ""),
                ("owner", "team-ui"),
                ("key", "ecdsa-p384"),
                ("password", PASSWORD),
                ("password2", again),
            ])
            .finish()
    };
    let post = |f: String| {
        send(
            &api,
            Method::POST,
            "/ui/keystore",
            With { cookie: Some(cookie.clone()), form: Some(f), ..Default::default() },
        )
    };
    let a = post(form(&csrf, PASSWORD)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.header("content-type"), "application/x-pkcs12");
    let (info, _) = open(dir.path(), "ui", &a.body);
    assert!(info.contains("subject=CN = ui.example.test"), "{info}");
    let (_, text) = openssl(&["x509", "-in", dir.path().join("ui.crt").to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("NIST CURVE: P-384") && text.contains("IP Address:127.0.0.10"), "{text}");
    let n = certificates(&t).await;
    let a = post(form(&csrf, "another pass phrase")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.text().contains("passwords differ"));
    let a = post(form("forged", PASSWORD)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(certificates(&t).await, n);
    let (auditor, auditor_csrf) = session(&t, "aude", "auditor", None).await;
    let a = send(&api, Method::GET, "/ui/keystore", With { cookie: Some(auditor.clone()), ..Default::default() }).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = send(
        &api,
        Method::POST,
        "/ui/keystore",
        With { cookie: Some(auditor), form: Some(form(&auditor_csrf, PASSWORD)), ..Default::default() },
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(certificates(&t).await, n);
}
