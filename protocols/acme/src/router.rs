//! HTTP binding: every ACME route, generic over the core's [`AcmeBackend`]. Mount with
//! `nest(prefix, router(...))` on the HTTPS listener; the prefix must match
//! [`AcmeSettings::prefix`](crate::AcmeSettings).

use std::{future::Future, sync::Arc};

use axum::{
    body::{Body, Bytes},
    extract::{OriginalUri, Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode, Uri},
    response::Response,
    routing::{get, post},
    Router,
};

use crate::{
    backend::AcmeBackend,
    error::{AcmeError, ErrorType},
    reply::{self, Reply},
    request::{AcmeState, Signed, Signer},
    resource::{account, authz, certificate, directory, order, renewal_info, revoke},
};

/// Largest JWS body accepted (a CSR with 100 names and an RSA-4096 key fits many times).
pub const MAX_BODY: usize = 64 * 1024;

type St<B> = Arc<AcmeState<B>>;

/// The ACME routes.
pub fn router<B: AcmeBackend>(state: AcmeState<B>) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route("/directory", get(directory_get::<B>).post(directory_get::<B>))
        .route("/new-nonce", get(new_nonce::<B>).head(new_nonce_head::<B>))
        .route("/new-account", post(new_account::<B>).get(not_allowed::<B>))
        .route("/account/{id}", post(account_post::<B>).get(not_allowed::<B>))
        .route("/account/{id}/orders", post(account_orders::<B>).get(not_allowed::<B>))
        .route("/key-change", post(key_change::<B>).get(not_allowed::<B>))
        .route("/new-order", post(new_order::<B>).get(not_allowed::<B>))
        .route("/order/{id}", post(order_post::<B>).get(not_allowed::<B>))
        .route("/order/{id}/finalize", post(finalize::<B>).get(not_allowed::<B>))
        .route("/authz/{id}", post(authz_post::<B>).get(not_allowed::<B>))
        .route("/chall/{id}/{kind}", post(challenge_post::<B>).get(not_allowed::<B>))
        .route("/cert/{serial}", post(cert_post::<B>).get(not_allowed::<B>))
        .route("/revoke-cert", post(revoke_cert::<B>).get(not_allowed::<B>))
        .route("/renewal-info/{id}", get(renewal_info_get::<B>))
        .fallback(not_found::<B>)
        .with_state(state)
}

async fn read_body(body: Body) -> Result<Bytes, AcmeError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        AcmeError::new(ErrorType::PayloadTooLarge, format!("request bodies are limited to {MAX_BODY} bytes"))
    })
}

/// Authenticates, runs `f`, and renders the answer with a fresh nonce.
async fn signed<B, F, Fut>(s: St<B>, uri: Uri, headers: HeaderMap, body: Body, signer: Signer, f: F) -> Response
where
    B: AcmeBackend,
    F: FnOnce(St<B>, Signed) -> Fut,
    Fut: Future<Output = Result<Reply, AcmeError>>,
{
    let result = match read_body(body).await {
        Ok(bytes) => match s.authenticate(&uri, &headers, &bytes, signer).await {
            Ok(req) => f(Arc::clone(&s), req).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        if e.kind == ErrorType::ServerInternal {
            tracing::error!(path = %uri.path(), "ACME request failed: {}", e.detail);
        } else {
            tracing::debug!(path = %uri.path(), problem = e.kind.name(), detail = %e.detail, "ACME request refused");
        }
    }
    reply::render(result, &s.links, Some(s.nonces.issue()))
}

async fn directory_get<B: AcmeBackend>(State(s): State<St<B>>) -> Response {
    let mut r = Response::new(Body::from(directory::directory(&s.links, &s.settings).to_string()));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    reply::cors(r.headers_mut());
    r
}

fn nonce_response<B>(s: &AcmeState<B>, status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&s.nonces.issue()) {
        h.insert("replay-nonce", v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&s.links.index_link()) {
        h.insert(header::LINK, v);
    }
    reply::cors(h);
    r
}

async fn new_nonce<B: AcmeBackend>(State(s): State<St<B>>) -> Response {
    nonce_response(&s, StatusCode::NO_CONTENT)
}

async fn new_nonce_head<B: AcmeBackend>(State(s): State<St<B>>) -> Response {
    nonce_response(&s, StatusCode::OK)
}

async fn not_allowed<B: AcmeBackend>(State(s): State<St<B>>) -> Response {
    let e = AcmeError::new(ErrorType::MethodNotAllowed, "this resource accepts only POST (use POST-as-GET)");
    let mut r = reply::render(Err(e), &s.links, None);
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

async fn not_found<B: AcmeBackend>(State(s): State<St<B>>) -> Response {
    reply::render(Err(AcmeError::not_found("resource")), &s.links, None)
}

macro_rules! handler {
    ($name:ident, $signer:expr, |$s:ident, $req:ident| $body:expr) => {
        async fn $name<B: AcmeBackend>(
            State(s): State<St<B>>,
            OriginalUri(uri): OriginalUri,
            headers: HeaderMap,
            body: Body,
        ) -> Response {
            signed(s, uri, headers, body, $signer, |$s, $req| async move { $body }).await
        }
    };
    ($name:ident, $signer:expr, $param:ty, |$s:ident, $req:ident, $p:ident| $body:expr) => {
        async fn $name<B: AcmeBackend>(
            State(s): State<St<B>>,
            Path($p): Path<$param>,
            OriginalUri(uri): OriginalUri,
            headers: HeaderMap,
            body: Body,
        ) -> Response {
            signed(s, uri, headers, body, $signer, |$s, $req| async move { $body }).await
        }
    };
}

handler!(new_account, Signer::Jwk, |s, req| account::new_account(&s, req).await);
handler!(key_change, Signer::Kid, |s, req| account::key_change(&s, req).await);
handler!(new_order, Signer::Kid, |s, req| order::new_order(&s, req).await);
handler!(revoke_cert, Signer::Either, |s, req| revoke::revoke(&s, req).await);
handler!(account_post, Signer::Kid, String, |s, req, id| account::update(&s, req, &id).await);
handler!(account_orders, Signer::Kid, String, |s, req, id| account::orders(&s, req, &id).await);
handler!(order_post, Signer::Kid, String, |s, req, id| order::read(&s, req, &id).await);
handler!(finalize, Signer::Kid, String, |s, req, id| order::finalize(&s, req, &id).await);
handler!(authz_post, Signer::Kid, String, |s, req, id| authz::authz(&s, req, &id).await);
handler!(challenge_post, Signer::Kid, (String, String), |s, req, p| authz::challenge(&s, req, &p.0, &p.1).await);

async fn cert_post<B: AcmeBackend>(
    State(s): State<St<B>>,
    Path(serial): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let accept = headers.clone();
    signed(s, uri, headers, body, Signer::Kid, |s, req| async move {
        certificate::download(&s, req, &accept, &serial).await
    })
    .await
}

async fn renewal_info_get<B: AcmeBackend>(State(s): State<St<B>>, Path(id): Path<String>) -> Response {
    reply::render(renewal_info::renewal_info(&s, &id).await, &s.links, None)
}
