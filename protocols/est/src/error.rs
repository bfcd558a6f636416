//! `EstError`: every refusal, as an HTTP status with a short plain-text body (RFC 7030 §4.2.3,
//! RFC 8951 §5). Internal details are logged by the caller, never sent.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

/// An EST refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EstError {
    /// Malformed body, CSR, or CMC message (400).
    #[error("{0}")]
    BadRequest(String),
    /// No or wrong credentials (401 with `WWW-Authenticate: Basic realm=…`).
    #[error("authentication required")]
    Unauthorized {
        /// Basic realm.
        realm: String,
    },
    /// Authenticated but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// Unknown operation or label (404).
    #[error("not found")]
    NotFound,
    /// Method not allowed for the operation (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Wrong request Content-Type (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Something failed inside privca (500); the detail is only logged.
    #[error("internal error")]
    Internal(String),
    /// A dependency (database, HSM) is unavailable: 503 with `Retry-After:`
    /// [`UNAVAILABLE_RETRY_AFTER`] seconds.
    #[error("service unavailable")]
    Unavailable,
    /// Too many failed authentications from this client or for this user lately (429 with
    /// Retry-After, seconds).
    #[error("too many failed attempts; retry later")]
    TooManyRequests {
        /// Retry-After, seconds.
        retry_after: u64,
    },
    /// The server is overloaded (its signing queue is full): 503 with `Retry-After:`
    /// [`BUSY_RETRY_AFTER`] seconds (RFC 9110 §15.6.4, §10.2.3).
    #[error("service busy, retry later")]
    Busy,
}

/// Seconds in the `Retry-After` of a [`EstError::Busy`] answer.
pub const BUSY_RETRY_AFTER: u32 = 1;

/// Seconds in the `Retry-After` of a [`EstError::Unavailable`] answer.
pub const UNAVAILABLE_RETRY_AFTER: u32 = 5;

impl EstError {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable | Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// A 400 with `detail`.
    pub fn bad(detail: impl Into<String>) -> Self {
        Self::BadRequest(detail.into())
    }
}

impl IntoResponse for EstError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(detail) = &self {
            tracing::error!(detail = %detail, "EST request failed inside privca");
        }
        // The body names the status and the reason; Content-Length is set by the full body.
        let body = format!("{} {}\n", status.as_u16(), self);
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        match &self {
            Self::TooManyRequests { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Self::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(BUSY_RETRY_AFTER));
            }
            Self::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(UNAVAILABLE_RETRY_AFTER));
            }
            _ => {}
        }
        if let Self::Unauthorized { realm } = &self {
            let value = format!("Basic realm=\"{}\", charset=\"UTF-8\"", realm.replace('"', ""));
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_a_503_with_retry_after() {
        let r = EstError::Busy.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn unavailable_is_a_503_with_retry_after() {
        let r = EstError::Unavailable.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "5");
    }

    #[test]
    fn unauthorized_asks_for_basic_credentials() {
        let r = EstError::Unauthorized { realm: "privca EST".into() }.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Basic realm=\"privca EST\", charset=\"UTF-8\"");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/plain; charset=utf-8");
    }
}
