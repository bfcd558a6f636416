//! The dashboard under `/ui/`: server-rendered HTML pages ([`maud`] templates compiled into
//! the binary, escaped by default) over the same core services as the API, with the same
//! [`Action`]s and ownership scoping. No JavaScript: plain links and forms.
//!
//! A person logs in with password and, for `admin` and `approver` (or whoever enrolled one),
//! a TOTP code ([`login`]); the session is a random cookie stored hashed in the ledger. Every
//! form carries the session's CSRF token in a hidden field ([`Posted`]); every response carries
//! a strict Content-Security-Policy and no-store caching ([`security_headers`]).

pub mod access;
pub mod approvals;
pub mod audit;
pub mod certificates;
pub mod discovery;
pub mod keystore;
pub mod layout;
pub mod login;
pub mod overview;

use std::{
    sync::{atomic::AtomicBool, Arc, Mutex},
    time::Instant,
};

use axum::{
    extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request},
    http::{header, request::Parts, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::{any, get, post},
    Router,
};
use serde::de::DeserializeOwned;

use super::{
    auth::{self, Action, Principal},
    problem::Problem,
    AdminState,
};

/// Where the dashboard is mounted.
pub const PREFIX: &str = "/ui";
/// The largest form body read.
pub const FORM_LIMIT: usize = 16 * 1024;
/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// The Content-Security-Policy of every dashboard response: no scripts at all, styles only
/// from the dashboard's own stylesheet, forms only to itself, never framed.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// What the dashboard's handlers read.
#[derive(Clone)]
pub struct Dashboard {
    /// The admin state (the CA).
    pub admin: AdminState,
    /// The overview's figures, kept for [`overview::CACHE_SECONDS`].
    overview: Arc<Mutex<Option<Cached>>>,
    /// Whether a background task is reading new figures.
    refreshing: Arc<AtomicBool>,
}

/// The overview's figures and when they were read.
type Cached = (Instant, Arc<overview::Figures>);

/// The dashboard's routes, all under [`PREFIX`] (to merge into the admin listener's router),
/// bound to `state`.
pub fn router(state: AdminState) -> Router {
    let dashboard = Dashboard { admin: state, overview: Arc::default(), refreshing: Arc::default() };
    let at = |path: &str| format!("{PREFIX}{path}");
    Router::new()
        .route(PREFIX, get(|| async { see_other("/") }))
        .route(&at("/"), get(overview::page))
        .route(&at("/login"), get(login::form).post(login::submit))
        .route(&at("/login/certificate"), post(login::submit_certificate))
        .route(&at("/logout"), post(login::logout))
        .route(&at("/static/app.css"), get(stylesheet))
        .route(&at("/certificates"), get(certificates::table))
        .route(&at("/certificates/{id}"), get(certificates::detail))
        .route(&at("/certificates/{id}/revoke"), post(certificates::revoke))
        .route(&at("/keystore"), get(keystore::form).post(keystore::submit))
        .route(&at("/approvals"), get(approvals::queue))
        .route(&at("/approvals/{id}/approve"), post(approvals::approve))
        .route(&at("/approvals/{id}/deny"), post(approvals::deny))
        .route(&at("/discovery"), get(discovery::results))
        .route(&at("/owners"), get(discovery::owners))
        .route(&at("/audit"), get(audit::log))
        .route(&at("/access"), get(access::page))
        .route(&at("/access/tokens"), post(access::create_token))
        .route(&at("/access/tokens/{id}/revoke"), post(access::revoke_token))
        .route(&at("/access/users/{name}/disable"), post(access::disable_user))
        .route(&at("/{*rest}"), any(|| async { Fail(Problem::not_found("no such page")) }))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(dashboard)
}

/// Adds the headers every dashboard response carries.
pub async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /ui/static/app.css`: the one stylesheet, embedded.
async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("app.css")).into_response()
}

/// A refusal or error, answered as an HTML page (401: back to the login form).
#[derive(Debug)]
pub struct Fail(pub Problem);

impl From<Problem> for Fail {
    fn from(p: Problem) -> Self {
        Fail(p)
    }
}

impl From<crate::error::CaError> for Fail {
    fn from(e: crate::error::CaError) -> Self {
        Fail(e.into())
    }
}

impl From<crate::ledger::LedgerError> for Fail {
    fn from(e: crate::ledger::LedgerError) -> Self {
        Fail(e.into())
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let p = self.0;
        let status = p.status();
        if status == StatusCode::UNAUTHORIZED {
            return Redirect::to(&format!("{PREFIX}/login")).into_response();
        }
        let mut r = (status, layout::error_page(&p)).into_response();
        if let Some(s) = p.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// The person logged in: a dashboard session (API tokens are not accepted here).
pub struct Viewer(pub Principal);

impl FromRequestParts<Dashboard> for Viewer {
    type Rejection = Fail;

    async fn from_request_parts(parts: &mut Parts, state: &Dashboard) -> Result<Self, Fail> {
        let cookie = auth::session_cookie(parts).ok_or_else(Problem::unauthorized)?;
        Ok(Viewer(auth::session(&state.admin, &cookie).await?))
    }
}

impl Viewer {
    /// Allows `action` or answers 403 (audited).
    pub async fn require(&self, state: &Dashboard, action: Action) -> Result<(), Fail> {
        Ok(self.0.require(&state.admin, action).await?)
    }
}

/// A form posted by a logged-in person, its CSRF field checked (in constant time) before
/// anything else is read: missing or wrong → 403 and an audited refusal.
pub struct Posted<T> {
    /// Who posted it.
    pub viewer: Principal,
    /// The other fields.
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<Dashboard> for Posted<T> {
    type Rejection = Fail;

    async fn from_request(req: Request, state: &Dashboard) -> Result<Self, Fail> {
        let (mut parts, body) = req.into_parts();
        let Viewer(viewer) = Viewer::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| Problem::too_large(FORM_LIMIT))?;
        let mut fields = serde_json::Map::new();
        let mut sent = None;
        for (k, v) in url::form_urlencoded::parse(&bytes) {
            if k == CSRF_FIELD {
                sent = Some(v.into_owned());
            } else {
                fields.insert(k.into_owned(), serde_json::Value::String(v.into_owned()));
            }
        }
        if !csrf_matches(viewer.csrf.as_deref(), sent.as_deref()) {
            return viewer.refuse(&state.admin, "missing or wrong CSRF token".into()).await.map_err(Fail);
        }
        let form = serde_json::from_value(serde_json::Value::Object(fields))
            .map_err(|e| Problem::bad_request(format!("form: {e}")))?;
        Ok(Posted { viewer, form })
    }
}

/// Whether `sent` is the session's CSRF token (constant time; never when either is empty).
pub fn csrf_matches(expected: Option<&str>, sent: Option<&str>) -> bool {
    match (expected, sent) {
        (Some(e), Some(s)) if !e.is_empty() => bool::from(subtle::ConstantTimeEq::ct_eq(e.as_bytes(), s.as_bytes())),
        _ => false,
    }
}

/// 32 random bytes, base64url: session ids and CSRF tokens.
pub fn random_token() -> Result<String, crate::error::CaError> {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let mut b = zeroize::Zeroizing::new([0u8; 32]);
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), b.as_mut())
        .map_err(|_| crate::error::CaError::internal("no randomness"))?;
    Ok(Base64UrlUnpadded::encode_string(b.as_ref()))
}

/// A 303 to `path` under the dashboard.
pub fn see_other(path: &str) -> Response {
    Redirect::to(&format!("{PREFIX}{path}")).into_response()
}
