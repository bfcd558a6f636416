//! A small client of the admin router for the sort, keystore and client-certificate tests:
//! requests with a token, a session cookie, a CSRF field or a TLS client chain, answers as bytes.

use std::net::SocketAddr;

use axum::{
    body::Body,
    extract::ConnectInfo,
    http::{header, HeaderMap, Method, Request, StatusCode},
    Router,
};
use privca::{
    admin::{access, auth::Role},
    ca::{IssuanceRequest, IssueOutcome, Requester},
    ledger::AdminSession,
    server::listener::ClientChain,
};
use tower::ServiceExt;

use crate::harness::TestCa;

/// What a request carries.
#[derive(Default, Clone)]
pub struct With<'a> {
    pub token: Option<&'a str>,
    pub cookie: Option<String>,
    pub json: Option<String>,
    pub form: Option<String>,
    pub chain: Option<Vec<Vec<u8>>>,
    pub headers: Vec<(&'static str, &'a str)>,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
    }
}

/// The admin listener's router (API, dashboard, metrics) over `t`.
pub fn router(t: &TestCa) -> Router {
    privca::server::routes::admin(t.ca.clone(), None)
}

pub async fn send(router: &Router, method: Method, path: &str, w: With<'_>) -> Answer {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = w.token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(c) = &w.cookie {
        req = req.header(header::COOKIE, c);
    }
    for (k, v) in &w.headers {
        req = req.header(*k, *v);
    }
    let mut req = match (w.json, w.form) {
        (Some(j), _) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(j)),
        (None, Some(f)) => req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(Body::from(f)),
        (None, None) => req.body(Body::empty()),
    }
    .unwrap();
    req.extensions_mut().insert(ConnectInfo("127.0.0.7:40000".parse::<SocketAddr>().unwrap()));
    if let Some(chain) = w.chain {
        req.extensions_mut().insert(ClientChain(std::sync::Arc::new(chain)));
    }
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap().to_vec();
    Answer { status, headers, body }
}

/// Issues a tls-server certificate for `name`, owned by `owner`; its serial.
pub async fn issue(t: &TestCa, name: &str, owner: &str) -> String {
    let csr = t.csr("ec:P-256", &format!("/CN={name}"), Some(&format!("DNS:{name}")));
    let mut req = IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap();
    req.owner = Some(owner.into());
    match t.ca.issue(req).await.unwrap() {
        IssueOutcome::Issued(c) => c.record.serial,
        IssueOutcome::Pending(_) => panic!("pending"),
    }
}

/// A token of `role` (for `owner`, role owner).
pub async fn token(t: &TestCa, role: Role, owner: Option<&str>) -> String {
    let (_, text) =
        access::create_token(&t.app.ledger, role.as_str(), 1, None, owner, None, &Requester::cli()).await.unwrap();
    text.to_string()
}

/// A user `name` of `role` with a dashboard session: (cookie header, CSRF token).
pub async fn session(t: &TestCa, name: &str, role: &str, owner: Option<&str>) -> (String, String) {
    access::create_user(&t.app.ledger, &t.app.signing, name, role, owner, None, false, &Requester::cli())
        .await
        .unwrap();
    let id = format!("session-of-{name}-{}", "x".repeat(20));
    let csrf = format!("csrf-of-{name}-{}", "y".repeat(20));
    let s = AdminSession {
        user_name: name.into(),
        csrf: csrf.clone(),
        expires_at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 + 3600,
    };
    let event = privca::audit::AuditEvent::new(privca::audit::AuditKind::AdminLogin, format!("admin:{name}"));
    t.app.ledger.create_admin_session(&privca::admin::auth::session_hash(&id), &s, &event).await.unwrap();
    (format!("{}={id}", privca::admin::auth::SESSION_COOKIE), csrf)
}

/// Audit rows of `event`.
pub async fn audit_count(t: &TestCa, event: &str) -> i64 {
    let mut conn = t.raw().await;
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE event = $1")
        .bind(event)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}
