//! The only place top-level paths are composed. Plain HTTP serves what relying parties fetch
//! without TLS (health, CA certificates for AIA, CRLs, OCSP; SCEP joins here with its issue); HTTPS serves the enrollment protocols; the admin listener is separate.

use axum::{
    body::Body,
    extract::{Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

use metrics_exporter_prometheus::PrometheusHandle;

use crate::{
    adapters::{acme::AcmeAdapter, crl::CrlAdapter, est::EstAdapter, ocsp::OcspAdapter, scep::ScepAdapter},
    ca::{ocsp::OcspService, x509, CertificateAuthority},
};

/// Plain HTTP: `/healthz`, `/ca/<name>`, `/crl/<name>.crl`, `/ocsp` (POST and GET) and, when
/// enabled, SCEP under `/scep` (any sub-path).
pub fn http(
    ca: CertificateAuthority,
    ocsp: OcspService,
    scep: Option<(ScepAdapter, privca_scep::ScepSettings)>,
) -> Router {
    let crl = privca_crl::router::router(CrlAdapter::new(ca.ledger().clone()));
    let ocsp = privca_ocsp::router::router(OcspAdapter(ocsp));
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/ca/{file}", get(ca_file))
        .with_state(ca)
        .nest("/crl", crl)
        .nest("/ocsp", ocsp);
    match scep {
        Some((adapter, settings)) => router.nest_service(SCEP_PREFIX, privca_scep::router(adapter, settings)),
        None => router,
    }
}

/// Where the SCEP server is mounted (devices append their own path below it).
pub const SCEP_PREFIX: &str = "/scep";

/// HTTPS: `/healthz` and, when enabled, ACME under `/acme` and EST under `/.well-known/est`.
pub fn https(
    ca: CertificateAuthority,
    acme: Option<privca_acme::AcmeState<AcmeAdapter>>,
    est: Option<(EstAdapter, privca_est::EstSettings)>,
) -> Router {
    let mut router = Router::new().route("/healthz", get(healthz)).with_state(ca);
    if let Some(state) = acme {
        router = router.nest(ACME_PREFIX, privca_acme::router::router(state));
    }
    if let Some((adapter, settings)) = est {
        router = router.nest(EST_PREFIX, privca_est::router(adapter, settings));
    }
    router
}

/// Where the ACME server is mounted.
pub const ACME_PREFIX: &str = "/acme";

/// Where the EST server is mounted (RFC 7030 §3.2.2).
pub const EST_PREFIX: &str = "/.well-known/est";

/// Admin listener: `/healthz`, `/metrics` (Prometheus text: anonymous only while the admin
/// listener is bound to a loopback address, else a token with role `metrics` or `admin`), and
/// the admin API under `/api/v1/`, the dashboard under `/ui/` (`/` redirects there).
pub fn admin(ca: CertificateAuthority, metrics: Option<PrometheusHandle>) -> Router {
    let state = crate::admin::AdminState { ca: ca.clone() };
    let anonymous = ca.config().server.admin_listen.ip().is_loopback();
    let router = Router::new()
        .route("/healthz", get(healthz))
        .with_state(ca)
        .route("/", get(|| async { axum::response::Redirect::to("/ui/") }))
        .nest("/api/v1", crate::admin::api::router(state.clone()))
        .merge(crate::admin::dashboard::router(state.clone()));
    match metrics {
        Some(handle) => router.route(
            "/metrics",
            get(move |request: axum::extract::Request| async move {
                if !anonymous {
                    let (mut parts, _) = request.into_parts();
                    let p = <crate::admin::auth::Principal as axum::extract::FromRequestParts<_>>::from_request_parts(
                        &mut parts, &state,
                    )
                    .await
                    .map_err(IntoResponse::into_response)?;
                    p.require(&state, crate::admin::auth::Action::Metrics)
                        .await
                        .map_err(IntoResponse::into_response)?;
                }
                Ok::<_, Response>(handle.render())
            }),
        ),
        None => router,
    }
}

/// Liveness and readiness: the ledger answers.
async fn healthz(State(ca): State<CertificateAuthority>) -> Response {
    match ca.ledger().ping().await {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: ledger unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "ledger unavailable\n").into_response()
        }
    }
}

/// `/ca/root.pem|.der`, `/ca/<issuer>.pem|.der`, `/ca/<issuer>-chain.pem`.
async fn ca_file(State(ca): State<CertificateAuthority>, Path(file): Path<String>) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "no such CA certificate\n").into_response();
    let (name, ext) = match file.rsplit_once('.') {
        Some(x) => x,
        None => return not_found(),
    };
    let (id, chain) = match name.strip_suffix("-chain") {
        Some(id) => (id, true),
        None => (name, false),
    };
    let issuer = if id == "root" { ca.root() } else { ca.issuer(id) };
    let Some(issuer) = issuer else { return not_found() };
    let (body, content_type) = match (ext, chain) {
        ("der", false) => (issuer.der.clone(), "application/pkix-cert"),
        ("pem", false) => (x509::pem(&issuer.der).into_bytes(), "application/x-pem-file"),
        ("pem", true) => (issuer.chain_pem.clone().into_bytes(), "application/pem-certificate-chain"),
        _ => return not_found(),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
