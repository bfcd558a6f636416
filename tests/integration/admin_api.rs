//! The admin API's refusals: every route × every role (and no, revoked, expired or forged
//! credentials) against the one role table, with the audit and "nothing changed" checks; the
//! OpenAPI document lists exactly the routes this table covers; bad bodies get problem
//! documents; an owner sees only its own certificates; nobody approves their own request.

use std::collections::BTreeSet;

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
    Router,
};
use privca::{
    admin::{
        access,
        auth::{Action, Role},
        AdminState,
    },
    ca::{IssuanceRequest, IssueOutcome, Requester},
};
use tower::ServiceExt;

use crate::harness::{both_databases, Db, TestCa};

both_databases!(
    every_route_refuses_every_role_the_table_refuses,
    owners_see_their_own_and_requesters_do_not_approve,
    a_two_approver_profile_needs_two_distinct_approvers,
    an_audit_export_verifies_offline_and_catches_edits,
    metrics_need_a_token_off_loopback
);

/// What a caller presents.
enum Caller {
    Role(Role),
    Anonymous,
    Revoked,
    Expired,
    Forged,
}

struct Call {
    method: Method,
    /// The OpenAPI path template.
    template: &'static str,
    path: String,
    body: Option<serde_json::Value>,
    action: Action,
}

fn call(method: Method, template: &'static str, path: String, body: Option<serde_json::Value>, action: Action) -> Call {
    Call { method, template, path, body, action }
}

async fn send(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, String, String) {
    let mut req = Request::builder().method(method).uri(format!("/api/v1{path}"));
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b)).unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let ctype = resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
    (status, ctype, String::from_utf8_lossy(&bytes).into_owned())
}

async fn issue(t: &TestCa, name: &str, owner: &str) -> String {
    let csr = t.csr("ec:P-256", &format!("/CN={name}"), Some(&format!("DNS:{name}")));
    let mut req = IssuanceRequest::from_csr(&csr, "tls-server", Requester::cli()).unwrap();
    req.owner = Some(owner.into());
    match t.ca.issue(req).await.unwrap() {
        IssueOutcome::Issued(c) => c.record.serial,
        IssueOutcome::Pending(_) => panic!("pending"),
    }
}

fn csr_pem(t: &TestCa, name: &str) -> String {
    let der = t.csr("ec:P-256", &format!("/CN={name}"), Some(&format!("DNS:{name}")));
    der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &der).unwrap()
}

/// Row counts of the tables a refused call could have changed, and the audit row count.
async fn counts(conn: &mut sqlx::AnyConnection) -> (Vec<i64>, i64) {
    let mut v = Vec::new();
    for table in [
        "certificates",
        "admin_users",
        "admin_tokens",
        "owners",
        "approvals",
        "clm_mutes",
        "est_users",
        "acme_eab_keys",
    ] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        v.push(n);
    }
    let revoked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM certificates WHERE status = 'revoked'")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    v.push(revoked);
    let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(&mut *conn).await.unwrap();
    (v, audit)
}

async fn last_event(conn: &mut sqlx::AnyConnection) -> String {
    sqlx::query_scalar("SELECT event FROM audit_events ORDER BY id DESC LIMIT 1").fetch_one(&mut *conn).await.unwrap()
}

async fn token(t: &TestCa, role: Role, owner: Option<&str>) -> String {
    let (_, text) =
        access::create_token(&t.app.ledger, role.as_str(), 1, None, owner, None, &Requester::cli()).await.unwrap();
    text.to_string()
}

async fn every_route_refuses_every_role_the_table_refuses(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let router = Router::new().nest("/api/v1", privca::admin::api::router(AdminState { ca: t.ca.clone() }));
    let mine = issue(&t, "a.example.test", "team-a").await;
    let mut conn = t.raw().await;
    let csr_pem = csr_pem(&t, "n.example.test");

    let table = vec![
        call(Method::GET, "/certificates", "/certificates?limit=5".into(), None, Action::Read),
        call(
            Method::POST,
            "/certificates",
            "/certificates".into(),
            Some(serde_json::json!({ "csr": csr_pem, "profile": "tls-server" })),
            Action::Operate,
        ),
        call(
            Method::POST,
            "/certificates/keystore",
            "/certificates/keystore".into(),
            Some(
                serde_json::json!({ "profile": "tls-server", "names": ["k.example.test"], "password": "a long pass phrase" }),
            ),
            Action::Operate,
        ),
        call(Method::GET, "/certificates/{id}", format!("/certificates/{mine}"), None, Action::Read),
        call(Method::GET, "/certificates/{id}/chain", format!("/certificates/{mine}/chain"), None, Action::Read),
        call(
            Method::POST,
            "/certificates/{id}/revoke",
            format!("/certificates/{mine}/revoke"),
            Some(serde_json::json!({ "reason": "superseded" })),
            Action::Operate,
        ),
        call(
            Method::PATCH,
            "/inventory/{id}",
            format!("/inventory/{mine}"),
            Some(serde_json::json!({ "tags": ["web"] })),
            Action::Operate,
        ),
        call(
            Method::POST,
            "/inventory/{id}/mute",
            format!("/inventory/{mine}/mute"),
            Some(serde_json::json!({ "kind": "ack", "days": 3, "reason": "renewing" })),
            Action::Operate,
        ),
        call(Method::GET, "/owners", "/owners".into(), None, Action::Read),
        call(
            Method::PUT,
            "/owners/{name}",
            "/owners/team-c".into(),
            Some(serde_json::json!({ "kind": "team", "email": "c@example.test" })),
            Action::Enroll,
        ),
        call(Method::GET, "/clm/outbox", "/clm/outbox".into(), None, Action::Read),
        call(Method::GET, "/approvals", "/approvals?status=all".into(), None, Action::Read),
        call(Method::POST, "/approvals/{id}/approve", "/approvals/999999/approve".into(), None, Action::Decide),
        call(
            Method::POST,
            "/approvals/{id}/deny",
            "/approvals/999999/deny".into(),
            Some(serde_json::json!({ "reason": "no" })),
            Action::Decide,
        ),
        call(
            Method::POST,
            "/est/users",
            "/est/users".into(),
            Some(serde_json::json!({ "label": "nolabel", "name": "dev1" })),
            Action::Enroll,
        ),
        call(
            Method::POST,
            "/scep/challenges",
            "/scep/challenges".into(),
            Some(serde_json::json!({ "profile": "device" })),
            Action::Enroll,
        ),
        call(
            Method::POST,
            "/acme/eab-keys",
            "/acme/eab-keys".into(),
            Some(serde_json::json!({ "owner": "team-a" })),
            Action::Enroll,
        ),
        call(Method::GET, "/est/users", "/est/users".into(), None, Action::Audit),
        call(Method::GET, "/scep/challenges", "/scep/challenges".into(), None, Action::Audit),
        call(Method::GET, "/acme/eab-keys", "/acme/eab-keys".into(), None, Action::Audit),
        call(Method::GET, "/acme/accounts", "/acme/accounts?limit=5".into(), None, Action::Audit),
        call(Method::GET, "/discovery/endpoints", "/discovery/endpoints?after=a:1:".into(), None, Action::Read),
        call(Method::GET, "/audit", "/audit?limit=3".into(), None, Action::Audit),
        call(Method::GET, "/audit/verify", "/audit/verify".into(), None, Action::Audit),
        call(Method::GET, "/audit/export", "/audit/export".into(), None, Action::Audit),
        call(Method::GET, "/reports/{kind}", "/reports/access?format=csv".into(), None, Action::Audit),
        call(Method::GET, "/users", "/users".into(), None, Action::Audit),
        call(
            Method::POST,
            "/users",
            "/users".into(),
            Some(serde_json::json!({ "name": "new-user", "role": "operator" })),
            Action::Access,
        ),
        call(Method::POST, "/users/{name}/disable", "/users/nobody/disable".into(), None, Action::Access),
        call(Method::GET, "/tokens", "/tokens".into(), None, Action::Audit),
        call(
            Method::POST,
            "/tokens",
            "/tokens".into(),
            Some(serde_json::json!({ "role": "auditor", "expires_days": 1 })),
            Action::Access,
        ),
        call(Method::DELETE, "/tokens/{id}", "/tokens/0000000000000000".into(), None, Action::Access),
    ];

    // The table covers every route the API serves, and nothing else.
    let (_, doc) = privca::admin::api::parts();
    let mut served = BTreeSet::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            (Method::GET, item.get.is_some()),
            (Method::POST, item.post.is_some()),
            (Method::PUT, item.put.is_some()),
            (Method::PATCH, item.patch.is_some()),
            (Method::DELETE, item.delete.is_some()),
        ];
        for (m, present) in ops {
            if present && path != "/health" {
                served.insert(format!("{m} {path}"));
            }
        }
    }
    let covered: BTreeSet<String> = table.iter().map(|c| format!("{} {}", c.method, c.template)).collect();
    assert_eq!(served, covered, "the OpenAPI document and the role table must list the same routes");

    let mut callers: Vec<(String, Caller)> =
        Role::ALL.iter().map(|r| (r.as_str().to_owned(), Caller::Role(*r))).collect();
    callers.extend([
        ("anonymous".to_owned(), Caller::Anonymous),
        ("revoked".to_owned(), Caller::Revoked),
        ("expired".to_owned(), Caller::Expired),
        ("forged".to_owned(), Caller::Forged),
    ]);
    let mut cells = 0;
    for (label, caller) in &callers {
        let (tok, role) = match caller {
            Caller::Role(r) => (Some(token(&t, *r, (*r == Role::Owner).then_some("team-a")).await), Some(*r)),
            Caller::Anonymous => (None, None),
            Caller::Revoked => {
                let tok = token(&t, Role::Admin, None).await;
                let id = privca::admin::auth::token::parse(&tok).unwrap().0.to_owned();
                assert!(access::revoke_token(&t.app.ledger, &id, &Requester::cli()).await.unwrap());
                (Some(tok), None)
            }
            Caller::Expired => {
                let tok = token(&t, Role::Admin, None).await;
                let id = privca::admin::auth::token::parse(&tok).unwrap().0.to_owned();
                sqlx::query("UPDATE admin_tokens SET expires_at = 1 WHERE id = $1")
                    .bind(id)
                    .execute(&mut conn)
                    .await
                    .unwrap();
                (Some(tok), None)
            }
            Caller::Forged => {
                let tok = token(&t, Role::Admin, None).await;
                let (id, _) = privca::admin::auth::token::parse(&tok).unwrap();
                (Some(format!("pca_{id}_{}", "A".repeat(43))), None)
            }
        };
        for c in &table {
            cells += 1;
            let before = counts(&mut conn).await;
            let body = c.body.as_ref().map(|b| b.to_string());
            let (status, ctype, text) = send(&router, c.method.clone(), &c.path, tok.as_deref(), body).await;
            let after = counts(&mut conn).await;
            let cell = format!("{label} × {} {}: {status} {text}", c.method, c.template);
            let allowed = match role {
                None => false,
                Some(Role::Owner) if matches!(c.template, "/clm/outbox" | "/discovery/endpoints") => false,
                Some(r) => r.allows(c.action),
            };
            match (role, allowed) {
                (None, _) => {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{cell}");
                    assert_eq!(
                        after, before,
                        "an unauthenticated call changes nothing, not even the audit log: {cell}"
                    );
                }
                (Some(_), false) => {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{cell}");
                    assert_eq!(after.0, before.0, "a refusal changes nothing: {cell}");
                    assert_eq!(after.1, before.1 + 1, "a refusal is audited: {cell}");
                    assert_eq!(last_event(&mut conn).await, "admin-refused", "{cell}");
                }
                (Some(_), true) => {
                    assert!(
                        !matches!(
                            status,
                            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::INTERNAL_SERVER_ERROR
                        ),
                        "{cell}"
                    );
                    assert!(!text.contains("no such API route"), "{cell}");
                }
            }
            if !status.is_success() {
                assert_eq!(ctype, "application/problem+json", "{cell}");
                let p: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert!(p["type"].as_str().unwrap().starts_with("urn:privca:problem:"), "{cell}");
                assert_eq!(p["status"], status.as_u16(), "{cell}");
            }
        }
    }
    assert_eq!(cells, callers.len() * table.len());

    // Health answers without credentials; the document is served.
    let (status, _, _) = send(&router, Method::GET, "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, text) = send(&router, Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("\"openapi\":\"3.1"), "{}", &text[..80.min(text.len())]);

    // Bad bodies and queries: problem documents, nothing changed.
    let admin = token(&t, Role::Admin, None).await;
    let before = counts(&mut conn).await;
    for (method, path, body, want) in [
        (
            Method::POST,
            "/tokens",
            Some("{\"role\":\"auditor\",\"expires_days\":1,\"extra\":1}".to_owned()),
            StatusCode::BAD_REQUEST,
        ),
        (Method::POST, "/tokens", Some("{not json".to_owned()), StatusCode::BAD_REQUEST),
        (
            Method::POST,
            "/tokens",
            Some(format!("{{\"note\":\"{}\"}}", "x".repeat(70_000))),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (Method::GET, "/certificates?limit=x", None, StatusCode::BAD_REQUEST),
        (Method::GET, "/certificates?bogus=1", None, StatusCode::BAD_REQUEST),
        (Method::GET, "/certificates?cursor=zz", None, StatusCode::BAD_REQUEST),
        (Method::GET, "/certificates?sort=expiry", None, StatusCode::BAD_REQUEST),
        (Method::GET, "/nowhere", None, StatusCode::NOT_FOUND),
    ] {
        let (status, ctype, text) = send(&router, method, path, Some(&admin), body).await;
        assert_eq!(status, want, "{path}: {text}");
        assert_eq!(ctype, "application/problem+json", "{path}");
    }
    assert_eq!(counts(&mut conn).await.0, before.0);
}

async fn owners_see_their_own_and_requesters_do_not_approve(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let router = Router::new().nest("/api/v1", privca::admin::api::router(AdminState { ca: t.ca.clone() }));
    let mine = issue(&t, "mine.example.test", "team-a").await;
    let mut conn = t.raw().await;
    let theirs = issue(&t, "theirs.example.test", "team-b").await;
    let owner = token(&t, Role::Owner, Some("team-a")).await;

    let (status, _, text) = send(&router, Method::GET, "/certificates?limit=100", Some(&owner), None).await;
    assert_eq!(status, StatusCode::OK);
    let page: serde_json::Value = serde_json::from_str(&text).unwrap();
    let serials: Vec<&str> = page["items"].as_array().unwrap().iter().map(|i| i["serial"].as_str().unwrap()).collect();
    assert!(serials.contains(&mine.as_str()) && !serials.contains(&theirs.as_str()), "{serials:?}");
    // Asking for another owner's list still yields only its own.
    let (_, _, text) = send(&router, Method::GET, "/certificates?owner=team-b", Some(&owner), None).await;
    assert!(!text.contains(&theirs));
    for (method, path, body) in [
        (Method::GET, format!("/certificates/{theirs}"), None),
        (Method::POST, format!("/certificates/{theirs}/revoke"), Some("{}".to_owned())),
        (Method::PATCH, format!("/inventory/{theirs}"), Some("{\"tags\":[\"x\"]}".to_owned())),
        (Method::PATCH, format!("/inventory/{mine}"), Some("{\"owner\":\"team-b\"}".to_owned())),
    ] {
        let (status, _, text) = send(&router, method, &path, Some(&owner), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {text}");
    }
    let (status, _, text) = send(
        &router,
        Method::POST,
        &format!("/certificates/{mine}/revoke"),
        Some(&owner),
        Some("{\"reason\":\"keyCompromise\"}".into()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("\"revoked\""), "{text}");

    // A gated request made through the API waits; its requester cannot approve it; another
    // approver can, and the certificate is issued.
    access::create_user(&t.app.ledger, &t.app.signing, "alice", "admin", None, None, false, &Requester::cli())
        .await
        .unwrap();
    let (_, alice) =
        access::create_token(&t.app.ledger, "admin", 1, Some("alice"), None, None, &Requester::cli()).await.unwrap();
    let approver = token(&t, Role::Approver, None).await;
    let csr_pem = csr_pem(&t, "gated.example.test");
    let body = serde_json::json!({ "csr": csr_pem, "profile": "tls-server-gated" }).to_string();
    let (status, _, text) = send(&router, Method::POST, "/certificates", Some(&alice), Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    let id = serde_json::from_str::<serde_json::Value>(&text).unwrap()["approval_id"].as_i64().unwrap();
    let (status, _, text) = send(&router, Method::POST, &format!("/approvals/{id}/approve"), Some(&alice), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert_eq!(last_event(&mut conn).await, "admin-refused");
    let (status, _, text) =
        send(&router, Method::POST, &format!("/approvals/{id}/approve"), Some(&approver), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("BEGIN CERTIFICATE"));
    let (status, _, _) = send(&router, Method::POST, &format!("/approvals/{id}/approve"), Some(&approver), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // A disabled user's token stops working.
    access::set_disabled(&t.app.ledger, "alice", true, &Requester::cli()).await.unwrap();
    let (status, _, _) = send(&router, Method::GET, "/certificates", Some(&alice), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn a_two_approver_profile_needs_two_distinct_approvers(db: Db) {
    let profiles = tempfile::tempdir().unwrap();
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/profiles");
    let gated = std::fs::read_to_string(conf.join("tls-server-gated.toml")).unwrap();
    std::fs::write(
        profiles.path().join("tls-server.toml"),
        std::fs::read_to_string(conf.join("tls-server.toml")).unwrap(),
    )
    .unwrap();
    let two = gated
        .replace("name = \"tls-server-gated\"", "name = \"two-approvers\"")
        .replace("approval = true", "approvers = 2");
    std::fs::write(profiles.path().join("two-approvers.toml"), two).unwrap();
    let Some(t) = TestCa::with_profiles(db, profiles.path()).await else { return };
    let router = Router::new().nest("/api/v1", privca::admin::api::router(AdminState { ca: t.ca.clone() }));
    let operator = token(&t, Role::Operator, None).await;
    let (first, second) = (token(&t, Role::Approver, None).await, token(&t, Role::Approver, None).await);
    let body = serde_json::json!({ "csr": csr_pem(&t, "two.example.test"), "profile": "two-approvers" }).to_string();
    let (status, _, text) = send(&router, Method::POST, "/certificates", Some(&operator), Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    let id = serde_json::from_str::<serde_json::Value>(&text).unwrap()["approval_id"].as_i64().unwrap();
    let approve = format!("/approvals/{id}/approve");
    let (status, _, text) = send(&router, Method::POST, &approve, Some(&first), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    assert!(text.contains("\"waiting\"") && text.contains("\"required\":2"), "{text}");
    assert_eq!(t.app.ledger.count_certificates().await.unwrap(), 0);
    // The same approver again is not a second approver.
    let (status, _, text) = send(&router, Method::POST, &approve, Some(&first), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    let (status, _, text) = send(&router, Method::POST, &approve, Some(&second), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("BEGIN CERTIFICATE"), "{text}");
    assert_eq!(t.app.ledger.count_certificates().await.unwrap(), 1);
    let mut conn = t.raw().await;
    let approvals: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE event = 'approval-approved'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(approvals, 2, "each approver's decision is audited");
}

async fn an_audit_export_verifies_offline_and_catches_edits(db: Db) {
    use privca::audit::export::{verify_file, AuditExport};
    let Some(t) = TestCa::new(db).await else { return };
    let router = Router::new().nest("/api/v1", privca::admin::api::router(AdminState { ca: t.ca.clone() }));
    for name in ["e1.example.test", "e2.example.test"] {
        issue(&t, name, "team-a").await;
    }
    privca::audit::seal(&t.app.ledger, &t.app.signing).await.unwrap();
    let auditor = token(&t, Role::Auditor, None).await;
    let (status, _, text) = send(&router, Method::GET, "/audit/export", Some(&auditor), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let doc: AuditExport = serde_json::from_str(&text).unwrap();
    assert!(doc.rows.len() >= 4 && !doc.checkpoints.is_empty(), "{} rows", doc.rows.len());
    let report = verify_file(&doc);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.rows as usize, doc.rows.len());

    // An edited row, a forged checkpoint signature, a dropped row: each is found.
    let mut edited = doc.clone();
    edited.rows[1].detail = edited.rows[1].detail.replace('}', ",\"x\":1}");
    assert!(!verify_file(&edited).findings.is_empty());
    let mut forged = doc.clone();
    let last = forged.checkpoints.len() - 1;
    forged.checkpoints[last].signed_at += 1;
    assert!(verify_file(&forged).findings.iter().any(|f| f.0.contains("signature")));
    let mut dropped = doc.clone();
    dropped.rows.remove(1);
    assert!(!verify_file(&dropped).findings.is_empty());
    // A tail no checkpoint covers is reported.
    let mut tail = doc.clone();
    tail.checkpoints.clear();
    assert!(verify_file(&tail).findings.iter().any(|f| f.0.contains("no signature covers")));
    // A partial range, from the middle, verifies too.
    let (status, _, text) = send(&router, Method::GET, "/audit/export?from=2", Some(&auditor), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let part: AuditExport = serde_json::from_str(&text).unwrap();
    assert!(verify_file(&part).findings.is_empty());

    // The compliance report over the API: CSV by default, PDF on request.
    let (status, ctype, text) = send(&router, Method::GET, "/reports/compliance", Some(&auditor), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(ctype.starts_with("text/csv") && text.contains("issued"), "{ctype}: {text}");
    let (status, ctype, text) =
        send(&router, Method::GET, "/reports/compliance?format=pdf", Some(&auditor), None).await;
    assert_eq!((status, ctype.as_str()), (StatusCode::OK, "application/pdf"));
    assert!(text.starts_with("%PDF-"));
    let (status, _, _) = send(&router, Method::GET, "/reports/compliance?from=2026-02-30", Some(&auditor), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn metrics_need_a_token_off_loopback(db: Db) {
    let Some(t) = TestCa::with_config(db, "[server]\nadmin_listen = \"0.0.0.0:9443\"\n").await else { return };
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle();
    let router = privca::server::routes::admin(t.ca.clone(), Some(handle));
    let metrics = token(&t, Role::Metrics, None).await;
    let operator = token(&t, Role::Operator, None).await;
    let get = |tok: Option<String>| {
        let router = router.clone();
        async move {
            let mut req = Request::builder().uri("/metrics");
            if let Some(tok) = tok {
                req = req.header(header::AUTHORIZATION, format!("Bearer {tok}"));
            }
            router.oneshot(req.body(Body::empty()).unwrap()).await.unwrap().status()
        }
    };
    assert_eq!(get(None).await, StatusCode::UNAUTHORIZED, "never anonymous on a non-loopback address");
    assert_eq!(get(Some(operator.clone())).await, StatusCode::FORBIDDEN);
    assert_eq!(get(Some(metrics.clone())).await, StatusCode::OK);
    // A metrics token reads nothing else.
    let api = Router::new().nest("/api/v1", privca::admin::api::router(AdminState { ca: t.ca.clone() }));
    let (status, _, _) = send(&api, Method::GET, "/certificates", Some(&metrics), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
