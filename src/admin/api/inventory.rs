//! `/inventory/{id}` and `/owners`, `/clm/…`: the CLM side of the API. Changing a
//! certificate's owner, tier, application, renewal method or tags, acknowledging or muting its
//! notices, owner records, the notification outbox and the policy's counts; each change audited
//! like the CLI's.

use axum::{
    extract::{Path, State},
    http::StatusCode,
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
    audit::{AuditEvent, AuditKind},
    ledger::{EndpointListing, InventoryChange, OutboxMessage, Owner},
};

/// `PATCH /inventory/{id}`: absent fields stay as they are; an empty string clears
/// application and renewal method.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryPatch {
    /// New owner.
    pub owner: Option<String>,
    /// New tier.
    pub tier: Option<String>,
    /// Business application.
    pub application: Option<String>,
    /// acme, est, scep or manual.
    pub renewal_method: Option<String>,
    /// The new tag set.
    pub tags: Option<Vec<String>>,
}

/// Change a certificate's inventory fields.
#[utoipa::path(patch, path = "/inventory/{id}", tag = "inventory", request_body = InventoryPatch,
    params(("id" = String, Path, description = "serial (hex) or SHA-256 fingerprint")),
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AdminState>,
    p: Principal,
    Path(id): Path<String>,
    Body(b): Body<InventoryPatch>,
) -> Result<StatusCode, Problem> {
    p.require(&state, Action::Operate).await?;
    let first = crate::clm::first_threshold(&state.ca.config().clm);
    let (item, _) = state
        .ca
        .ledger()
        .inventory_item(&id, &first)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no certificate `{id}`")))?;
    p.require_owner_of(&state, &item.owner).await?;
    if b.owner.is_some() && p.role == crate::admin::auth::Role::Owner {
        return p.refuse(&state, "an owner cannot hand a certificate to another owner".into()).await;
    }
    if let Some(m) = b.renewal_method.as_deref() {
        crate::ledger::check_renewal_method(m)?;
    }
    let change = InventoryChange {
        owner: b.owner.filter(|o| !o.trim().is_empty()),
        tier: b.tier.as_deref().map(|t| crate::clm::query::tier(&state.ca.config().clm, t)).transpose()?,
        application: b.application.map(|a| (!a.is_empty()).then_some(a)),
        renewal_method: b.renewal_method.map(|m| (!m.is_empty()).then_some(m)),
        tags: b.tags.map(|t| t.into_iter().filter(|t| !t.is_empty()).collect()),
    };
    let e = AuditEvent::new(AuditKind::InventoryChanged, p.requester().to_string())
        .serial(item.serial.clone())
        .detail(serde_json::json!({ "fingerprint": item.fingerprint, "change": change }));
    state.ca.ledger().set_inventory(&item.fingerprint, &change, &e).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /inventory/{id}/mute`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteBody {
    /// `ack` (acknowledged: renewal under way) or `mute`.
    pub kind: String,
    /// For how many days (1-365).
    pub days: u32,
    /// Why (audited).
    pub reason: String,
}

/// Acknowledge or mute a certificate's expiry notices for a while.
#[utoipa::path(post, path = "/inventory/{id}/mute", tag = "inventory", request_body = MuteBody,
    params(("id" = String, Path, description = "serial (hex) or SHA-256 fingerprint")),
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn mute(
    State(state): State<AdminState>,
    p: Principal,
    Path(id): Path<String>,
    Body(b): Body<MuteBody>,
) -> Result<StatusCode, Problem> {
    p.require(&state, Action::Operate).await?;
    if !matches!(b.kind.as_str(), "ack" | "mute") || !(1..=365).contains(&b.days) || b.reason.trim().is_empty() {
        return Err(Problem::bad_request("kind is ack or mute, days 1-365, and a reason is required"));
    }
    let first = crate::clm::first_threshold(&state.ca.config().clm);
    let (item, _) = state
        .ca
        .ledger()
        .inventory_item(&id, &first)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no certificate `{id}`")))?;
    p.require_owner_of(&state, &item.owner).await?;
    let until = crate::ledger::now() + i64::from(b.days) * 86_400;
    let e = AuditEvent::new(AuditKind::ClmMuted, p.requester().to_string()).serial(item.serial.clone()).detail(
        serde_json::json!({ "fingerprint": item.fingerprint, "kind": b.kind, "until": until, "reason": b.reason }),
    );
    state.ca.ledger().mute(&item.fingerprint, &b.kind, until, &b.reason, &e).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Owner records and the names no record claims yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct Owners {
    /// Owner records.
    #[schema(value_type = Vec<Object>)]
    pub owners: Vec<Owner>,
    /// Owner names certificates carry that no record claims (unowned).
    #[schema(value_type = Vec<Object>)]
    pub unclaimed: Vec<crate::ledger::UnclaimedOwner>,
}

/// List owners.
#[utoipa::path(get, path = "/owners", tag = "inventory",
    responses((status = 200, body = Owners), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn owners(State(state): State<AdminState>, p: Principal) -> Result<Json<Owners>, Problem> {
    p.require(&state, Action::Read).await?;
    let ledger = state.ca.ledger();
    let mine = p.scope_owner(None);
    let mut owners = ledger.owners().await?;
    let mut unclaimed = ledger.unclaimed_owners().await?;
    if let Some(me) = mine {
        owners.retain(|o| o.name == me);
        unclaimed.retain(|o| o.name == me);
    }
    Ok(Json(Owners { owners, unclaimed }))
}

/// `PUT /owners/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnerBody {
    /// `person` or `team`.
    pub kind: String,
    /// Human name.
    pub display_name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Chat or automation webhook URL.
    pub webhook: Option<String>,
    /// json, slack or teams.
    pub webhook_format: Option<String>,
    /// Phone number for SMS.
    pub phone: Option<String>,
    /// Owner escalations go to.
    pub escalation: Option<String>,
}

/// Create or replace an owner record.
#[utoipa::path(put, path = "/owners/{name}", tag = "inventory", request_body = OwnerBody,
    params(("name" = String, Path, description = "owner name")),
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn put_owner(
    State(state): State<AdminState>,
    p: Principal,
    Path(name): Path<String>,
    Body(b): Body<OwnerBody>,
) -> Result<StatusCode, Problem> {
    p.require(&state, Action::Enroll).await?;
    let format = b.webhook_format.unwrap_or_else(|| "json".into());
    let valid = !name.is_empty()
        && name.len() <= 128
        && matches!(b.kind.as_str(), "person" | "team")
        && matches!(format.as_str(), "json" | "slack" | "teams");
    if !valid {
        return Err(Problem::bad_request(
            "name 1-128 characters, kind person or team, webhook_format json, slack or teams",
        ));
    }
    let o = Owner {
        name: name.clone(),
        kind: b.kind,
        display_name: b.display_name,
        email: b.email,
        webhook: b.webhook,
        webhook_format: format,
        phone: b.phone,
        escalation: b.escalation,
    };
    let e =
        AuditEvent::new(AuditKind::OwnerChanged, p.requester().to_string()).detail(serde_json::json!({ "owner": o }));
    state.ca.ledger().put_owner(&o, &e).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?state=&limit=` of the outbox list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// pending, sending, sent or dead.
    pub state: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// The CLM notification outbox, newest first.
#[utoipa::path(get, path = "/clm/outbox", tag = "inventory", params(OutboxQuery),
    responses((status = 200, body = Vec<Object>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn outbox(
    State(state): State<AdminState>,
    p: Principal,
    Params(q): Params<OutboxQuery>,
) -> Result<Json<Vec<OutboxMessage>>, Problem> {
    p.require(&state, Action::Read).await?;
    p.require_not_owner(&state, "notification messages").await?;
    if let Some(s) = q.state.as_deref().filter(|s| !matches!(*s, "pending" | "sending" | "sent" | "dead")) {
        return Err(Problem::bad_request(format!("unknown state `{s}`")));
    }
    let limit = i64::from(q.limit.unwrap_or(100).clamp(1, 1000));
    Ok(Json(state.ca.ledger().outbox(q.state.as_deref(), limit).await?))
}

/// `?after=&limit=` of the endpoint list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EndpointQuery {
    /// Only endpoints after this `host:port:sni` (the last one of the previous page).
    pub after: Option<String>,
    /// Rows per page (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Discovery results: every endpoint scanned, with the leaf it served and its findings.
#[utoipa::path(get, path = "/discovery/endpoints", tag = "inventory", params(EndpointQuery),
    responses((status = 200, body = Vec<EndpointListing>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn endpoints(
    State(state): State<AdminState>,
    p: Principal,
    Params(q): Params<EndpointQuery>,
) -> Result<Json<Vec<EndpointListing>>, Problem> {
    p.require(&state, Action::Read).await?;
    p.require_not_owner(&state, "discovery results").await?;
    let after = match q.after.as_deref() {
        None => (String::new(), -1, String::new()),
        Some(a) => {
            let mut parts = a.splitn(3, ':');
            let (host, port, sni) = (parts.next(), parts.next().and_then(|p| p.parse().ok()), parts.next());
            match (host, port, sni) {
                (Some(h), Some(p), Some(s)) => (h.to_owned(), p, s.to_owned()),
                _ => return Err(Problem::bad_request("after is host:port:sni")),
            }
        }
    };
    let limit = i64::from(q.limit.unwrap_or(100).clamp(1, 1000));
    Ok(Json(state.ca.ledger().endpoints((&after.0, after.1, &after.2), limit).await?))
}
