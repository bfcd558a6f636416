//! The JSON API under `/api/v1/`. Routes and their OpenAPI 3.1 description come from the same
//! registrations ([`utoipa_axum`]), so the document at `/api/v1/openapi.json` lists exactly the
//! routes served. Every route but `/health` and the document authenticates ([`Principal`]);
//! bodies are JSON of at most [`extract::BODY_LIMIT`] bytes with unknown fields refused; every
//! error is a problem document ([`Problem`]).
//!
//! [`Principal`]: crate::admin::auth::Principal

// `#[utoipa::path(params(T))]` expands to qualified paths of the handlers' own types.
#![allow(unused_qualifications)]

pub mod access;
pub mod approvals;
pub mod audit;
pub mod certificates;
pub mod enroll;
pub mod extract;
pub mod inventory;
pub mod keystore;
pub mod reports;

use axum::{extract::DefaultBodyLimit, extract::State, http::StatusCode, routing::get, Json, Router};
use serde::Serialize;
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi, ToSchema,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{problem::Problem, AdminState};

#[derive(OpenApi)]
#[openapi(
    info(title = "privca admin API", description = "Certificates, inventory, approvals, enrollment credentials, audit log and access of a privca CA."),
    servers((url = "/api/v1")),
    components(schemas(Problem)),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("pca_<id>_<secret>").build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The API's router (to nest under `/api/v1`) and its OpenAPI document.
pub fn parts() -> (Router<AdminState>, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(certificates::list, certificates::issue))
        .routes(routes!(keystore::keystore))
        .routes(routes!(certificates::show))
        .routes(routes!(certificates::chain))
        .routes(routes!(certificates::revoke))
        .routes(routes!(inventory::patch))
        .routes(routes!(inventory::mute))
        .routes(routes!(inventory::owners))
        .routes(routes!(inventory::put_owner))
        .routes(routes!(inventory::outbox))
        .routes(routes!(approvals::list))
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::deny))
        .routes(routes!(enroll::est_users, enroll::est_user))
        .routes(routes!(enroll::scep_challenges, enroll::scep_challenge))
        .routes(routes!(enroll::eab_keys, enroll::eab_key))
        .routes(routes!(enroll::acme_accounts))
        .routes(routes!(inventory::endpoints))
        .routes(routes!(audit::list))
        .routes(routes!(audit::verify))
        .routes(routes!(audit::export))
        .routes(routes!(reports::report))
        .routes(routes!(access::users, access::create_user))
        .routes(routes!(access::disable_user))
        .routes(routes!(access::tokens, access::create_token))
        .routes(routes!(access::revoke_token))
        .split_for_parts();
    (router, with_operation_ids(doc))
}

/// Names every operation after its method and path (`get_certificates_id_chain`): handler names
/// repeat across modules, and OpenAPI wants each operation id once.
fn with_operation_ids(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    for (path, item) in doc.paths.paths.iter_mut() {
        let name: String = path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let name = name.split('_').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("_");
        for (method, op) in [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("patch", &mut item.patch),
            ("delete", &mut item.delete),
        ] {
            if let Some(op) = op {
                op.operation_id = Some(format!("{method}_{name}"));
            }
        }
    }
    doc
}

/// The API, with `/openapi.json`, bound to `state`.
pub fn router(state: AdminState) -> Router {
    let (router, doc) = parts();
    let doc = std::sync::Arc::new(doc);
    router
        .route("/openapi.json", get(move || async move { Json(doc.as_ref().clone()) }))
        .fallback(|| async { Problem::not_found("no such API route") })
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .with_state(state)
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: &'static str,
    /// Whether the ledger answers (and, on SQLite, has room for a commit).
    pub ledger: bool,
    /// Whether the HSM signs.
    pub hsm: bool,
}

/// Health of the CA (no authentication).
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<AdminState>) -> (StatusCode, Json<Health>) {
    let health = state.ca.health().await;
    let status = if health.is_up() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(Health {
            status: if health.is_up() { "ok" } else { "degraded" },
            ledger: health.ledger.is_up(),
            hsm: health.hsm.is_up(),
        }),
    )
}
