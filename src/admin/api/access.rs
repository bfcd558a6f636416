//! `/users` and `/tokens`: who holds which role and token, with last use (readable by
//! auditors: the access review), and the admin's creation, revocation and disabling.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::Body;
use crate::{
    admin::{
        access,
        auth::{Action, Principal},
        problem::Problem,
        AdminState,
    },
    ledger::{AdminToken, AdminUser},
};

/// List users.
#[utoipa::path(get, path = "/users", tag = "access",
    responses((status = 200, body = Vec<Object>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn users(State(state): State<AdminState>, p: Principal) -> Result<Json<Vec<AdminUser>>, Problem> {
    p.require(&state, Action::Audit).await?;
    Ok(Json(state.ca.ledger().admin_users().await?))
}

/// `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    /// Login name.
    pub name: String,
    /// admin, approver, operator, owner or auditor.
    pub role: String,
    /// For role owner: the CLM owner.
    pub owner: Option<String>,
}

/// A new user's secrets, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewUserView {
    /// Login name.
    pub name: String,
    /// Generated password.
    pub password: String,
    /// `otpauth://` URL for an authenticator app (admin and approver).
    pub totp_url: Option<String>,
}

/// Create a user (generated password; TOTP for admin and approver).
#[utoipa::path(post, path = "/users", tag = "access", request_body = UserBody,
    responses((status = 201, body = NewUserView), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_user(
    State(state): State<AdminState>,
    p: Principal,
    Body(b): Body<UserBody>,
) -> Result<(StatusCode, Json<NewUserView>), Problem> {
    p.require(&state, Action::Access).await?;
    let u = access::create_user(
        state.ca.ledger(),
        state.ca.signing(),
        &b.name,
        &b.role,
        b.owner.as_deref(),
        None,
        false,
        &p.requester(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(NewUserView {
            name: b.name,
            password: u.password.to_string(),
            totp_url: u.totp_url.map(|s| s.to_string()),
        }),
    ))
}

/// Disable a user: its sessions and tokens stop working.
#[utoipa::path(post, path = "/users/{name}/disable", tag = "access",
    params(("name" = String, Path, description = "user name")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn disable_user(
    State(state): State<AdminState>,
    p: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    p.require(&state, Action::Access).await?;
    if name == p.name {
        return Err(Problem::bad_request("disable yourself from another admin account"));
    }
    access::set_disabled(state.ca.ledger(), &name, true, &p.requester()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List tokens (never their secrets).
#[utoipa::path(get, path = "/tokens", tag = "access",
    responses((status = 200, body = Vec<Object>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn tokens(State(state): State<AdminState>, p: Principal) -> Result<Json<Vec<AdminToken>>, Problem> {
    p.require(&state, Action::Audit).await?;
    Ok(Json(state.ca.ledger().admin_tokens().await?))
}

/// `POST /tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// Role the token acts with (metrics: reads /metrics only).
    pub role: String,
    /// Lifetime in days (1-366).
    pub expires_days: u32,
    /// The user it is made for.
    pub user: Option<String>,
    /// For role owner: the CLM owner.
    pub owner: Option<String>,
    /// Free text.
    pub note: Option<String>,
}

/// A token, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewToken {
    /// Public id.
    pub id: String,
    /// `pca_<id>_<secret>`: send as `Authorization: Bearer …`.
    pub token: String,
}

/// Create an API token.
#[utoipa::path(post, path = "/tokens", tag = "access", request_body = TokenBody,
    responses((status = 201, body = NewToken), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AdminState>,
    p: Principal,
    Body(b): Body<TokenBody>,
) -> Result<(StatusCode, Json<NewToken>), Problem> {
    p.require(&state, Action::Access).await?;
    let (id, text) = access::create_token(
        state.ca.ledger(),
        &b.role,
        b.expires_days,
        b.user.as_deref(),
        b.owner.as_deref(),
        b.note.as_deref(),
        &p.requester(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(NewToken { id, token: text.to_string() })))
}

/// Revoke an API token.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "access",
    params(("id" = String, Path, description = "token id")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<AdminState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    p.require(&state, Action::Access).await?;
    if access::revoke_token(state.ca.ledger(), &id, &p.requester()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!("no live token `{id}`")))
    }
}
