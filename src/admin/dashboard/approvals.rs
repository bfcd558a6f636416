//! `/ui/approvals`: the approval gate's queue, with approve and deny (with a reason) forms for
//! those who decide. The core refuses a requester approving its own request; the refusal is
//! audited like the API's.

use axum::{
    extract::{Path, Query, State},
    http::Uri,
    response::{IntoResponse, Response},
};
use maud::html;
use serde::Deserialize;

use super::{layout, see_other, Dashboard, Fail, Posted, Viewer, PREFIX};
use crate::{
    admin::{auth::Action, problem::Problem},
    error::ErrorKind,
    ledger::ApprovalStatus,
};

/// `?status=`.
#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    /// pending (default), approved, denied, issued or all.
    pub status: Option<String>,
}

/// `GET /ui/approvals`.
pub async fn queue(State(state): State<Dashboard>, v: Viewer, uri: Uri) -> Result<Response, Fail> {
    v.require(&state, Action::Read).await?;
    let Query(q) = Query::<QueueQuery>::try_from_uri(&uri).map_err(|e| Problem::bad_request(e.body_text()))?;
    let shown = q.status.as_deref().filter(|s| !s.is_empty()).unwrap_or("pending");
    let status = match shown {
        "all" => None,
        s => Some(ApprovalStatus::parse(s).ok_or_else(|| Problem::bad_request(format!("unknown status `{s}`")))?),
    };
    let mine = v.0.scope_owner(None);
    let mut list = state.admin.ca.ledger().approvals(status).await?;
    list.retain(|a| mine.is_none() || a.owner == mine);
    let decide = v.0.role.allows(Action::Decide);
    let body = html! {
        p {
            @for s in ["pending", "approved", "denied", "issued", "all"] {
                @if s == shown { strong { (s) } } @else { a href={ (PREFIX) "/approvals?status=" (s) } { (s) } }
                " "
            }
        }
        @if list.is_empty() { p.muted { "No request." } } @else {
            table {
                thead { tr { th { "#" } th { "Asked" } th { "Requester" } th { "Profile" } th { "Subject and names" }
                    th { "Owner" } th { "Status" } th { "Decision" } } }
                tbody { @for a in &list { tr {
                    td { (a.id) }
                    td { (layout::utc(a.created_at)) }
                    td { (a.requester) }
                    td { (a.profile) }
                    td { (a.subject) br; span.muted { (a.sans.join(", ")) } }
                    td { (a.owner.as_deref().unwrap_or("—")) }
                    td { (layout::status(a.status.as_str())) }
                    td {
                        @if a.status == ApprovalStatus::Pending && decide {
                            form.inline method="post" action={ (PREFIX) "/approvals/" (a.id) "/approve" } {
                                (layout::csrf(&v.0)) button type="submit" { "Approve" }
                            }
                            form.inline method="post" action={ (PREFIX) "/approvals/" (a.id) "/deny" } {
                                (layout::csrf(&v.0))
                                input type="text" name="reason" placeholder="reason" required maxlength="1000";
                                button.danger type="submit" { "Deny" }
                            }
                        } @else {
                            @if let Some(by) = &a.decided_by { "by " (by) }
                            @if let Some(r) = &a.reason { " — " (r) }
                            @if let Some(s) = &a.serial { " " (layout::cert_link(s, "certificate")) }
                        }
                    }
                } } }
            }
        }
    };
    Ok(layout::page(&v.0, "Approvals", body).into_response())
}

/// The approve form (its CSRF field only).
#[derive(Debug, Deserialize)]
pub struct ApproveForm {}

/// `POST /ui/approvals/{id}/approve`.
pub async fn approve(
    State(state): State<Dashboard>,
    Path(id): Path<i64>,
    posted: Posted<ApproveForm>,
) -> Result<Response, Fail> {
    let p = posted.viewer;
    p.require(&state.admin, Action::Decide).await?;
    match state.admin.ca.approve(id, &p.requester()).await {
        Ok(_) => Ok(see_other("/approvals?status=all")),
        Err(e) if e.kind() == ErrorKind::PolicyViolation => {
            p.refuse(&state.admin, e.detail().to_owned()).await.map_err(Fail)
        }
        Err(e) => Err(e.into()),
    }
}

/// The deny form.
#[derive(Debug, Deserialize)]
pub struct DenyForm {
    /// Why.
    pub reason: Option<String>,
}

/// `POST /ui/approvals/{id}/deny`.
pub async fn deny(
    State(state): State<Dashboard>,
    Path(id): Path<i64>,
    posted: Posted<DenyForm>,
) -> Result<Response, Fail> {
    let p = posted.viewer;
    p.require(&state.admin, Action::Decide).await?;
    let reason = posted.form.reason.unwrap_or_default();
    if reason.trim().is_empty() || reason.len() > 1000 {
        return Err(Problem::bad_request("a reason of 1-1000 characters is required").into());
    }
    state.admin.ca.deny(id, &p.requester(), reason.trim()).await?;
    Ok(see_other("/approvals?status=all"))
}
