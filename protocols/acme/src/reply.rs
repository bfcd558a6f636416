//! Building responses: JSON/PEM/DER bodies with the headers every ACME answer carries
//! (`Replay-Nonce`, `Link: rel="index"`, `Cache-Control`, CORS), and problem documents.

use axum::{
    body::Body,
    http::{header, HeaderValue, StatusCode},
    response::Response,
};
use serde_json::Value;

use crate::{error::AcmeError, links::Links};

/// A successful answer before the common headers are added.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Body.
    pub body: ReplyBody,
    /// `Location`.
    pub location: Option<String>,
    /// Extra `Link` values.
    pub links: Vec<String>,
    /// `Retry-After` seconds.
    pub retry_after: Option<u64>,
}

/// The body of a [`Reply`].
#[derive(Debug)]
pub enum ReplyBody {
    /// `application/json`.
    Json(Value),
    /// `application/pem-certificate-chain`.
    Pem(String),
    /// `application/pkix-cert`.
    Der(Vec<u8>),
    /// No body.
    Empty,
}

impl Reply {
    /// 200 with a JSON body.
    pub fn json(v: Value) -> Self {
        Self { status: StatusCode::OK, body: ReplyBody::Json(v), location: None, links: vec![], retry_after: None }
    }

    /// 201 + `Location`.
    pub fn created(v: Value, location: String) -> Self {
        Self { status: StatusCode::CREATED, location: Some(location), ..Self::json(v) }
    }

    /// With `Location`.
    pub fn location(mut self, url: String) -> Self {
        self.location = Some(url);
        self
    }

    /// With a `Link` header value.
    pub fn link(mut self, link: String) -> Self {
        self.links.push(link);
        self
    }

    /// With `Retry-After`.
    pub fn retry_after(mut self, secs: Option<u64>) -> Self {
        self.retry_after = secs;
        self
    }
}

fn hv(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

/// Renders `result`, adding `nonce` (when given), the index link and the common headers.
pub fn render(result: Result<Reply, AcmeError>, links: &Links, nonce: Option<String>) -> Response {
    let reply = match result {
        Ok(r) => r,
        Err(e) => {
            let mut r = Reply {
                status: e.status(),
                body: ReplyBody::Json(e.to_json()),
                location: e.location.clone(),
                links: vec![],
                retry_after: None,
            };
            match e.kind {
                crate::error::ErrorType::RateLimited => r.retry_after = Some(3600),
                crate::error::ErrorType::ServerBusy => r.retry_after = Some(crate::error::BUSY_RETRY_AFTER),
                crate::error::ErrorType::ServerUnavailable => {
                    r.retry_after = Some(crate::error::UNAVAILABLE_RETRY_AFTER)
                }
                _ => {}
            }
            let mut response = build(r, links, nonce);
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
            return response;
        }
    };
    build(reply, links, nonce)
}

fn build(reply: Reply, links: &Links, nonce: Option<String>) -> Response {
    let (content_type, body) = match reply.body {
        ReplyBody::Json(v) => ("application/json", Body::from(serde_json::to_vec(&v).unwrap_or_default())),
        ReplyBody::Pem(p) => ("application/pem-certificate-chain", Body::from(p)),
        ReplyBody::Der(d) => ("application/pkix-cert", Body::from(d)),
        ReplyBody::Empty => ("", Body::empty()),
    };
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    let h = response.headers_mut();
    if !content_type.is_empty() {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if let Some(n) = nonce.as_deref().and_then(hv) {
        h.insert("replay-nonce", n);
    }
    if let Some(l) = reply.location.as_deref().and_then(hv) {
        h.insert(header::LOCATION, l);
    }
    for l in std::iter::once(links.index_link()).chain(reply.links) {
        if let Some(v) = hv(&l) {
            h.append(header::LINK, v);
        }
    }
    if let Some(s) = reply.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    cors(h);
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("public, max-age=0, no-cache"));
    response
}

/// CORS headers (§6.1).
pub fn cors(h: &mut axum::http::HeaderMap) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Link, Replay-Nonce, Location, Retry-After"),
    );
}
