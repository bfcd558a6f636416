//! `/approvals`: the approval gate's queue over HTTP. Approving issues the certificate through
//! the core (the ACME order, EST poll or SCEP CertPoll waiting on it then completes); nobody
//! approves their own request; every decision is audited with who and why.

use axum::{
    extract::{Path, State},
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Body, Params};
use crate::{
    admin::{
        auth::{Action, Principal},
        problem::Problem,
        AdminState,
    },
    ca::Approved,
    ledger::{Approval, ApprovalStatus},
};

/// `?status=` of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ApprovalQuery {
    /// pending (default), approved, denied, issued or all.
    pub status: Option<String>,
}

/// An approval request (the CSR itself is not returned).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalView {
    /// Id.
    pub id: i64,
    /// Profile.
    pub profile: String,
    /// Who asked.
    pub requester: String,
    /// CLM owner.
    pub owner: Option<String>,
    /// Requested subject.
    pub subject: String,
    /// Requested names.
    pub sans: Vec<String>,
    /// pending, approved, denied or issued.
    pub status: String,
    /// Why it was denied.
    pub reason: Option<String>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// The certificate issued for it.
    pub serial: Option<String>,
    /// When it was asked.
    pub created_at: i64,
}

impl From<Approval> for ApprovalView {
    fn from(a: Approval) -> Self {
        ApprovalView {
            id: a.id,
            profile: a.profile,
            requester: a.requester,
            owner: a.owner,
            subject: a.subject,
            sans: a.sans,
            status: a.status.as_str().to_owned(),
            reason: a.reason,
            decided_by: a.decided_by,
            serial: a.serial,
            created_at: a.created_at,
        }
    }
}

/// List approval requests.
#[utoipa::path(get, path = "/approvals", tag = "approvals", params(ApprovalQuery),
    responses((status = 200, body = Vec<ApprovalView>), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AdminState>,
    p: Principal,
    Params(q): Params<ApprovalQuery>,
) -> Result<Json<Vec<ApprovalView>>, Problem> {
    p.require(&state, Action::Read).await?;
    let status = match q.status.as_deref().unwrap_or("pending") {
        "all" => None,
        s => Some(ApprovalStatus::parse(s).ok_or_else(|| Problem::bad_request(format!("unknown status `{s}`")))?),
    };
    let mine = p.scope_owner(None);
    let list = state.ca.ledger().approvals(status).await?;
    Ok(Json(list.into_iter().filter(|a| mine.is_none() || a.owner == mine).map(ApprovalView::from).collect()))
}

/// What an approval did: issued the certificate, or recorded and waiting for another approver.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovedView {
    /// `issued` or `waiting`.
    pub status: &'static str,
    /// Serial of the certificate.
    pub serial: Option<String>,
    /// Leaf and chain, PEM.
    pub chain_pem: Option<String>,
    /// Distinct approvals so far.
    pub approvals: Option<i64>,
    /// Distinct approvals needed.
    pub required: Option<i64>,
}

/// Approve a request: the certificate is issued now, or once a second approver agrees
/// (profiles with `approvers = 2`).
#[utoipa::path(post, path = "/approvals/{id}/approve", tag = "approvals",
    params(("id" = i64, Path, description = "approval id")),
    responses((status = 200, body = ApprovedView), (status = 202, body = ApprovedView, description = "recorded; another approver is needed"), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AdminState>,
    p: Principal,
    Path(id): Path<i64>,
) -> Result<(axum::http::StatusCode, Json<ApprovedView>), Problem> {
    p.require(&state, Action::Decide).await?;
    let requester = p.requester();
    match state.ca.approve(id, &requester).await {
        Ok(Approved::Issued(c)) => Ok((
            axum::http::StatusCode::OK,
            Json(ApprovedView {
                status: "issued",
                serial: Some(c.record.serial.clone()),
                chain_pem: Some(c.chain_pem),
                approvals: None,
                required: None,
            }),
        )),
        Ok(Approved::Waiting { approvals, required }) => Ok((
            axum::http::StatusCode::ACCEPTED,
            Json(ApprovedView {
                status: "waiting",
                serial: None,
                chain_pem: None,
                approvals: Some(approvals),
                required: Some(required),
            }),
        )),
        Err(e) if e.kind() == crate::error::ErrorKind::PolicyViolation => p.refuse(&state, e.detail().to_owned()).await,
        Err(e) => Err(e.into()),
    }
}

/// `POST /approvals/{id}/deny`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyBody {
    /// Why (recorded in the audit log and shown to the requester's operator).
    pub reason: String,
}

/// Deny a request.
#[utoipa::path(post, path = "/approvals/{id}/deny", tag = "approvals", request_body = DenyBody,
    params(("id" = i64, Path, description = "approval id")),
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn deny(
    State(state): State<AdminState>,
    p: Principal,
    Path(id): Path<i64>,
    Body(b): Body<DenyBody>,
) -> Result<axum::http::StatusCode, Problem> {
    p.require(&state, Action::Decide).await?;
    if b.reason.trim().is_empty() || b.reason.len() > 1000 {
        return Err(Problem::bad_request("a reason of 1-1000 characters is required"));
    }
    state.ca.deny(id, &p.requester(), &b.reason).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
