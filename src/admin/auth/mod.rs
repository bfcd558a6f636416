//! Who is calling the admin listener, and whether they may. A call authenticates with an API
//! token (`Authorization: Bearer pca_…`, [`token`]), a dashboard session cookie or, where
//! `[admin] client_ca` is set, a TLS client certificate mapped to a user ([`client_cert`]);
//! the first of these the request carries decides. The result
//! is a [`Principal`] with one [`Role`]. Handlers ask [`Principal::require`] for the
//! [`Action`] they perform; a refusal of an authenticated caller is audited
//! (`admin-refused`) and answered 403, an unauthenticated one 401 without touching the ledger
//! beyond the lookup (except a refused client certificate: a failed login, audited and
//! counted, [`client_cert`]).
//!
//! Sessions (dashboard logins with password and, for `admin` and `approver`, TOTP) are held in
//! the ledger by the SHA-256 of the cookie value; a state-changing call made with a session
//! must carry its CSRF token (`X-CSRF-Token`, or the dashboard form's field).

pub mod client_cert;
pub mod password;
pub mod role;
pub mod token;
pub mod totp;

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts, Method},
};

pub use self::role::{Action, Role};
use super::{problem::Problem, AdminState};
use crate::{
    audit::{AuditEvent, AuditKind},
    ca::Requester,
};

/// The dashboard's session cookie.
pub const SESSION_COOKIE: &str = "privca_session";
/// The header a session-authenticated API call carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// User name, or `token:<id>` for a token made for no user.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// For role `owner`: the CLM owner it acts for.
    pub owner: Option<String>,
    /// For a dashboard session: the CSRF token of its forms.
    pub csrf: Option<String>,
}

impl Principal {
    /// The requester the core records for this caller (`admin:<name>`).
    pub fn requester(&self) -> Requester {
        Requester { protocol: "admin", identity: self.name.clone() }
    }

    /// Allows `action`, or audits the refusal and answers 403.
    pub async fn require(&self, state: &AdminState, action: Action) -> Result<(), Problem> {
        if self.role.allows(action) {
            return Ok(());
        }
        self.refuse(state, format!("role {} may not {action:?}", self.role)).await
    }

    /// For an `owner` caller, allows acting on a certificate owned by `owner` only.
    pub async fn require_owner_of(&self, state: &AdminState, owner: &str) -> Result<(), Problem> {
        match (&self.role, &self.owner) {
            (Role::Owner, Some(mine)) if mine == owner => Ok(()),
            (Role::Owner, _) => self.refuse(state, "not a certificate of this owner".to_owned()).await,
            _ => Ok(()),
        }
    }

    /// Refuses an `owner` caller a view that spans every owner (`what` says which).
    pub async fn require_not_owner(&self, state: &AdminState, what: &str) -> Result<(), Problem> {
        if self.role == Role::Owner {
            return self.refuse(state, format!("{what} span every owner")).await;
        }
        Ok(())
    }

    /// The owner a list is limited to (role `owner`), else `requested`.
    pub fn scope_owner(&self, requested: Option<String>) -> Option<String> {
        match self.role {
            Role::Owner => Some(self.owner.clone().unwrap_or_default()),
            _ => requested,
        }
    }

    /// Audits a refusal of this caller and answers 403 with `why`.
    pub async fn refuse<T>(&self, state: &AdminState, why: String) -> Result<T, Problem> {
        let event = AuditEvent::new(AuditKind::AdminRefused, self.requester().to_string())
            .detail(serde_json::json!({ "why": why }));
        if let Err(e) = state.ca.ledger().record_event(&event).await {
            tracing::error!(error = %e, "could not record the admin refusal");
        }
        Err(Problem::forbidden(why))
    }
}

impl FromRequestParts<AdminState> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, Problem> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let text = value.to_str().map_err(|_| Problem::unauthorized())?;
            let presented = text.strip_prefix("Bearer ").ok_or_else(Problem::unauthorized)?;
            return bearer(state, presented.trim()).await;
        }
        let Some(cookie) = session_cookie(parts) else {
            let Some((auth, chain)) = client_cert::presented(state, parts) else {
                return Err(Problem::unauthorized());
            };
            let principal = client_cert::login(state, auth, &chain, &client_cert::address(parts)).await?;
            if !matches!(parts.method, Method::GET | Method::HEAD)
                && !parts.headers.contains_key(client_cert::REQUESTED_WITH)
            {
                return principal
                    .refuse(state, "a client-certificate call that changes something needs X-Requested-With".into())
                    .await;
            }
            return Ok(principal);
        };
        let principal = session(state, &cookie).await?;
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            let expected = principal.csrf.as_deref().unwrap_or("");
            if expected.is_empty() || !bool::from(subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), expected.as_bytes())) {
                return principal.refuse(state, "missing or wrong CSRF token".into()).await;
            }
        }
        Ok(principal)
    }
}

/// Authenticates an API token.
pub async fn bearer(state: &AdminState, presented: &str) -> Result<Principal, Problem> {
    let (id, secret) = token::parse(presented).ok_or_else(Problem::unauthorized)?;
    let ledger = state.ca.ledger();
    let row = ledger.admin_token(id).await?.ok_or_else(Problem::unauthorized)?;
    let now = crate::ledger::now();
    if !token::matches(&row, secret) || row.revoked_at.is_some() || row.expires_at <= now {
        return Err(Problem::unauthorized());
    }
    let role = Role::parse(&row.role).ok_or_else(Problem::unauthorized)?;
    if let Some(user) = &row.user_name {
        let enabled = ledger.admin_user(user).await?.is_some_and(|u| u.disabled_at.is_none());
        if !enabled {
            return Err(Problem::unauthorized());
        }
    }
    // Last use to the minute: no write (and no SQLite write lock) on every request.
    if row.last_used_at.is_none_or(|t| t < now - 60) {
        if let Err(e) = ledger.touch_admin_token(id, now).await {
            tracing::warn!(error = %e, "could not record a token's last use");
        }
    }
    let name = row.user_name.clone().unwrap_or_else(|| format!("token:{id}"));
    Ok(Principal { name, role, owner: row.owner, csrf: None })
}

/// Authenticates a dashboard session cookie value.
pub async fn session(state: &AdminState, cookie: &str) -> Result<Principal, Problem> {
    let ledger = state.ca.ledger();
    let s = ledger.admin_session(&session_hash(cookie)).await?.ok_or_else(Problem::unauthorized)?;
    let user = ledger.admin_user(&s.user_name).await?.filter(|u| u.disabled_at.is_none());
    let user = user.ok_or_else(Problem::unauthorized)?;
    let role = Role::parse(&user.role).ok_or_else(Problem::unauthorized)?;
    Ok(Principal { name: user.name, role, owner: user.owner, csrf: Some(s.csrf) })
}

/// The ledger key of a session cookie value.
pub fn session_hash(cookie: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, cookie.as_bytes()).as_ref().to_vec()
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(parts: &Parts) -> Option<String> {
    parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        line.split(';').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == SESSION_COOKIE && !v.is_empty()).then(|| v.to_owned())
        })
    })
}
