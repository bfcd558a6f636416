//! HTTP binding (RFC 6960 Appendix A, RFC 9919 §5–6): `POST /` with a DER request, and
//! `GET /{base64 request}` read from the raw path, so that `/`, `//`, `+` and `=` inside the
//! base64 survive (percent-decoding only, standard or URL-safe alphabet, padding
//! optional, leading slashes ignored). Every OCSP answer is HTTP 200
//! `application/ocsp-response`; oversized bodies are 413.

use std::time::SystemTime;

use axum::{
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, State},
    http::{header, HeaderValue, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use base64ct::{Base64, Base64Unpadded, Base64Url, Base64UrlUnpadded, Encoding};

use crate::{request, OcspBackend, OcspError, OcspReply};

/// Largest request body accepted (a request with 64 CertIDs and a 128-octet nonce fits).
pub const MAX_BODY: usize = 16 * 1024;

/// The OCSP routes, generic over the core's [`OcspBackend`]. Mount with `nest("/ocsp", …)`.
pub fn router<B: OcspBackend>(backend: B) -> Router {
    Router::new()
        .route("/", post(post_request::<B>).get(empty_get::<B>))
        .route("/{*request}", get(get_request::<B>))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(backend)
}

async fn post_request<B: OcspBackend>(State(backend): State<B>, body: Bytes) -> Response {
    answer(&backend, &body, false).await
}

async fn empty_get<B: OcspBackend>(State(backend): State<B>) -> Response {
    malformed(&backend).await
}

async fn get_request<B: OcspBackend>(State(backend): State<B>, uri: Uri) -> Response {
    match decode_get_path(uri.path()) {
        Some(der) => answer(&backend, &der, true).await,
        None => malformed(&backend).await,
    }
}

/// `malformedRequest`, after the backend's tarpit delay.
async fn malformed<B: OcspBackend>(backend: &B) -> Response {
    let delay = backend.malformed_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    ocsp_body(OcspError::MalformedRequest.to_der())
}

/// Percent-decodes the path (leaving `+` alone; spaces from form-style encoders become `+`),
/// drops leading slashes, and accepts standard or URL-safe base64 with or without padding.
pub fn decode_get_path(path: &str) -> Option<Vec<u8>> {
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        return None;
    }
    // Fast path: what well-behaved clients send (standard base64, no escapes).
    if !path.contains('%') {
        if let Ok(der) = Base64::decode_vec(path) {
            return Some(der);
        }
    }
    // An escape that is not one stays as it is, and then fails base64 like any other '%'.
    let raw = percent_encoding::percent_decode_str(path).decode_utf8().ok()?;
    let text: String =
        raw.chars().map(|c| if c == ' ' { '+' } else { c }).filter(|c| !c.is_ascii_whitespace()).collect();
    if text.is_empty() {
        return None;
    }
    Base64::decode_vec(&text)
        .or_else(|_| Base64Unpadded::decode_vec(&text))
        .or_else(|_| Base64Url::decode_vec(&text))
        .or_else(|_| Base64UrlUnpadded::decode_vec(&text))
        .ok()
}

async fn answer<B: OcspBackend>(backend: &B, der: &[u8], get: bool) -> Response {
    let parsed = match request::parse(der) {
        Ok(p) => p,
        Err(_) => return malformed(backend).await,
    };
    match backend.respond(parsed).await {
        Ok(reply) => reply_response(reply, get),
        Err(e) => ocsp_body(e.to_der()),
    }
}

fn ocsp_body(der: Vec<u8>) -> Response {
    let mut r = (StatusCode::OK, Body::from(der)).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/ocsp-response"));
    r
}

fn reply_response(reply: OcspReply, get: bool) -> Response {
    let mut r = ocsp_body(reply.der.as_ref().clone());
    if get && reply.cacheable {
        let max_age = reply.next_update.duration_since(SystemTime::now()).map(|d| d.as_secs()).unwrap_or(0);
        let pairs = [
            (header::CACHE_CONTROL, format!("max-age={max_age}, public, no-transform, must-revalidate")),
            (header::LAST_MODIFIED, httpdate::fmt_http_date(reply.this_update)),
            (header::EXPIRES, httpdate::fmt_http_date(reply.next_update)),
            (header::ETAG, format!("\"{}\"", reply.etag)),
        ];
        for (name, value) in pairs {
            if let Ok(v) = HeaderValue::from_str(&value) {
                r.headers_mut().insert(name, v);
            }
        }
    } else {
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_paths_survive_slashes_plus_and_padding() {
        let der: Vec<u8> = (0u8..=255).collect();
        let std = Base64::encode_string(&der);
        assert!(std.contains('/') && std.contains('+'));
        assert_eq!(decode_get_path(&format!("/{std}")).unwrap(), der);
        assert_eq!(decode_get_path(&format!("//{std}")).unwrap(), der, "AIA URL ending in /");
        let pct = std.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
        assert_eq!(decode_get_path(&format!("/{pct}")).unwrap(), der);
        assert_eq!(decode_get_path(&format!("/{}", std.replace('+', " "))).unwrap(), der, "form-decoded +");
        assert_eq!(decode_get_path(&format!("/{}", Base64UrlUnpadded::encode_string(&der))).unwrap(), der);
        assert!(decode_get_path("/").is_none());
        assert!(decode_get_path("/%zz").is_none());
        assert!(decode_get_path("/!!!").is_none());
    }

    #[test]
    fn error_statuses_encode() {
        assert_eq!(OcspError::MalformedRequest.to_der(), vec![0x30, 0x03, 0x0a, 0x01, 0x01]);
        assert_eq!(OcspError::Unauthorized.to_der(), vec![0x30, 0x03, 0x0a, 0x01, 0x06]);
    }

    #[test]
    fn garbage_and_truncated_requests_are_malformed() {
        assert_eq!(request::parse(b"garbage").unwrap_err(), OcspError::MalformedRequest);
        assert_eq!(request::parse(&[0x30, 0x82, 0x01]).unwrap_err(), OcspError::MalformedRequest);
        assert_eq!(request::parse(&[]).unwrap_err(), OcspError::MalformedRequest);
    }
}
