//! The only place top-level paths are composed (the prefixes come from [`crate::paths`]). Plain HTTP serves what relying parties fetch
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
    paths::{ACME_PREFIX, CRL_PREFIX, EST_PREFIX, OCSP_PREFIX, SCEP_PREFIX},
    server::listener::ClientChain,
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
        .nest(CRL_PREFIX, crl)
        .nest(OCSP_PREFIX, ocsp);
    match scep {
        Some((adapter, settings)) => router.nest_service(SCEP_PREFIX, privca_scep::router(adapter, settings)),
        None => router,
    }
}

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
        let est = privca_est::router(adapter, settings).layer(axum::middleware::map_request(est_client_chain));
        router = router.nest(EST_PREFIX, est);
    }
    router
}

/// The connection's verified TLS client chain ([`ClientChain`]) as EST reads it (RFC 7030
/// §3.3.2 client certificates).
async fn est_client_chain(mut request: axum::extract::Request) -> axum::extract::Request {
    if let Some(ClientChain(chain)) = request.extensions().get::<ClientChain>().cloned() {
        request.extensions_mut().insert(privca_est::auth::TlsClientChain(chain));
    }
    request
}

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

/// Liveness and readiness: 200 when the ledger and the HSM answer, otherwise 503 naming the
/// dependency that is down (`ca::health`).
async fn healthz(State(ca): State<CertificateAuthority>) -> Response {
    let health = ca.health().await;
    let status = if health.is_up() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, [(header::CONTENT_TYPE, "text/plain")], health.text()).into_response()
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
