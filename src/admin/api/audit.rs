//! `/audit`: the hash-chained audit log, paged newest first with its chain fields (an auditor
//! re-links the rows offline), and the verification of the whole chain against the signed
//! checkpoints.

use axum::{extract::State, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::Params;
use crate::{
    admin::{
        auth::{Action, Principal},
        problem::Problem,
        AdminState,
    },
    audit::export::AuditExport,
    ledger::AuditRow,
};

/// Filters of `GET /audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only rows with an id below this (`next_before` of the previous page).
    pub before: Option<i64>,
    /// Only this event, e.g. `revoked`.
    pub event: Option<String>,
    /// Only this certificate serial.
    pub serial: Option<String>,
    /// Rows per page (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Rows, newest first.
    pub items: Vec<AuditRow>,
    /// Pass as `before` for the next page; absent on the last.
    pub next_before: Option<i64>,
}

/// Read the audit log.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AdminState>,
    p: Principal,
    Params(q): Params<AuditQuery>,
) -> Result<Json<AuditPage>, Problem> {
    p.require(&state, Action::Audit).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows =
        state.ca.ledger().audit_page(q.before, q.event.as_deref(), q.serial.as_deref(), i64::from(limit)).await?;
    let next_before = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.id)).flatten();
    Ok(Json(AuditPage { items: rows, next_before }))
}

/// `?from=&to=` of the export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// First chain position (default 1).
    pub from: Option<i64>,
    /// Last chain position (default: the last checkpoint).
    pub to: Option<i64>,
}

/// Export sealed rows with their checkpoints and the checkpoint key, for `privca audit verify --file`.
#[utoipa::path(get, path = "/audit/export", tag = "audit", params(ExportQuery),
    responses((status = 200, body = AuditExport), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AdminState>,
    p: Principal,
    Params(q): Params<ExportQuery>,
) -> Result<Json<AuditExport>, Problem> {
    p.require(&state, Action::Audit).await?;
    let spki = state.ca.signing().key_info(crate::audit::CHECKPOINT_KEY).map_err(crate::error::CaError::from)?.spki_der;
    Ok(Json(crate::audit::export::export(state.ca.ledger(), &spki, q.from.unwrap_or(1), q.to).await?))
}

/// The result of walking the chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    /// No finding.
    pub ok: bool,
    /// Sealed rows checked.
    pub rows: i64,
    /// Signed checkpoints checked.
    pub checkpoints: usize,
    /// Rows not sealed yet.
    pub unsealed: i64,
    /// What is wrong, first first.
    pub findings: Vec<String>,
}

/// Verify the audit chain and its signed checkpoints.
#[utoipa::path(get, path = "/audit/verify", tag = "audit",
    responses((status = 200, body = Verification), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn verify(State(state): State<AdminState>, p: Principal) -> Result<Json<Verification>, Problem> {
    p.require(&state, Action::Audit).await?;
    let spki = state.ca.signing().key_info(crate::audit::CHECKPOINT_KEY).map_err(crate::error::CaError::from)?.spki_der;
    let r = crate::audit::verify(state.ca.ledger(), &spki).await?;
    let findings: Vec<String> = r.findings.into_iter().map(|f| f.0).collect();
    Ok(Json(Verification {
        ok: findings.is_empty(),
        rows: r.rows,
        checkpoints: r.checkpoints,
        unsealed: r.unsealed,
        findings,
    }))
}
