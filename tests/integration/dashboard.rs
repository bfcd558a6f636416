//! The dashboard in process (the admin listener's router, driven with cookies like a browser):
//! login with password and TOTP (valid, wrong, reused, clock skew), the failed-login limits
//! per user and per address with one wording, the session cookie's attributes, the security
//! headers, CSRF on every form (missing or wrong: 403 and audited, nothing changed), an owner
//! seeing only its own certificates, escaping, and every page rendering.

use std::{collections::BTreeMap, net::SocketAddr};

use axum::{
    body::Body,
    extract::ConnectInfo,
    http::{header, HeaderMap, Method, Request, StatusCode},
    Router,
};
use privca::{
    admin::{access, auth::totp, dashboard},
    ca::{IssuanceRequest, IssueOutcome, Requester},
};
use tower::ServiceExt;

use crate::harness::{both_databases, Db, TestCa};

both_databases!(logins_need_the_right_code_once_and_failures_are_limited, forms_carry_csrf_and_owners_see_their_own);

const PASSWORD: &str = "correct horse battery staple";

/// A cookie jar over the admin router.
struct Client {
    router: Router,
    cookies: BTreeMap<String, String>,
    addr: SocketAddr,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).map(|v| v.to_str().unwrap()).unwrap_or("")
    }
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with(&format!("{name}=")))
    }
    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

impl Client {
    fn new(t: &TestCa, addr: &str) -> Client {
        Client {
            router: privca::server::routes::admin(t.ca.clone(), None),
            cookies: BTreeMap::new(),
            addr: addr.parse().unwrap(),
        }
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<String>) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !jar.is_empty() {
            req = req.header(header::COOKIE, jar.join("; "));
        }
        let mut req = match form {
            Some(f) => req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(Body::from(f)),
            None => req.body(Body::empty()),
        }
        .unwrap();
        req.extensions_mut().insert(ConnectInfo(self.addr));
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        for c in headers.get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
        Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    async fn get(&mut self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        self.send(Method::POST, path, Some(body)).await
    }

    /// Fills in and posts the login form.
    async fn login(&mut self, user: &str, password: &str, code: &str) -> Answer {
        let form = self.get("/ui/login").await;
        assert_eq!(form.status, StatusCode::OK);
        let token = form.csrf();
        self.post("/ui/login", &[("csrf", &token), ("user", user), ("password", password), ("code", code)]).await
    }
}

fn unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Creates `name` with `role` and the test password; returns its TOTP secret, if enrolled.
async fn user(t: &TestCa, name: &str, role: &str, owner: Option<&str>) -> Option<Vec<u8>> {
    let u = access::create_user(
        &t.app.ledger,
        &t.app.signing,
        name,
        role,
        owner,
        Some(zeroize::Zeroizing::new(PASSWORD.to_owned())),
        false,
        &Requester::cli(),
    )
    .await
    .unwrap();
    u.totp_url.map(|url| {
        let secret = url.split("secret=").nth(1).unwrap().split('&').next().unwrap().to_owned();
        totp_rs::Secret::try_from_base32(secret).unwrap().as_bytes().to_vec()
    })
}

fn assert_headers(a: &Answer) {
    let h = |n: header::HeaderName| a.headers.get(n).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert_eq!(h(header::CONTENT_SECURITY_POLICY), dashboard::CSP);
    assert!(h(header::CONTENT_SECURITY_POLICY).contains("default-src 'none'"));
    assert_eq!(h(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(h(header::REFERRER_POLICY), "no-referrer");
    assert_eq!(h(header::CACHE_CONTROL), "no-store");
    assert!(!a.body.contains("<script"), "no script on any page");
    assert!(!a.body.contains("style="), "no inline style on any page");
}

async fn audit_events(conn: &mut sqlx::AnyConnection, event: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT detail FROM audit_events WHERE event = $1 ORDER BY id")
        .bind(event)
        .fetch_all(conn)
        .await
        .unwrap()
}

async fn logins_need_the_right_code_once_and_failures_are_limited(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let secret = user(&t, "alice", "admin", None).await.expect("admins enroll TOTP");
    let mut conn = t.raw().await;
    let mut c = Client::new(&t, "192.0.2.10:5000");

    // Nothing but the login page without a session; `/` leads to the dashboard.
    assert_eq!(c.get("/").await.location(), "/ui/");
    let a = c.get("/ui/").await;
    assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/ui/login"));
    let form = c.get("/ui/login").await;
    assert_headers(&form);

    let now = unix();
    let code = totp::code_at(&secret, "alice", now).unwrap();
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    // No code, a wrong code, a code three steps away: all read the same as a wrong password.
    for (password, code) in [
        (PASSWORD, String::new()),
        (PASSWORD, wrong.clone()),
        (PASSWORD, totp::code_at(&secret, "alice", unix() + 3 * totp::STEP).unwrap()),
    ] {
        let a = c.login("alice", password, &code).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert!(a.body.contains(dashboard::login::WRONG));
        assert!(a.set_cookie("privca_session").is_none());
    }
    // The right code logs in: the session cookie is Secure, HttpOnly, SameSite=Strict.
    let a = c.login("alice", PASSWORD, &code).await;
    assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/ui/"), "{}", a.body);
    let cookie = a.set_cookie("privca_session").unwrap();
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
    assert_eq!(value.len(), 43, "32 random bytes, base64url");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admin_sessions").fetch_one(&mut conn).await.unwrap();
    assert_eq!(stored, 1);
    let raw: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admin_sessions WHERE csrf = $1 OR user_name = $1")
        .bind(&value)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(raw, 0, "the cookie value is stored hashed only");
    let home = c.get("/ui/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Overview") && home.body.contains("<svg"));
    assert_headers(&home);
    let css = c.get("/ui/static/app.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/css"));

    // Logging out ends the session; the same code does not log in twice.
    let token = home.csrf();
    let a = c.post("/ui/logout", &[("csrf", &token)]).await;
    assert_eq!(a.location(), "/ui/login");
    assert_eq!(c.get("/ui/").await.location(), "/ui/login");
    let a = c.login("alice", PASSWORD, &code).await;
    assert!(a.body.contains(dashboard::login::WRONG), "a reused code is refused");
    // One step of clock skew is accepted.
    let a = c.login("alice", PASSWORD, &totp::code_at(&secret, "alice", unix() + totp::STEP).unwrap()).await;
    assert_eq!(a.location(), "/ui/", "{}", a.body);

    // Failures were audited with user and address, never the password.
    let failed = audit_events(&mut conn, "admin-login-failed").await;
    assert_eq!(failed.len(), 4);
    for d in &failed {
        assert!(d.contains("\"alice\"") && d.contains("192.0.2.10"), "{d}");
        assert!(!d.contains(PASSWORD), "{d}");
    }
    assert_eq!(audit_events(&mut conn, "admin-login").await.len(), 2);

    // Five failures for a user: the sixth attempt is 429 even with the right password; an
    // unknown name gets the same answer in the same words.
    user(&t, "bob", "operator", None).await;
    let mut other = Client::new(&t, "192.0.2.20:5000");
    for _ in 0..dashboard::login::PER_USER {
        let a = other.login("bob", "wrong password here", "").await;
        assert!(a.body.contains(dashboard::login::WRONG));
    }
    let limited = other.login("bob", PASSWORD, "").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{}", limited.body);
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
    assert_headers(&limited);
    for _ in 0..dashboard::login::PER_USER {
        other.login("nobody", "wrong password here", "").await;
    }
    let unknown = other.login("nobody", PASSWORD, "").await;
    assert_eq!(unknown.status, StatusCode::TOO_MANY_REQUESTS);
    let detail = |b: &str| b.split("class=\"error\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert_eq!(detail(&unknown.body), detail(&limited.body));
    // Per address: 20 failures from one address over any names.
    let mut third = Client::new(&t, "192.0.2.30:5000");
    for i in 0..dashboard::login::PER_ADDRESS {
        third.login(&format!("guess{i}"), "wrong password here", "").await;
    }
    let a = third.login("bob", PASSWORD, "").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    // A user's limit holds from any address.
    let a = Client::new(&t, "192.0.2.40:5000").login("bob", PASSWORD, "").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    // A login form posted without its token is refused.
    let mut fresh = Client::new(&t, "192.0.2.50:5000");
    let a = fresh.post("/ui/login", &[("user", "alice"), ("password", PASSWORD), ("code", "000000")]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

async fn issue(t: &TestCa, profile: &str, cn: &str, dns: Option<&str>, owner: &str) -> String {
    let csr = t.csr("ec:P-256", &format!("/CN={cn}"), dns.map(|d| format!("DNS:{d}")).as_deref());
    let mut req = IssuanceRequest::from_csr(&csr, profile, Requester::cli()).unwrap();
    req.owner = Some(owner.into());
    match t.ca.issue(req).await.unwrap() {
        IssueOutcome::Issued(c) => c.record.fingerprint_sha256,
        IssueOutcome::Pending(_) => panic!("pending"),
    }
}

async fn status_of(conn: &mut sqlx::AnyConnection, fp: &str) -> String {
    sqlx::query_scalar("SELECT status FROM certificates WHERE fingerprint_sha256 = $1")
        .bind(fp)
        .fetch_one(conn)
        .await
        .unwrap()
}

async fn last_event(conn: &mut sqlx::AnyConnection) -> String {
    sqlx::query_scalar("SELECT event FROM audit_events ORDER BY id DESC LIMIT 1").fetch_one(conn).await.unwrap()
}

async fn forms_carry_csrf_and_owners_see_their_own(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let mine = issue(&t, "tls-server", "mine.example.test", Some("mine.example.test"), "team-a").await;
    let theirs = issue(&t, "tls-server", "theirs.example.test", Some("theirs.example.test"), "team-b").await;
    let xss = issue(&t, "device", "<script>alert(1)<\\/script>", None, "team-b").await;
    let mut conn = t.raw().await;
    user(&t, "olga", "owner", Some("team-a")).await;
    user(&t, "oscar", "operator", None).await;
    let admin_secret = user(&t, "ada", "admin", None).await.unwrap();

    // An owner sees its own certificates only, whatever it asks for.
    let mut olga = Client::new(&t, "192.0.2.60:5000");
    assert_eq!(olga.login("olga", PASSWORD, "").await.location(), "/ui/");
    assert_eq!(olga.get("/ui/").await.location(), "/ui/certificates");
    for path in ["/ui/certificates", "/ui/certificates?owner=team-b", "/ui/certificates?search=example"] {
        let a = olga.get(path).await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(a.body.contains("mine.example.test"), "{path}");
        assert!(!a.body.contains("theirs.example.test") && !a.body.contains(&theirs), "{path}");
    }
    let a = olga.get(&format!("/ui/certificates/{theirs}")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(last_event(&mut conn).await, "admin-refused");
    for page in ["/ui/audit", "/ui/access", "/ui/discovery"] {
        assert_eq!(olga.get(page).await.status, StatusCode::FORBIDDEN, "{page}");
    }

    // An operator revokes through the form; without the CSRF field, or with a wrong one: 403,
    // audited, nothing changed.
    let mut oscar = Client::new(&t, "192.0.2.61:5000");
    assert_eq!(oscar.login("oscar", PASSWORD, "").await.location(), "/ui/");
    let page = oscar.get(&format!("/ui/certificates/{mine}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("BEGIN CERTIFICATE") && page.body.contains("Ledger history"));
    let token = page.csrf();
    let revoke = format!("/ui/certificates/{mine}/revoke");
    for fields in [vec![("reason", "keyCompromise")], vec![("csrf", "forged"), ("reason", "keyCompromise")]] {
        let a = oscar.post(&revoke, &fields).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
        assert_headers(&a);
        assert_eq!(last_event(&mut conn).await, "admin-refused");
        let d: String = sqlx::query_scalar("SELECT detail FROM audit_events ORDER BY id DESC LIMIT 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(d.contains("CSRF"), "{d}");
        assert_eq!(status_of(&mut conn, &mine).await, "valid");
    }
    let a = oscar.post(&revoke, &[("csrf", &token), ("reason", "keyCompromise")]).await;
    assert_eq!((a.status, a.location().to_owned()), (StatusCode::SEE_OTHER, format!("/ui/certificates/{mine}")));
    assert_eq!(status_of(&mut conn, &mine).await, "revoked");
    let after = oscar.get(&format!("/ui/certificates/{mine}")).await;
    assert!(after.body.contains("badge revoked") && after.body.contains("keyCompromise"));
    let a = oscar.get("/ui/certificates?status=revoked").await;
    assert!(a.body.contains("mine.example.test") && !a.body.contains("theirs.example.test"));

    // The overview's index counts agree with the inventory's own scan.
    let ft = privca::clm::first_threshold(&t.ca.config().clm);
    let stats = t.app.ledger.inventory_stats(&ft).await.unwrap();
    let counts = t.app.ledger.status_counts(unix() as i64, &ft).await.unwrap();
    for (tier, c) in &counts {
        for s in ["valid", "expiring", "expired", "revoked", "superseded"] {
            let scanned: i64 =
                stats.counts.iter().filter(|(st, ti, _, _)| st == s && ti == tier.as_str()).map(|r| r.3).sum();
            assert_eq!(c.get(s), scanned, "{} {s}", tier.as_str());
        }
    }
    assert_eq!(counts.iter().map(|(_, c)| c.revoked).sum::<i64>(), 1);

    // A subject with markup renders inert.
    let a = oscar.get("/ui/certificates?search=alert").await;
    assert!(a.body.contains("&lt;script") && a.body.contains("alert(1)"), "{}", a.body);
    assert!(!a.body.contains("<script"));
    let a = oscar.get(&format!("/ui/certificates/{xss}")).await;
    assert!(!a.body.contains("<script") && a.body.contains("&lt;script"));
    // Operators do not read the audit log or the access list.
    assert_eq!(oscar.get("/ui/audit").await.status, StatusCode::FORBIDDEN);

    // An admin sees every page; creates a token shown once; bad filters are 400 pages.
    let mut ada = Client::new(&t, "192.0.2.62:5000");
    let code = totp::code_at(&admin_secret, "ada", unix()).unwrap();
    assert_eq!(ada.login("ada", PASSWORD, &code).await.location(), "/ui/");
    for page in [
        "/ui/",
        "/ui/certificates",
        "/ui/certificates?tier=internal&expiring_within=400&status=valid",
        "/ui/approvals",
        "/ui/approvals?status=all",
        "/ui/discovery",
        "/ui/owners",
        "/ui/audit",
        &format!("/ui/audit?serial={mine}"),
        "/ui/access",
    ] {
        let a = ada.get(page).await;
        assert_eq!(a.status, StatusCode::OK, "{page}: {}", a.body);
        assert_headers(&a);
    }
    // Nobody approves their own request; another approver decides, with a reason to deny.
    let mut ids = Vec::new();
    for name in ["gated1.example.test", "gated2.example.test"] {
        let csr = t.csr("ec:P-256", &format!("/CN={name}"), Some(&format!("DNS:{name}")));
        let by = Requester { protocol: "admin", identity: "ada".into() };
        match t.ca.issue(IssuanceRequest::from_csr(&csr, "tls-server-gated", by).unwrap()).await.unwrap() {
            IssueOutcome::Pending(id) => ids.push(id),
            IssueOutcome::Issued(_) => panic!("the gated profile issued at once"),
        }
    }
    let queue = ada.get("/ui/approvals").await;
    assert!(queue.body.contains("gated1.example.test") && queue.body.contains("Approve"));
    let token = queue.csrf();
    let a = ada.post(&format!("/ui/approvals/{}/approve", ids[0]), &[("csrf", &token)]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(last_event(&mut conn).await, "admin-refused");
    let paula_secret = user(&t, "paula", "approver", None).await.expect("approvers enroll TOTP");
    let mut paula = Client::new(&t, "192.0.2.63:5000");
    let code = totp::code_at(&paula_secret, "paula", unix()).unwrap();
    assert_eq!(paula.login("paula", PASSWORD, &code).await.location(), "/ui/");
    let token = paula.get("/ui/approvals").await.csrf();
    let a = paula.post(&format!("/ui/approvals/{}/approve", ids[0]), &[("csrf", &token)]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let a = paula.post(&format!("/ui/approvals/{}/deny", ids[1]), &[("csrf", &token), ("reason", " ")]).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = paula.post(&format!("/ui/approvals/{}/deny", ids[1]), &[("csrf", &token), ("reason", "not ours")]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let decided: Vec<(String, String)> =
        sqlx::query_as("SELECT status, COALESCE(decided_by, '') FROM approvals ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        decided,
        [("issued".to_owned(), "admin:paula".to_owned()), ("denied".to_owned(), "admin:paula".to_owned())]
    );
    assert_eq!(paula.get("/ui/access").await.status, StatusCode::FORBIDDEN, "approvers do not read the access list");

    assert_eq!(ada.get("/ui/certificates?status=bogus").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(ada.get("/ui/nowhere").await.status, StatusCode::NOT_FOUND);
    let token = ada.get("/ui/access").await.csrf();
    let a =
        ada.post("/ui/access/tokens", &[("csrf", &token), ("role", "auditor"), ("days", "1"), ("note", "ci")]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("pca_"));
    let again = ada.get("/ui/access").await;
    assert!(!again.body.contains("pca_"), "a token is shown once");
    let a = ada.post("/ui/access/users/oscar/disable", &[("csrf", &token)]).await;
    assert_eq!(a.location(), "/ui/access");
    assert_eq!(oscar.get("/ui/").await.location(), "/ui/login", "a disabled user's session ends");
    // A session is not an API token: the dashboard refuses a bearer token.
    let (_, tok) = access::create_token(&t.app.ledger, "admin", 1, None, None, None, &Requester::cli()).await.unwrap();
    let req = Request::builder()
        .uri("/ui/certificates")
        .header(header::AUTHORIZATION, format!("Bearer {}", tok.as_str()))
        .body(Body::empty())
        .unwrap();
    let resp = privca::server::routes::admin(t.ca.clone(), None).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}
