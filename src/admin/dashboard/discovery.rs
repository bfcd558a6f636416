//! `/ui/discovery` (the endpoints discovery scanned, those with findings first, and the
//! certificates it found) and `/ui/owners` (owner records and the owner names no record
//! claims). An `owner` sees its own record only, and no scan results (they span every owner).

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use maud::html;

use super::{layout, Dashboard, Fail, Viewer, PREFIX};
use crate::{
    admin::auth::{Action, Role},
    ledger::{now, InventoryFilter},
};

/// Endpoints and certificates listed.
const LIMIT: i64 = 200;

/// `GET /ui/discovery`.
pub async fn results(State(state): State<Dashboard>, v: Viewer) -> Result<Response, Fail> {
    v.require(&state, Action::Read).await?;
    if v.0.role == Role::Owner {
        return v.0.refuse(&state.admin, "discovery results span every owner".into()).await.map_err(Fail);
    }
    let ca = &state.admin.ca;
    let endpoints = ca.ledger().seen_endpoints(LIMIT).await?;
    let filter = InventoryFilter { source: Some("discovery".into()), limit: LIMIT, ..InventoryFilter::default() };
    let found = ca.ledger().inventory(&filter, &crate::clm::first_threshold(&ca.config().clm)).await?;
    let t = now();
    let body = html! {
        h2 { "Endpoints" }
        @if endpoints.is_empty() { p.muted { "No scan yet: " code { "privca discover --cidr …" } } } @else {
            table {
                thead { tr { th { "Endpoint" } th { "Certificate" } th { "Expires" } th { "TLS" } th { "Findings" } th { "Last seen" } } }
                tbody { @for e in &endpoints { tr {
                    td { (e.host) ":" (e.port) @if !e.sni.is_empty() { " (SNI " (e.sni) ")" } }
                    td { (layout::cert_link(&e.fingerprint, e.subject.as_deref().unwrap_or(&e.fingerprint))) }
                    td { @if let Some(na) = e.not_after { (layout::day(na)) " " span.muted { "(" (layout::days_from(t, na)) " d)" } } }
                    td { (e.tls_version.as_deref().unwrap_or("—")) }
                    td { @if e.findings.is_empty() { span.muted { "none" } } @else { span.error { (e.findings.join(", ")) } } }
                    td { (layout::utc(e.last_seen)) }
                } } }
            }
        }
        h2 { "Certificates found by discovery" }
        @if found.is_empty() { p.muted { "None." } } @else {
            table {
                thead { tr { th { "Subject" } th { "Issuer" } th { "Owner" } th { "Expires" } } }
                tbody { @for i in &found { tr {
                    td { (layout::cert_link(&i.fingerprint, &i.subject)) }
                    td { (i.issuer) }
                    td { (i.owner) }
                    td { (layout::day(i.not_after)) }
                } } }
            }
            p { a href={ (PREFIX) "/certificates?source=discovery" } { "All of them in the certificates table" } }
        }
    };
    Ok(layout::page(&v.0, "Discovery", body).into_response())
}

/// `GET /ui/owners`.
pub async fn owners(State(state): State<Dashboard>, v: Viewer) -> Result<Response, Fail> {
    v.require(&state, Action::Read).await?;
    let ledger = state.admin.ca.ledger();
    let mut owners = ledger.owners().await?;
    let mut unclaimed = ledger.unclaimed_owners().await?;
    if let Some(me) = v.0.scope_owner(None) {
        owners.retain(|o| o.name == me);
        unclaimed.retain(|o| o.name == me);
    }
    let body = html! {
        h2 { "Owner records" }
        @if owners.is_empty() { p.muted { "None: " code { "privca owner add NAME --email …" } } } @else {
            table {
                thead { tr { th { "Name" } th { "Kind" } th { "Display name" } th { "Email" } th { "Webhook" } th { "Escalation" } } }
                tbody { @for o in &owners { tr {
                    td { a href={ (PREFIX) "/certificates?owner=" (o.name) } { (o.name) } }
                    td { (o.kind) }
                    td { (o.display_name.as_deref().unwrap_or("—")) }
                    td { (o.email.as_deref().unwrap_or("—")) }
                    td { @if o.webhook.is_some() { (o.webhook_format) } @else { "—" } }
                    td { (o.escalation.as_deref().unwrap_or("—")) }
                } } }
            }
        }
        h2 { "Unowned: names no record claims" }
        @if unclaimed.is_empty() { p.muted { "None." } } @else {
            table {
                thead { tr { th { "Owner name" } th.num { "Certificates" } } }
                tbody { @for u in &unclaimed { tr {
                    td { a href={ (PREFIX) "/certificates?owner=" (u.name) } { (u.name) } }
                    td.num { (u.certificates) }
                } } }
            }
        }
    };
    Ok(layout::page(&v.0, "Owners", body).into_response())
}
