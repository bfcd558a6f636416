//! `/reports/{kind}`: the compliance and access-review reports of a period, as CSV, HTML or
//! PDF, built by the same code as `privca report`.

use axum::{
    extract::{Path, State},
    http::header,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::Params;
use crate::admin::{
    auth::{Action, Principal},
    problem::Problem,
    reports::{self, command::day, ReportContext},
    AdminState,
};

/// Period and format of a report.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// First day, YYYY-MM-DD (UTC; default: 91 days before `to`).
    pub from: Option<String>,
    /// Last day included, YYYY-MM-DD (UTC; default: today).
    pub to: Option<String>,
    /// csv (default), html or pdf.
    pub format: Option<String>,
}

const DAY: i64 = 86_400;

/// A report of a period.
#[utoipa::path(get, path = "/reports/{kind}", tag = "audit",
    params(("kind" = String, Path, description = "compliance or access"), ReportQuery),
    responses((status = 200, description = "text/csv, text/html or application/pdf"), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn report(
    State(state): State<AdminState>,
    p: Principal,
    Path(kind): Path<String>,
    Params(q): Params<ReportQuery>,
) -> Result<Response, Problem> {
    p.require(&state, Action::Audit).await?;
    let now = crate::ledger::now();
    let to = match &q.to {
        Some(d) => day(d)? + DAY,
        None => now - now.rem_euclid(DAY) + DAY,
    };
    let from = match &q.from {
        Some(d) => day(d)?,
        None => to - 91 * DAY,
    };
    if from >= to || to - from > 3 * 366 * DAY {
        return Err(Problem::bad_request("from must be before to, and a period at most three years"));
    }
    let context = ReportContext::from_parts(state.ca.config(), state.ca.signing());
    let ledger = state.ca.ledger();
    let report = match kind.as_str() {
        "compliance" => reports::compliance(ledger, from, to, &context).await?,
        "access" => reports::access_review(ledger, from, to, &context).await?,
        other => return Err(Problem::not_found(format!("no report `{other}`: use compliance or access"))),
    };
    let (ctype, body) = match q.format.as_deref().unwrap_or("csv") {
        "csv" => ("text/csv; charset=utf-8", reports::to_csv(&report).into_bytes()),
        "html" => ("text/html; charset=utf-8", reports::to_html(&report).into_bytes()),
        "pdf" => ("application/pdf", reports::to_pdf(&report)),
        other => return Err(Problem::bad_request(format!("format `{other}`: use csv, html or pdf"))),
    };
    Ok(([(header::CONTENT_TYPE, ctype)], body).into_response())
}
