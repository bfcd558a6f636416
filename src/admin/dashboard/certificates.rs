//! `/ui/certificates`: the inventory table (status, issuing CA, owner, tier, expiry; filters,
//! search, column headers that sort it on the server and a cursor "next page" link, the same
//! query as the API's list) and one
//! certificate's page: details, chain, ledger history, renewal links, endpoints, deployment
//! checks and the revoke form. An `owner` sees and revokes its own certificates only.

use axum::{
    extract::{Path, Query, State},
    http::Uri,
    response::{IntoResponse, Response},
};
use maud::{html, Markup};
use serde::Deserialize;

use super::{layout, see_other, Dashboard, Fail, Posted, Viewer, PREFIX};
use crate::{
    admin::{
        auth::{Action, Principal, Role},
        problem::Problem,
        sort,
    },
    ca::RevocationReason,
    ledger::{now, InventoryFilter, InventoryItem, InventorySort, InventorySortKey, InventoryStatus},
    policy::Tier,
};

/// Rows per page.
pub const PAGE: i64 = 50;
/// Reasons offered by the revoke form.
const REASONS: [&str; 6] =
    ["unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "privilegeWithdrawn"];

/// The table's filters (empty fields are no filter).
#[derive(Debug, Default, Deserialize)]
pub struct TableQuery {
    /// Status.
    pub status: Option<String>,
    /// Tier.
    pub tier: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Source (`acme`, `discovery`, …).
    pub source: Option<String>,
    /// Days.
    pub expiring_within: Option<String>,
    /// Text in subject or SANs.
    pub search: Option<String>,
    /// Order (`owner`, `-not_after`, …: [`crate::admin::sort`]).
    pub sort: Option<String>,
    /// The previous page's cursor ([`crate::admin::sort::cursor`]).
    pub cursor: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn filter(p: &Principal, q: &TableQuery) -> Result<InventoryFilter, Problem> {
    let bad = |what: &str, v: &str| Problem::bad_request(format!("unknown {what} `{v}`"));
    let sort = sort::parse(given(&q.sort))?;
    let (after_key, cursor) = match given(&q.cursor) {
        Some(c) => {
            let (key, after) = sort::parse_cursor(sort, c)?;
            (key, Some(after))
        }
        None => (None, None),
    };
    Ok(InventoryFilter {
        status: given(&q.status).map(|s| InventoryStatus::parse(s).ok_or_else(|| bad("status", s))).transpose()?,
        tier: given(&q.tier).map(|t| Tier::parse(t).ok_or_else(|| bad("tier", t))).transpose()?,
        owner: p.scope_owner(given(&q.owner).map(str::to_owned)),
        issuer: None,
        source: given(&q.source).map(str::to_owned),
        expiring_within: given(&q.expiring_within)
            .map(|d| d.parse::<u32>().map(|d| i64::from(d) * 86_400).map_err(|_| bad("number of days", d)))
            .transpose()?,
        search: given(&q.search).map(str::to_owned),
        after: cursor,
        after_key,
        sort,
        limit: PAGE,
    })
}

/// `GET /ui/certificates`.
pub async fn table(State(state): State<Dashboard>, v: Viewer, uri: Uri) -> Result<Response, Fail> {
    v.require(&state, Action::Read).await?;
    let Query(q) = Query::<TableQuery>::try_from_uri(&uri).map_err(|e| Problem::bad_request(e.body_text()))?;
    let f = filter(&v.0, &q)?;
    let ca = &state.admin.ca;
    let items = ca.ledger().inventory(&f, &crate::clm::first_threshold(&ca.config().clm)).await?;
    let next = (items.len() as i64 == PAGE).then(|| items.last().map(|i| sort::cursor(f.sort, i))).flatten();
    let t = now();
    let keep = |k: &str, v: &Option<String>| given(v).map(|v| format!("{k}={}&", urlencode(v))).unwrap_or_default();
    let base = [
        keep("status", &q.status),
        keep("tier", &q.tier),
        keep("owner", &q.owner),
        keep("source", &q.source),
        keep("expiring_within", &q.expiring_within),
        keep("search", &q.search),
    ]
    .concat();
    let sorted = [base.clone(), keep("sort", &q.sort)].concat();
    let selected = |cur: &Option<String>, v: &str| given(cur) == Some(v);
    let body = html! {
        form.filters method="get" action={ (PREFIX) "/certificates" } {
            label { "Status" select name="status" {
                option value="" { "any" }
                @for s in ["valid", "expiring", "expired", "revoked", "superseded"] {
                    option value=(s) selected[selected(&q.status, s)] { (s) }
                }
            } }
            label { "Tier" select name="tier" {
                option value="" { "any" }
                @for t in ca.config().clm.tiers.keys() {
                    option value=(t.as_str()) selected[selected(&q.tier, t.as_str())] { (t.as_str()) }
                }
            } }
            @if v.0.role != Role::Owner {
                label { "Owner" input type="text" name="owner" value=(given(&q.owner).unwrap_or_default()) size="14"; }
            }
            label { "Expiring within (days)" input type="number" name="expiring_within" min="0" max="3650" value=(given(&q.expiring_within).unwrap_or_default()); }
            label { "Search (subject, names)" input type="search" name="search" value=(given(&q.search).unwrap_or_default()); }
            @if let Some(s) = given(&q.source) { input type="hidden" name="source" value=(s); }
            @if let Some(s) = given(&q.sort) { input type="hidden" name="sort" value=(s); }
            button type="submit" { "Filter" }
            a href={ (PREFIX) "/certificates" } { "Clear" }
        }
        @if items.is_empty() {
            p.muted { "No certificate matches." }
        } @else {
            (rows(&items, t, f.sort, &base))
        }
        @if let Some(c) = next {
            p.pager { a rel="next" href={ (PREFIX) "/certificates?" (sorted) "cursor=" (c) } { "Next page →" } }
        }
    };
    Ok(layout::page(&v.0, "Certificates", body).into_response())
}

/// A column header that sorts the table by `key` (ascending, or descending when it already
/// sorts ascending by it), keeping the filters in `base` and starting from the first page.
fn sort_header(label: &str, key: InventorySortKey, current: InventorySort, base: &str) -> Markup {
    let active = current.key == key;
    let next = InventorySort { key, descending: active && !current.descending };
    let mark = match (active, current.descending) {
        (false, _) => "",
        (true, false) => " ▲",
        (true, true) => " ▼",
    };
    let order = match (active, current.descending) {
        (false, _) => "none",
        (true, false) => "ascending",
        (true, true) => "descending",
    };
    html! {
        th aria-sort=(order) {
            a.sort href={ (PREFIX) "/certificates?" (base) "sort=" (next.name()) } { (label) (mark) }
        }
    }
}

fn rows(items: &[InventoryItem], t: i64, sort: InventorySort, base: &str) -> Markup {
    use InventorySortKey as K;
    html! {
        table {
            thead { tr {
                th { "Subject" }
                (sort_header("Serial", K::Serial, sort, base))
                (sort_header("Status", K::Status, sort, base))
                th { "Issuing CA" }
                (sort_header("Owner", K::Owner, sort, base))
                (sort_header("Tier", K::Tier, sort, base))
                (sort_header("Issued", K::IssuedAt, sort, base))
                (sort_header("Expires", K::NotAfter, sort, base))
                th { "Source" }
            } }
            tbody {
                @for i in items {
                    tr {
                        td {
                            (layout::cert_link(&i.fingerprint, if i.subject.is_empty() { &i.serial } else { &i.subject }))
                            @if !i.sans.is_empty() { br; span.muted { (i.sans.join(", ")) } }
                        }
                        td.serial { (i.serial) }
                        td { (layout::status(i.status.as_str())) }
                        td { (i.issuer) }
                        td { (i.owner) }
                        td { (i.tier.as_str()) }
                        td { (layout::day(i.not_before)) }
                        td { (layout::day(i.not_after)) " " span.muted { "(" (layout::days_from(t, i.not_after)) " d)" } }
                        td { (i.source) }
                    }
                }
            }
        }
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The certificate `id` for `p` (refusing another owner's).
async fn load(state: &Dashboard, p: &Principal, id: &str) -> Result<(InventoryItem, Vec<u8>), Fail> {
    let ca = &state.admin.ca;
    let found = ca.ledger().inventory_item(id, &crate::clm::first_threshold(&ca.config().clm)).await?;
    let (item, der) = found.ok_or_else(|| Problem::not_found(format!("no certificate `{id}`")))?;
    p.require_owner_of(&state.admin, &item.owner).await?;
    Ok((item, der))
}

/// `GET /ui/certificates/{id}`.
pub async fn detail(State(state): State<Dashboard>, v: Viewer, Path(id): Path<String>) -> Result<Response, Fail> {
    v.require(&state, Action::Read).await?;
    let (item, der) = load(&state, &v.0, &id).await?;
    let ca = &state.admin.ca;
    let ledger = ca.ledger();
    let details = crate::clm::inventory::details(&der);
    let mut pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &der)
        .map_err(|_| Problem::from(crate::error::CaError::internal("PEM encoding")))?;
    let own = item.source != "import" && item.source != "discovery";
    let record = if own { ledger.certificate(&item.serial).await? } else { None };
    if let Some(issuer) = record.as_ref().and_then(|r| ca.ca_by_id(&r.issuer_id)) {
        pem.push_str(&ca.chain_without_root(issuer));
    }
    let history = if own { ledger.audit_page(None, None, Some(&item.serial), 50).await? } else { Vec::new() };
    let endpoints = ledger.endpoints_of(&item.fingerprint).await?;
    let checks = ledger.deployment_checks(Some(&item.fingerprint), 20).await?;
    let t = now();
    let can_revoke = own && v.0.role.allows(Action::Operate) && item.status.as_str() != "revoked";
    let body = html! {
        dl.facts {
            dt { "Status" } dd { (layout::status(item.status.as_str()))
                @if let Some(r) = &item.revocation_reason { " (" (r) ")" } }
            dt { "Subject" } dd { (item.subject) }
            dt { "Names" } dd { (item.sans.join(", ")) }
            dt { "Serial" } dd.mono { (item.serial) }
            dt { "SHA-256" } dd.mono { (item.fingerprint) }
            dt { "Issuing CA" } dd { (item.issuer) }
            dt { "Valid" } dd { (layout::utc(item.not_before)) " — " (layout::utc(item.not_after))
                " (" (layout::days_from(t, item.not_after)) " days left)" }
            dt { "Owner" } dd { (item.owner) }
            dt { "Tier" } dd { (item.tier.as_str()) }
            dt { "Application" } dd { (item.application.as_deref().unwrap_or("—")) }
            dt { "Renewal" } dd { (item.renewal_method) }
            dt { "Tags" } dd { (item.tags.join(", ")) }
            dt { "Source" } dd { (item.source) @if let Some(p) = &item.profile { " · profile " (p) } }
            dt { "Key" } dd { (details.key) " · " (details.signature_algorithm) }
            dt { "Renews" } dd {
                @match record.as_ref().and_then(|r| r.renews_serial.as_deref()) {
                    Some(s) => { (layout::cert_link(s, s)) }
                    None => { "—" }
                }
            }
            dt { "Superseded by" } dd {
                @match item.superseded_by.as_deref() {
                    Some(s) => { (layout::cert_link(s, s)) }
                    None => { "—" }
                }
            }
        }
        @if can_revoke {
            h2 { "Revoke" }
            form.inline method="post" action={ (PREFIX) "/certificates/" (item.fingerprint) "/revoke" } {
                (layout::csrf(&v.0))
                label { "Reason " select name="reason" { @for r in REASONS { option value=(r) { (r) } } } }
                button.danger type="submit" { "Revoke" }
            }
        }
        h2 { "Chain (PEM)" }
        pre.mono { (pem) }
        h2 { "Endpoints" }
        @if endpoints.is_empty() { p.muted { "Not seen by discovery." } } @else {
            table {
                thead { tr { th { "Endpoint" } th { "TLS" } th { "Findings" } th { "Last seen" } } }
                tbody { @for e in &endpoints { tr {
                    td { (e.host) ":" (e.port) @if !e.sni.is_empty() { " (SNI " (e.sni) ")" } }
                    td { (e.tls_version.as_deref().unwrap_or("—")) }
                    td { (e.findings.join(", ")) }
                    td { (layout::utc(e.last_seen)) }
                } } }
            }
        }
        h2 { "Deployment checks" }
        @if checks.is_empty() { p.muted { "None." } } @else {
            table {
                thead { tr { th { "When" } th { "Endpoint" } th { "Result" } th { "Failures" } } }
                tbody { @for c in &checks { tr {
                    td { (layout::utc(c.checked_at)) }
                    td { (c.host) ":" (c.port) }
                    td { @if c.ok { (layout::status("valid")) } @else { (layout::status("expired")) } }
                    td { @for f in &c.failures { (f.check) ": " (f.detail) br; } }
                } } }
            }
        }
        h2 { "Ledger history" }
        @if history.is_empty() { p.muted { "No audit rows." } } @else {
            table {
                thead { tr { th { "When" } th { "Event" } th { "By" } th { "Detail" } } }
                tbody { @for r in &history { tr {
                    td { (layout::utc(r.occurred_at)) }
                    td { (r.event) }
                    td { (r.actor) }
                    td.mono { (r.detail) }
                } } }
            }
        }
    };
    let title = if item.subject.is_empty() { item.serial.clone() } else { item.subject.clone() };
    Ok(layout::page(&v.0, &title, body).into_response())
}

/// The revoke form.
#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    /// RFC 5280 reason name.
    pub reason: Option<String>,
}

/// `POST /ui/certificates/{id}/revoke`.
pub async fn revoke(
    State(state): State<Dashboard>,
    Path(id): Path<String>,
    posted: Posted<RevokeForm>,
) -> Result<Response, Fail> {
    let p = posted.viewer;
    p.require(&state.admin, Action::Operate).await?;
    let reason: RevocationReason = posted.form.reason.as_deref().unwrap_or("unspecified").parse()?;
    let (item, _) = load(&state, &p, &id).await?;
    if matches!(item.source.as_str(), "import" | "discovery") {
        return Err(Problem::bad_request("privca revokes only certificates it issued").into());
    }
    state.admin.ca.revoke(&item.serial, reason, None, &p.requester()).await?;
    Ok(see_other(&format!("/certificates/{}", item.fingerprint)))
}
