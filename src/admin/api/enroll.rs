//! Enrollment credentials over HTTP: EST users, one-time SCEP challenges and ACME EAB keys,
//! made by the same core functions as `privca est user add`, `privca scep challenge new` and
//! `privca acme eab add`. Each secret is in the answer once and never again.

use axum::{extract::State, http::StatusCode, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Body, Params};
use crate::{
    admin::{
        auth::{Action, Principal},
        problem::Problem,
        AdminState,
    },
    ledger::{AcmeAccountListing, EabKeyListing, EstUserListing, ScepChallengeListing},
};

/// `POST /est/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EstUserBody {
    /// EST label (`[est.labels]`).
    pub label: String,
    /// User name.
    pub name: String,
}

/// A secret shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct Secret {
    /// Key id (EAB) or user name.
    pub id: String,
    /// The secret: password, challenge or base64url HMAC key.
    pub secret: String,
}

/// Create (or reset) an EST user; the generated password is in the answer only.
#[utoipa::path(post, path = "/est/users", tag = "enrollment", request_body = EstUserBody,
    responses((status = 201, body = Secret), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn est_user(
    State(state): State<AdminState>,
    p: Principal,
    Body(b): Body<EstUserBody>,
) -> Result<(StatusCode, Json<Secret>), Problem> {
    p.require(&state, Action::Enroll).await?;
    let password = crate::adapters::est::add_user(&state.ca, &b.label, &b.name, None, &p.requester()).await?;
    Ok((StatusCode::CREATED, Json(Secret { id: b.name, secret: password })))
}

/// `POST /scep/challenges`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeBody {
    /// Profile a `[scep.names]` entry uses.
    pub profile: String,
    /// CLM owner of the certificate.
    pub owner: Option<String>,
    /// Lifetime in seconds (default 3600, at most 30 days).
    pub ttl_seconds: Option<u64>,
    /// Enrollments it allows (default 1).
    pub uses: Option<u32>,
}

/// Create a one-time SCEP challenge password.
#[utoipa::path(post, path = "/scep/challenges", tag = "enrollment", request_body = ChallengeBody,
    responses((status = 201, body = Secret), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn scep_challenge(
    State(state): State<AdminState>,
    p: Principal,
    Body(b): Body<ChallengeBody>,
) -> Result<(StatusCode, Json<Secret>), Problem> {
    p.require(&state, Action::Enroll).await?;
    let ttl = b.ttl_seconds.unwrap_or(3600);
    let uses = b.uses.unwrap_or(1);
    if !(1..=30 * 86_400).contains(&ttl) || !(1..=10_000).contains(&uses) {
        return Err(Problem::bad_request("ttl_seconds 1-2592000, uses 1-10000"));
    }
    let ttl = std::time::Duration::from_secs(ttl);
    let challenge =
        crate::adapters::scep::new_challenge(&state.ca, &b.profile, b.owner.as_deref(), ttl, uses, &p.requester())
            .await?;
    Ok((StatusCode::CREATED, Json(Secret { id: b.profile, secret: challenge })))
}

/// `POST /acme/eab-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EabBody {
    /// CLM owner of every certificate issued to the account bound with it.
    pub owner: String,
    /// Profile the account is limited to.
    pub profile: Option<String>,
}

/// Create an ACME external account binding key.
#[utoipa::path(post, path = "/acme/eab-keys", tag = "enrollment", request_body = EabBody,
    responses((status = 201, body = Secret), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn eab_key(
    State(state): State<AdminState>,
    p: Principal,
    Body(b): Body<EabBody>,
) -> Result<(StatusCode, Json<Secret>), Problem> {
    p.require(&state, Action::Enroll).await?;
    let (kid, key) =
        crate::adapters::acme::create_eab_key(&state.ca, &b.owner, b.profile.as_deref(), &p.requester()).await?;
    Ok((StatusCode::CREATED, Json(Secret { id: kid, secret: key })))
}

/// List EST users (never their passwords).
#[utoipa::path(get, path = "/est/users", tag = "enrollment",
    responses((status = 200, body = Vec<EstUserListing>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn est_users(State(state): State<AdminState>, p: Principal) -> Result<Json<Vec<EstUserListing>>, Problem> {
    p.require(&state, Action::Audit).await?;
    Ok(Json(state.ca.ledger().est_users().await?))
}

/// List live SCEP challenges (never the challenges themselves).
#[utoipa::path(get, path = "/scep/challenges", tag = "enrollment",
    responses((status = 200, body = Vec<ScepChallengeListing>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn scep_challenges(
    State(state): State<AdminState>,
    p: Principal,
) -> Result<Json<Vec<ScepChallengeListing>>, Problem> {
    p.require(&state, Action::Audit).await?;
    Ok(Json(state.ca.ledger().scep_challenges().await?))
}

/// List EAB keys (never their HMAC keys).
#[utoipa::path(get, path = "/acme/eab-keys", tag = "enrollment",
    responses((status = 200, body = Vec<EabKeyListing>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn eab_keys(State(state): State<AdminState>, p: Principal) -> Result<Json<Vec<EabKeyListing>>, Problem> {
    p.require(&state, Action::Audit).await?;
    Ok(Json(state.ca.ledger().eab_keys().await?))
}

/// `?after=&limit=` of the account list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccountQuery {
    /// Only accounts with an id after this (the last id of the previous page).
    pub after: Option<String>,
    /// Rows per page (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// List ACME accounts.
#[utoipa::path(get, path = "/acme/accounts", tag = "enrollment", params(AccountQuery),
    responses((status = 200, body = Vec<AcmeAccountListing>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn acme_accounts(
    State(state): State<AdminState>,
    p: Principal,
    Params(q): Params<AccountQuery>,
) -> Result<Json<Vec<AcmeAccountListing>>, Problem> {
    p.require(&state, Action::Audit).await?;
    let limit = i64::from(q.limit.unwrap_or(100).clamp(1, 1000));
    Ok(Json(state.ca.ledger().acme_accounts(q.after.as_deref().unwrap_or(""), limit).await?))
}
