//! ACME accounts across instances: three ACME routers, each over its own `AcmeAdapter` (its own
//! in-memory copies of accounts) and one ledger, as several `privca serve` processes on one
//! PostgreSQL are. A key rollover, a contact change and a deactivation answered by one
//! instance are seen by the others on their very next request.
//!
//! Every adapter runs in the shared-ledger mode (`AcmeAdapter::new(ca, false)`, what
//! `privca serve` picks on PostgreSQL: nonces and account checks in the ledger), on SQLite too.

use axum::{
    body::Body,
    http::{Request, StatusCode},
    Router,
};
use base64ct::{Base64UrlUnpadded, Encoding};
use privca::adapters::acme::AcmeAdapter;
use privca_acme::AcmeState;
use ring::{
    rand::SystemRandom,
    signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::harness::{both_databases, Db, TestCa};

const ORIGIN: &str = "https://127.0.0.1:8443";

/// An ACME client key (ES256).
struct Key(EcdsaKeyPair);

impl Key {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Self(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap())
    }

    fn jwk(&self) -> Value {
        let p = self.0.public_key().as_ref();
        let enc = Base64UrlUnpadded::encode_string;
        json!({"crv": "P-256", "kty": "EC", "x": enc(&p[1..33]), "y": enc(&p[33..])})
    }

    /// A flattened JWS; `header` gets `alg`.
    fn sign(&self, mut header: Value, payload: &[u8]) -> Value {
        header["alg"] = json!("ES256");
        let protected = Base64UrlUnpadded::encode_string(header.to_string().as_bytes());
        let payload = Base64UrlUnpadded::encode_string(payload);
        let sig = self.0.sign(&SystemRandom::new(), format!("{protected}.{payload}").as_bytes()).unwrap();
        json!({"protected": protected, "payload": payload, "signature": Base64UrlUnpadded::encode_string(sig.as_ref())})
    }
}

/// One instance: an ACME router over its own adapter, with the nonce key all instances share.
async fn instance(tc: &TestCa) -> Router {
    let built = privca::adapters::acme::state(&tc.ca).await.unwrap().unwrap();
    let state = AcmeState::new(AcmeAdapter::new(tc.ca.clone(), false), built.settings, &[7; 32], built.validator);
    Router::new().nest("/acme", privca_acme::router::router(state))
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, Option<String>, Value) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, location, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn nonce(router: &Router) -> String {
    let resp = router.clone().oneshot(Request::get("/acme/new-nonce").body(Body::empty()).unwrap()).await.unwrap();
    resp.headers()["replay-nonce"].to_str().unwrap().to_owned()
}

/// Who signs: the account URL (`kid`) or the key itself (`jwk`).
enum By<'a> {
    Kid(&'a str),
    Jwk,
}

/// POSTs `payload` to `path` on `router`, signed by `key`.
async fn post(
    router: &Router,
    path: &str,
    key: &Key,
    by: By<'_>,
    payload: &[u8],
) -> (StatusCode, Option<String>, Value) {
    let url = format!("{ORIGIN}{path}");
    let mut header = json!({"nonce": nonce(router).await, "url": url});
    match by {
        By::Kid(kid) => header["kid"] = json!(kid),
        By::Jwk => header["jwk"] = key.jwk(),
    }
    let body = key.sign(header, payload).to_string();
    let req = Request::post(path).header("content-type", "application/jose+json").body(Body::from(body)).unwrap();
    send(router, req).await
}

fn problem(body: &Value) -> &str {
    body["type"].as_str().unwrap_or_default()
}

async fn account_changes_are_seen_by_every_instance(db: Db) {
    let Some(tc) = TestCa::new(db).await else { return };
    let (a, b, c) = (instance(&tc).await, instance(&tc).await, instance(&tc).await);
    let (old, new) = (Key::new(), Key::new());

    let created = json!({"termsOfServiceAgreed": true, "contact": ["mailto:old@example.com"]}).to_string();
    let (status, kid, body) = post(&a, "/acme/new-account", &old, By::Jwk, created.as_bytes()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let kid = kid.unwrap();
    let account_path = kid.strip_prefix(ORIGIN).unwrap().to_owned();
    // Every instance reads the account and keeps its copy (old key).
    for router in [&a, &b, &c] {
        let (status, _, body) = post(router, &account_path, &old, By::Kid(&kid), b"").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // Key rollover (§7.3.5) answered by instance A.
    let inner_payload = json!({"account": kid, "oldKey": old.jwk()}).to_string();
    let inner =
        new.sign(json!({"jwk": new.jwk(), "url": format!("{ORIGIN}/acme/key-change")}), inner_payload.as_bytes());
    let (status, _, body) = post(&a, "/acme/key-change", &old, By::Kid(&kid), inner.to_string().as_bytes()).await;
    assert_eq!(status, StatusCode::OK, "key change: {body}");

    // B still holds the old key: a request signed with the new one is checked against the
    // ledger's key and served (a new order, as a client does right after a rollover).
    let order = json!({"identifiers": [{"type": "dns", "value": "cluster.example.com"}]}).to_string();
    let (status, _, body) = post(&b, "/acme/new-order", &new, By::Kid(&kid), order.as_bytes()).await;
    assert_eq!(status, StatusCode::CREATED, "new key refused by an instance with a stale copy: {body}");
    // C still holds the old key: a request signed with the old key is refused.
    let (status, _, body) = post(&c, &account_path, &old, By::Kid(&kid), b"").await;
    assert_eq!((status, problem(&body)), (StatusCode::FORBIDDEN, "urn:ietf:params:acme:error:unauthorized"), "{body}");
    // So is one signed with the old key on B, which now holds the new key.
    let (status, _, body) = post(&b, &account_path, &old, By::Kid(&kid), b"").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "old key accepted after a rollover: {body}");
    // A key the account never had is refused with the signature error, on every instance.
    let stranger = Key::new();
    for router in [&a, &b, &c] {
        let (status, _, body) = post(router, &account_path, &stranger, By::Kid(&kid), b"").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["detail"], "JWS signature does not verify", "{body}");
    }
    // The new key works everywhere.
    for router in [&a, &b, &c] {
        let (status, _, body) = post(router, &account_path, &new, By::Kid(&kid), b"").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["contact"], json!(["mailto:old@example.com"]));
    }

    // A contact change on B is what A and C answer next (and B reads its copy again).
    let contact = json!({"contact": ["mailto:new@example.com"]}).to_string();
    let (status, _, body) = post(&b, &account_path, &new, By::Kid(&kid), contact.as_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for router in [&a, &b, &c] {
        let (status, _, body) = post(router, &account_path, &new, By::Kid(&kid), b"").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["contact"], json!(["mailto:new@example.com"]), "stale contact served");
    }

    // A deactivation on C: A and B refuse the account's next request.
    let deactivate = json!({"status": "deactivated"}).to_string();
    let (status, _, body) = post(&c, &account_path, &new, By::Kid(&kid), deactivate.as_bytes()).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("deactivated")), "{body}");
    for router in [&a, &b] {
        let (status, _, body) = post(router, "/acme/new-order", &new, By::Kid(&kid), order.as_bytes()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "deactivated account served: {body}");
        assert_eq!(body["detail"], "account is deactivated", "{body}");
    }
}

/// A rollover elsewhere followed by a deactivation elsewhere: an instance whose copy has the
/// old key and `valid` refuses the new key's request as deactivated, not as a bad signature
/// and never serves it.
async fn a_rolled_over_then_deactivated_account_is_refused(db: Db) {
    let Some(tc) = TestCa::new(db).await else { return };
    let (a, b) = (instance(&tc).await, instance(&tc).await);
    let (old, new) = (Key::new(), Key::new());
    let created = json!({"termsOfServiceAgreed": true}).to_string();
    let (status, kid, body) = post(&a, "/acme/new-account", &old, By::Jwk, created.as_bytes()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let kid = kid.unwrap();
    let account_path = kid.strip_prefix(ORIGIN).unwrap().to_owned();
    let (status, _, body) = post(&b, &account_path, &old, By::Kid(&kid), b"").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let inner_payload = json!({"account": kid, "oldKey": old.jwk()}).to_string();
    let inner =
        new.sign(json!({"jwk": new.jwk(), "url": format!("{ORIGIN}/acme/key-change")}), inner_payload.as_bytes());
    let (status, _, body) = post(&a, "/acme/key-change", &old, By::Kid(&kid), inner.to_string().as_bytes()).await;
    assert_eq!(status, StatusCode::OK, "key change: {body}");
    let deactivate = json!({"status": "deactivated"}).to_string();
    let (status, _, body) = post(&a, &account_path, &new, By::Kid(&kid), deactivate.as_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, _, body) = post(&b, &account_path, &new, By::Kid(&kid), b"").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["detail"], "account is deactivated", "{body}");
}

both_databases!(account_changes_are_seen_by_every_instance, a_rolled_over_then_deactivated_account_is_refused);
