//! `/ui/keystore`: the form that issues a certificate for a server-generated key and answers
//! with the password-protected PKCS#12 as a download ([`crate::admin::keystore`]), for owners
//! whose systems cannot make a CSR. Operators and admins name any owner; an `owner` gets its
//! own. The password is typed twice and never shown again, stored or logged.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use maud::html;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{layout, Dashboard, Fail, Posted, Viewer, PREFIX};
use crate::admin::{
    api::keystore::download,
    auth::{Action, Principal, Role},
    keystore::{self, KeystoreRequest},
    pkcs12::MIN_PASSWORD,
    problem::Problem,
};

/// `GET /ui/keystore`.
pub async fn form(State(state): State<Dashboard>, v: Viewer) -> Result<Response, Fail> {
    v.require(&state, Action::Operate).await?;
    Ok(page(&state, &v.0, None, StatusCode::OK))
}

fn page(state: &Dashboard, p: &Principal, error: Option<&str>, status: StatusCode) -> Response {
    let config = state.admin.ca.config();
    let profiles: Vec<&String> = config
        .profiles
        .iter()
        .filter(|(_, pr)| !pr.approval && pr.allowed_keys.iter().any(|k| crate::ca::keygen::GENERATED.contains(k)))
        .map(|(name, _)| name)
        .collect();
    let body = html! {
        p.muted {
            "For systems that cannot make a CSR: privca generates the key, has the certificate signed, and hands "
            "both over once as a PKCS#12 protected by your password. privca keeps no copy of the key."
        }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.stack method="post" action={ (PREFIX) "/keystore" } {
            (layout::csrf(p))
            label { "Profile" select name="profile" required {
                @for name in &profiles { option value=(name) { (name) } }
            } }
            label { "Names (DNS names, IP or e-mail addresses; comma or space separated)"
                input type="text" name="names" size="50" required; }
            label { "Subject CN (default: the first name)" input type="text" name="common_name" size="30"; }
            @if p.role != Role::Owner {
                label { "Owner" input type="text" name="owner" size="20"; }
            }
            label { "Key" select name="key" {
                option value="" { "the profile's default" }
                option value="ecdsa-p256" { "ECDSA P-256" }
                option value="ecdsa-p384" { "ECDSA P-384" }
            } }
            label { "Password (at least " (MIN_PASSWORD) " characters)"
                input type="password" name="password" minlength=(MIN_PASSWORD) autocomplete="new-password" required; }
            label { "Password again" input type="password" name="password2" minlength=(MIN_PASSWORD) autocomplete="new-password" required; }
            button type="submit" { "Issue and download" }
        }
    };
    (status, layout::page(p, "Server-generated key (PKCS#12)", body)).into_response()
}

/// The form's fields.
#[derive(Deserialize)]
pub struct KeystoreForm {
    /// Profile.
    pub profile: String,
    /// Names, comma or space separated.
    pub names: String,
    /// Subject CN.
    pub common_name: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Key type.
    pub key: Option<String>,
    /// Password.
    pub password: String,
    /// Password, again.
    pub password2: String,
}

/// `POST /ui/keystore`: the PKCS#12 download, or the form again with what was wrong.
pub async fn submit(State(state): State<Dashboard>, posted: Posted<KeystoreForm>) -> Result<Response, Fail> {
    let p = posted.viewer;
    let f = posted.form;
    p.require(&state.admin, Action::Operate).await?;
    let password = Zeroizing::new(f.password);
    let again = Zeroizing::new(f.password2);
    if *password != *again {
        return Ok(page(&state, &p, Some("The two passwords differ."), StatusCode::BAD_REQUEST));
    }
    let request = KeystoreRequest {
        profile: f.profile,
        common_name: f.common_name,
        names: f.names.split([',', ' ', '\n', '\r', '\t']).map(str::to_owned).collect(),
        owner: f.owner.filter(|o| !o.trim().is_empty()).map(|o| o.trim().to_owned()),
        key: f.key,
        password,
    };
    match keystore::issue(&state.admin, &p, request).await {
        Ok(k) => Ok(download(StatusCode::OK, k)),
        Err(e) if is_input(&e) => Ok(page(&state, &p, Some(&e.detail), e.status())),
        Err(e) => Err(e.into()),
    }
}

/// Whether `e` is about what was typed (shown on the form) rather than a refusal or a fault.
fn is_input(e: &Problem) -> bool {
    matches!(e.status(), StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY)
}
