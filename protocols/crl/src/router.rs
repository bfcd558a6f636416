//! HTTP publication: `GET /{name}.crl` (the core nests this under `/crl`). DER with
//! `Content-Type: application/pkix-crl` (RFC 2585 §4), `Last-Modified` = thisUpdate,
//! `Expires` = nextUpdate, `ETag` = the cRLNumber, and `304 Not Modified` for a matching
//! `If-None-Match`, so that relying parties polling a large CRL do not download it again.

use std::time::SystemTime;

use axum::{
    body::Body,
    extract::{Path, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

use crate::{CrlError, CrlSource};

/// The CRL routes, generic over the core's [`CrlSource`].
pub fn router<S: CrlSource>(source: S) -> Router {
    Router::new().route("/{file}", get(crl::<S>)).with_state(source)
}

async fn crl<S: CrlSource>(State(source): State<S>, Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(name) = file.strip_suffix(".crl") else { return CrlError::NotFound.into_response() };
    let published = match source.current(name).await {
        Ok(p) => p,
        Err(e) => {
            if !matches!(e, CrlError::NotFound) {
                tracing::warn!(crl = name, error = %e, "CRL lookup failed");
            }
            return e.into_response();
        }
    };
    let etag = format!("\"{}\"", published.number);
    let max_age = published.next_update.duration_since(SystemTime::now()).map(|d| d.as_secs()).unwrap_or(0);
    let cache = format!("public, max-age={max_age}, no-transform, must-revalidate");
    let common = [
        (header::ETAG, etag.clone()),
        (header::LAST_MODIFIED, httpdate::fmt_http_date(published.this_update)),
        (header::EXPIRES, httpdate::fmt_http_date(published.next_update)),
        (header::CACHE_CONTROL, cache),
    ];
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if not_modified {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let mut response = (common, Body::from(published.der.as_ref().clone())).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/pkix-crl"));
    response
}

#[cfg(test)]
mod tests {
    use std::{
        sync::Arc,
        time::{Duration, UNIX_EPOCH},
    };

    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::PublishedCrl;

    #[derive(Clone)]
    struct Fake;

    impl CrlSource for Fake {
        async fn current(&self, name: &str) -> Result<PublishedCrl, CrlError> {
            match name {
                "ec" => Ok(PublishedCrl {
                    der: Arc::new(vec![0x30, 0x00]),
                    this_update: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
                    next_update: SystemTime::now() + Duration::from_secs(600),
                    number: 7,
                }),
                _ => Err(CrlError::NotFound),
            }
        }
    }

    async fn get(uri: &str, etag: Option<&str>) -> Response {
        let mut req = Request::get(uri);
        if let Some(e) = etag {
            req = req.header(header::IF_NONE_MATCH, e);
        }
        router(Fake).oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn serves_der_with_caching_headers() {
        let r = get("/ec.crl", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/pkix-crl");
        assert_eq!(r.headers()[header::ETAG], "\"7\"");
        assert!(r.headers()[header::CACHE_CONTROL].to_str().unwrap().starts_with("public, max-age="));
        assert_eq!(get("/ec.crl", Some("\"7\"")).await.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(get("/ec.crl", Some("\"6\"")).await.status(), StatusCode::OK);
        assert_eq!(get("/other.crl", None).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(get("/ec.pem", None).await.status(), StatusCode::NOT_FOUND);
    }
}
