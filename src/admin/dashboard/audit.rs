//! `/ui/audit`: the hash-chained audit log, newest first, paged by id, filtered by event or
//! serial (auditors and admins).

use axum::{
    extract::{Query, State},
    http::Uri,
    response::{IntoResponse, Response},
};
use maud::html;
use serde::Deserialize;

use super::{layout, Dashboard, Fail, Viewer, PREFIX};
use crate::admin::{auth::Action, problem::Problem};

/// Rows per page.
const PAGE: i64 = 100;

/// Filters.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    /// Rows with an id below this.
    pub before: Option<String>,
    /// Only this event.
    pub event: Option<String>,
    /// Only this serial.
    pub serial: Option<String>,
}

/// `GET /ui/audit`.
pub async fn log(State(state): State<Dashboard>, v: Viewer, uri: Uri) -> Result<Response, Fail> {
    v.require(&state, Action::Audit).await?;
    let Query(q) = Query::<AuditQuery>::try_from_uri(&uri).map_err(|e| Problem::bad_request(e.body_text()))?;
    let nonempty = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let before = nonempty(&q.before)
        .map(|b| b.parse::<i64>().map_err(|_| Problem::bad_request("before is a row id")))
        .transpose()?;
    let (event, serial) = (nonempty(&q.event), nonempty(&q.serial));
    let rows = state.admin.ca.ledger().audit_page(before, event.as_deref(), serial.as_deref(), PAGE).await?;
    let next = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.id)).flatten();
    let keep = |k: &str, v: &Option<String>| {
        v.as_deref().map(|v| format!("{k}={}&", url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()))
    };
    let base = [keep("event", &event), keep("serial", &serial)].into_iter().flatten().collect::<String>();
    let body = html! {
        form.filters method="get" action={ (PREFIX) "/audit" } {
            label { "Event" input type="text" name="event" value=(event.as_deref().unwrap_or_default()) placeholder="e.g. revoked"; }
            label { "Serial" input type="text" name="serial" value=(serial.as_deref().unwrap_or_default()); }
            button type="submit" { "Filter" }
        }
        table {
            thead { tr { th { "#" } th { "When" } th { "Event" } th { "By" } th { "Serial" } th { "Detail" } th { "Sealed" } } }
            tbody { @for r in &rows { tr {
                td { (r.id) }
                td { (layout::utc(r.occurred_at)) }
                td { (r.event) }
                td { (r.actor) }
                td.mono { @if let Some(s) = &r.serial { (layout::cert_link(s, s)) } }
                td.mono { (r.detail) }
                td { @if let Some(seq) = r.seq { "#" (seq) } @else { span.muted { "not yet" } } }
            } } }
        }
        @if let Some(b) = next {
            p.pager { a rel="next" href={ (PREFIX) "/audit?" (base) "before=" (b) } { "Older →" } }
        }
    };
    Ok(layout::page(&v.0, "Audit log", body).into_response())
}
