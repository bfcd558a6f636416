//! `/ui/access`: users and API tokens with their last use (the access review; auditors read
//! it), and for admins the forms that create a token (its text shown once, on the answer
//! page only), revoke a token and disable a user, through [`crate::admin::access`].

use axum::{
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use maud::{html, Markup};
use serde::Deserialize;

use super::{layout, see_other, Dashboard, Fail, Posted, Viewer, PREFIX};
use crate::admin::{
    access,
    auth::{Action, Principal},
    problem::Problem,
};

/// `GET /ui/access`.
pub async fn page(State(state): State<Dashboard>, v: Viewer) -> Result<Response, Fail> {
    v.require(&state, Action::Audit).await?;
    Ok(render(&state, &v.0, None).await?.into_response())
}

async fn render(state: &Dashboard, p: &Principal, created: Option<(String, String)>) -> Result<Markup, Fail> {
    let ledger = state.admin.ca.ledger();
    let users = ledger.admin_users().await?;
    let tokens = ledger.admin_tokens().await?;
    let admin = p.role.allows(Action::Access);
    let t = crate::ledger::now();
    let when = |v: Option<i64>| v.map(layout::utc).unwrap_or_else(|| "—".into());
    let body = html! {
        @if let Some((id, text)) = &created {
            div.notice {
                p { "Token " code { (id) } " created. Copy it now: it is not shown again." }
                pre.mono { (text) }
            }
        }
        h2 { "Users" }
        table {
            thead { tr { th { "Name" } th { "Role" } th { "Owner" } th { "TOTP" } th { "Created" } th { "State" } @if admin { th {} } } }
            tbody { @for u in &users { tr {
                td { (u.name) }
                td { (u.role) }
                td { (u.owner.as_deref().unwrap_or("—")) }
                td { @if u.totp { "enrolled" } @else { "—" } }
                td { (layout::utc(u.created_at)) }
                td { @match u.disabled_at { Some(d) => { (layout::status("revoked")) " since " (layout::day(d)) } None => { (layout::status("valid")) } } }
                @if admin { td {
                    @if u.disabled_at.is_none() && u.name != p.name {
                        form.inline method="post" action={ (PREFIX) "/access/users/" (u.name) "/disable" } {
                            (layout::csrf(p)) button.danger type="submit" { "Disable" }
                        }
                    }
                } }
            } } }
        }
        p.muted { "Users are created with " code { "privca admin user add NAME --role ROLE" } " on the CA host." }
        h2 { "API tokens" }
        table {
            thead { tr { th { "Id" } th { "Role" } th { "User" } th { "Owner" } th { "Note" } th { "Created" } th { "Expires" } th { "Last use" } th { "State" } @if admin { th {} } } }
            tbody { @for k in &tokens { tr {
                td.mono { (k.id) }
                td { (k.role) }
                td { (k.user_name.as_deref().unwrap_or("—")) }
                td { (k.owner.as_deref().unwrap_or("—")) }
                td { (k.note.as_deref().unwrap_or("")) }
                td { (layout::utc(k.created_at)) }
                td { (layout::utc(k.expires_at)) }
                td { (when(k.last_used_at)) }
                td {
                    @if k.revoked_at.is_some() { (layout::status("revoked")) }
                    @else if k.expires_at <= t { (layout::status("expired")) }
                    @else { (layout::status("valid")) }
                }
                @if admin { td {
                    @if k.revoked_at.is_none() && k.expires_at > t {
                        form.inline method="post" action={ (PREFIX) "/access/tokens/" (k.id) "/revoke" } {
                            (layout::csrf(p)) button.danger type="submit" { "Revoke" }
                        }
                    }
                } }
            } } }
        }
        @if admin {
            h2 { "New API token" }
            form.filters method="post" action={ (PREFIX) "/access/tokens" } {
                (layout::csrf(p))
                label { "Role" select name="role" {
                    @for r in ["operator", "auditor", "approver", "owner", "metrics", "admin"] { option value=(r) { (r) } }
                } }
                label { "Days" input type="number" name="days" min="1" max=(access::MAX_TOKEN_DAYS) value="30" required; }
                label { "For user" input type="text" name="user" size="12"; }
                label { "Owner (role owner)" input type="text" name="owner" size="12"; }
                label { "Note" input type="text" name="note" size="20"; }
                button type="submit" { "Create" }
            }
        }
    };
    Ok(layout::page(p, "Users and tokens", body))
}

/// The new-token form.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    /// Role.
    pub role: String,
    /// Lifetime in days.
    pub days: String,
    /// User it is made for.
    pub user: Option<String>,
    /// CLM owner (role owner).
    pub owner: Option<String>,
    /// Free text.
    pub note: Option<String>,
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `POST /ui/access/tokens`: answers with the page showing the token once.
pub async fn create_token(State(state): State<Dashboard>, posted: Posted<TokenForm>) -> Result<Response, Fail> {
    let p = posted.viewer;
    p.require(&state.admin, Action::Access).await?;
    let f = posted.form;
    let days: u32 = f.days.trim().parse().map_err(|_| Problem::bad_request("days is a number"))?;
    let (user, owner, note) = (nonempty(f.user), nonempty(f.owner), nonempty(f.note));
    let (id, text) = access::create_token(
        state.admin.ca.ledger(),
        &f.role,
        days,
        user.as_deref(),
        owner.as_deref(),
        note.as_deref(),
        &p.requester(),
    )
    .await?;
    Ok(render(&state, &p, Some((id, text.to_string()))).await?.into_response())
}

/// A form with its CSRF field only.
#[derive(Debug, Deserialize)]
pub struct Confirm {}

/// `POST /ui/access/tokens/{id}/revoke`.
pub async fn revoke_token(
    State(state): State<Dashboard>,
    Path(id): Path<String>,
    posted: Posted<Confirm>,
) -> Result<Response, Fail> {
    let p = posted.viewer;
    p.require(&state.admin, Action::Access).await?;
    if !access::revoke_token(state.admin.ca.ledger(), &id, &p.requester()).await? {
        return Err(Problem::not_found(format!("no live token `{id}`")).into());
    }
    Ok(see_other("/access"))
}

/// `POST /ui/access/users/{name}/disable`.
pub async fn disable_user(
    State(state): State<Dashboard>,
    Path(name): Path<String>,
    posted: Posted<Confirm>,
) -> Result<Response, Fail> {
    let p = posted.viewer;
    p.require(&state.admin, Action::Access).await?;
    if name == p.name {
        return Err(Problem::bad_request("disable yourself from another admin account").into());
    }
    access::set_disabled(state.admin.ca.ledger(), &name, true, &p.requester()).await?;
    Ok(see_other("/access"))
}
