//! `POST /certificates/keystore`: a certificate for a key privca generates, answered as a
//! password-protected PKCS#12 ([`crate::admin::keystore`]). The password travels in the
//! authenticated request's body and is never stored or logged.

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::extract::Body;
use crate::admin::{
    auth::Principal,
    keystore::{self, KeystoreRequest},
    problem::Problem,
    AdminState,
};

/// `POST /certificates/keystore`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeystoreBody {
    /// Profile name (one that issues without approval).
    pub profile: String,
    /// Subject CN (default: the first name).
    pub common_name: Option<String>,
    /// DNS names, IP addresses or e-mail addresses for the subjectAltName (at most 100).
    #[serde(default)]
    pub names: Vec<String>,
    /// CLM owner (default: the profile's; role `owner`: always its own).
    pub owner: Option<String>,
    /// `ecdsa-p256` or `ecdsa-p384` (default: the first of these the profile allows).
    pub key: Option<String>,
    /// The PKCS#12's password, 12 to 256 characters.
    pub password: String,
}

/// Issue a certificate for a server-generated key, as a PKCS#12.
#[utoipa::path(post, path = "/certificates/keystore", tag = "certificates", request_body = KeystoreBody,
    responses((status = 201, content_type = "application/x-pkcs12",
            description = "PKCS#12: the key (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC) and the chain, MAC HMAC-SHA-256; \
                           the serial in `X-Privca-Serial`"),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn keystore(
    State(state): State<AdminState>,
    p: Principal,
    Body(b): Body<KeystoreBody>,
) -> Result<Response, Problem> {
    let request = KeystoreRequest {
        profile: b.profile,
        common_name: b.common_name,
        names: b.names,
        owner: b.owner,
        key: b.key,
        password: Zeroizing::new(b.password),
    };
    let k = keystore::issue(&state, &p, request).await?;
    Ok(download(StatusCode::CREATED, k))
}

/// The PKCS#12 as a download named after the serial.
pub fn download(status: StatusCode, k: keystore::Keystore) -> Response {
    let disposition = format!("attachment; filename=\"{}.p12\"", k.serial);
    (
        status,
        [
            (header::CONTENT_TYPE, "application/x-pkcs12".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::HeaderName::from_static("x-privca-serial"), k.serial),
        ],
        k.pkcs12,
    )
        .into_response()
}
