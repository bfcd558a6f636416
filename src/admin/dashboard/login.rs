//! `/ui/login` and `/ui/logout`. A login checks the password (bounded argon2, a decoy hash for
//! unknown names) and, for `admin` and `approver` or anyone with TOTP enrolled, a TOTP code
//! whose time step the ledger accepts once. Every wrong answer reads the same, whatever was
//! wrong; failures are counted per user name and per client address over
//! [`WINDOW`] seconds and audited (never the password); past [`PER_USER`] or
//! [`PER_ADDRESS`] the answer is 429, right password or not. The login form itself carries a
//! token matching a short-lived cookie (no session exists yet to hold one). Where
//! `[admin] client_ca` is set and the connection presented a certificate, the form also offers
//! `/ui/login/certificate`: the certificate's mapped user ([`client_cert`]) logs in, with its
//! TOTP code when it needs one, and the failures count and are audited the same way.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, State},
    http::{header, HeaderMap, HeaderValue, Request, StatusCode},
    response::{IntoResponse, Response},
};
use maud::{html, Markup};
use serde::Deserialize;

use super::{csrf_matches, layout, random_token, see_other, Dashboard, Fail, Posted, CSRF_FIELD, PREFIX};
use crate::{
    admin::{
        auth::{self, client_cert, password, totp, Role, SESSION_COOKIE},
        problem::Problem,
    },
    audit::{AuditEvent, AuditKind},
    ca::Requester,
    ledger::{now, AdminSession, AdminUser},
    sealing::{self, Purpose},
};

/// The cookie the login form's token is matched against.
pub const LOGIN_COOKIE: &str = "privca_login";
/// Seconds a session lasts.
pub const SESSION_SECONDS: i64 = 8 * 3600;
/// The window failed logins are counted over, in seconds.
pub const WINDOW: i64 = 15 * 60;
/// Failed logins per user name in [`WINDOW`] before 429.
pub const PER_USER: i64 = 5;
/// Failed logins per client address in [`WINDOW`] before 429.
pub const PER_ADDRESS: i64 = 20;
/// What every failed login reads.
pub const WRONG: &str = "Wrong user name, password or code.";

/// `GET /ui/login`.
pub async fn form(State(state): State<Dashboard>, req: Request<axum::body::Body>) -> Result<Response, Fail> {
    let (parts, _) = req.into_parts();
    let token = random_token()?;
    let cert = client_cert::presented(&state.admin, &parts).is_some();
    Ok(login_page(StatusCode::OK, &token, None, "", cert))
}

fn login_page(status: StatusCode, token: &str, error: Option<&str>, user: &str, cert: bool) -> Response {
    let body: Markup = html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        @if cert {
            form.stack #certificate-login method="post" action={ (PREFIX) "/login/certificate" } {
                input type="hidden" name=(CSRF_FIELD) value=(token);
                label { "TOTP code (admin and approver)" input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6"; }
                button type="submit" { "Log in with your client certificate" }
            }
            p.muted { "Or with your password:" }
        }
        form.stack method="post" action={ (PREFIX) "/login" } {
            input type="hidden" name=(CSRF_FIELD) value=(token);
            label { "User" input type="text" name="user" value=(user) autocomplete="username" required autofocus; }
            label { "Password" input type="password" name="password" autocomplete="current-password" required; }
            label { "TOTP code (admin and approver)" input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6"; }
            button type="submit" { "Log in" }
        }
    };
    let cookie =
        format!("{LOGIN_COOKIE}={token}; Secure; HttpOnly; SameSite=Strict; Path={PREFIX}/login; Max-Age=3600");
    let mut r = (status, layout::bare("Log in", body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// The value of cookie `name` in `headers`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        line.split(';').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name && !v.is_empty()).then(|| v.to_owned())
        })
    })
}

/// The login form's fields.
#[derive(Debug, Default)]
struct Credentials {
    token: Option<String>,
    user: String,
    password: zeroize::Zeroizing<String>,
    code: String,
}

/// `POST /ui/login`.
pub async fn submit(State(state): State<Dashboard>, req: Request<axum::body::Body>) -> Result<Response, Fail> {
    let (parts, body) = req.into_parts();
    let address = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let bytes =
        axum::body::to_bytes(body, super::FORM_LIMIT).await.map_err(|_| Problem::too_large(super::FORM_LIMIT))?;
    let mut c = Credentials::default();
    for (k, v) in url::form_urlencoded::parse(&bytes) {
        match k.as_ref() {
            CSRF_FIELD => c.token = Some(v.into_owned()),
            "user" => c.user = v.trim().to_owned(),
            "password" => c.password = zeroize::Zeroizing::new(v.into_owned()),
            "code" => c.code = v.trim().to_owned(),
            _ => {}
        }
    }
    let ledger = state.admin.ca.ledger();
    let expected = cookie(&parts.headers, LOGIN_COOKIE);
    if !csrf_matches(expected.as_deref(), c.token.as_deref()) {
        let event = AuditEvent::new(AuditKind::AdminRefused, "admin:anonymous")
            .detail(serde_json::json!({ "why": "login form without its token", "address": address }));
        if let Err(e) = ledger.record_event(&event).await {
            tracing::error!(error = %e, "could not record the login refusal");
        }
        return Err(Problem::forbidden("the login form expired or was not sent from this dashboard: reload it").into());
    }
    let user: String = c.user.chars().take(64).collect();
    let t = now();
    let subjects = [format!("user:{user}"), format!("addr:{address}")];
    let failed_user = ledger.login_failures(&subjects[0], t - WINDOW).await?;
    let failed_addr = ledger.login_failures(&subjects[1], t - WINDOW).await?;
    if failed_user >= PER_USER || failed_addr >= PER_ADDRESS {
        let event = AuditEvent::new(AuditKind::AdminLoginFailed, "admin:anonymous")
            .detail(serde_json::json!({ "user": user, "address": address, "rate_limited": true }));
        ledger.record_login_failure(&[], &event).await?;
        return Err(Problem::rate_limited(WINDOW as u64).into());
    }
    let found = ledger.admin_user(&user).await?.filter(|u| u.disabled_at.is_none());
    let ok = match found {
        Some(u) if password::verify(Some(&u.password_hash), &c.password).await? => {
            second_factor(&state, &u, &c.code, t).await?
        }
        Some(_) => false,
        None => {
            password::verify(None, &c.password).await?;
            false
        }
    };
    if !ok {
        let event = AuditEvent::new(AuditKind::AdminLoginFailed, "admin:anonymous")
            .detail(serde_json::json!({ "user": user, "address": address }));
        ledger.record_login_failure(&subjects, &event).await?;
        let cert = client_cert::presented(&state.admin, &parts).is_some();
        return Ok(login_page(StatusCode::OK, &random_token()?, Some(WRONG), &user, cert));
    }
    start_session(&state, &user, &address, "password").await
}

/// Opens a session for `user` (audited `admin-login` with how it logged in) and sends the
/// browser to the overview with its cookie.
async fn start_session(state: &Dashboard, user: &str, address: &str, method: &str) -> Result<Response, Fail> {
    let ledger = state.admin.ca.ledger();
    let t = now();
    let id = random_token()?;
    let session = AdminSession { user_name: user.to_owned(), csrf: random_token()?, expires_at: t + SESSION_SECONDS };
    let by = Requester { protocol: "admin", identity: user.to_owned() };
    let event = AuditEvent::new(AuditKind::AdminLogin, by.to_string())
        .detail(serde_json::json!({ "user": user, "address": address, "method": method }));
    ledger.create_admin_session(&auth::session_hash(&id), &session, &event).await?;
    let mut r = see_other("/");
    let cookies = [
        format!("{SESSION_COOKIE}={id}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_SECONDS}"),
        format!("{LOGIN_COOKIE}=; Secure; HttpOnly; SameSite=Strict; Path={PREFIX}/login; Max-Age=0"),
    ];
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(r)
}

/// `POST /ui/login/certificate`: logs in the user the connection's client certificate is
/// mapped to ([`client_cert`]), with its TOTP code when its role or enrolment needs one.
pub async fn submit_certificate(
    State(state): State<Dashboard>,
    req: Request<axum::body::Body>,
) -> Result<Response, Fail> {
    let (parts, body) = req.into_parts();
    let address = client_cert::address(&parts);
    let bytes =
        axum::body::to_bytes(body, super::FORM_LIMIT).await.map_err(|_| Problem::too_large(super::FORM_LIMIT))?;
    let (mut token, mut code) = (None, String::new());
    for (k, v) in url::form_urlencoded::parse(&bytes) {
        match k.as_ref() {
            CSRF_FIELD => token = Some(v.into_owned()),
            "code" => code = v.trim().to_owned(),
            _ => {}
        }
    }
    let ledger = state.admin.ca.ledger();
    if !csrf_matches(cookie(&parts.headers, LOGIN_COOKIE).as_deref(), token.as_deref()) {
        return Err(Problem::forbidden("the login form expired or was not sent from this dashboard: reload it").into());
    }
    let Some((auth, chain)) = client_cert::presented(&state.admin, &parts) else {
        let text = "This connection presented no client certificate.";
        return Ok(login_page(StatusCode::UNAUTHORIZED, &random_token()?, Some(text), "", false));
    };
    let principal = match client_cert::login(&state.admin, auth, &chain, &address).await {
        Ok(p) => p,
        Err(p) if p.status() == StatusCode::UNAUTHORIZED => {
            let text = "This client certificate logs nobody in.";
            return Ok(login_page(StatusCode::UNAUTHORIZED, &random_token()?, Some(text), "", true));
        }
        Err(p) => return Err(p.into()),
    };
    let user = ledger.admin_user(&principal.name).await?.ok_or_else(Problem::unauthorized)?;
    if !second_factor(&state, &user, &code, now()).await? {
        let event = AuditEvent::new(AuditKind::AdminLoginFailed, "admin:anonymous").detail(serde_json::json!({
            "user": user.name, "address": address, "method": "client-certificate", "why": "TOTP code",
        }));
        ledger.record_login_failure(&[format!("user:{}", user.name), format!("addr:{address}")], &event).await?;
        return Ok(login_page(StatusCode::UNAUTHORIZED, &random_token()?, Some(WRONG), "", true));
    }
    start_session(&state, &user.name, &address, "client-certificate").await
}

/// Whether `u` passes its second factor with `code` at `t` (true when it needs none).
async fn second_factor(state: &Dashboard, u: &AdminUser, code: &str, t: i64) -> Result<bool, Fail> {
    let Some(role) = Role::parse(&u.role) else { return Ok(false) };
    let needs = role.needs_mfa() || u.totp_secret.is_some();
    if !needs {
        return Ok(true);
    }
    let Some(sealed) = &u.totp_secret else { return Ok(false) };
    let ca = &state.admin.ca;
    let secret = sealing::open(ca.signing(), Purpose::TotpSecret(&u.name), sealed).await?;
    match totp::matching_step(&secret, &u.name, code, t.max(0) as u64)? {
        Some(step) => Ok(ca.ledger().accept_totp_step(&u.name, step).await?),
        None => Ok(false),
    }
}

/// The logout form (its CSRF field only).
#[derive(Debug, Deserialize)]
pub struct Nothing {}

/// `POST /ui/logout`.
pub async fn logout(
    State(state): State<Dashboard>,
    headers: HeaderMap,
    _form: Posted<Nothing>,
) -> Result<Response, Fail> {
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        state.admin.ca.ledger().delete_admin_session(&auth::session_hash(&id)).await?;
    }
    let mut r = see_other("/login");
    let clear = format!("{SESSION_COOKIE}=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}
