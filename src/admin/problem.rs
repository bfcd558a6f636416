//! RFC 9457 problem documents for the admin API: one [`Problem`] type, stable `type` URIs
//! (`urn:privca:problem:<name>`), and the mapping from the core's [`CaError`]. Internal details
//! are logged, never sent.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::error::{CaError, ErrorKind};

/// An error answer of the admin API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:privca:problem:<name>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the type.
    pub title: &'static str,
    /// HTTP status.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// Seconds to wait before retrying (busy, unavailable, rate limited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    fn new(status: StatusCode, name: &str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:privca:problem:{name}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 401: no credentials, or credentials that are unknown, expired or revoked.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "a valid API token (Authorization: Bearer pca_...) or dashboard session is required",
        )
    }

    /// 403: authenticated, but the role or ownership does not allow it.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 400: the body or query is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", "Malformed request", detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 413: the body is larger than the API accepts.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Body too large",
            format!("bodies are at most {limit} bytes"),
        )
    }

    /// 429: too many failed logins.
    pub fn rate_limited(retry_after: u64) -> Self {
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many attempts",
            "too many failed logins; try again later",
        );
        p.retry_after = Some(retry_after);
        p
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<CaError> for Problem {
    fn from(e: CaError) -> Self {
        match e.kind() {
            ErrorKind::BadRequest => Self::new(StatusCode::BAD_REQUEST, "malformed", "Malformed request", e.detail()),
            ErrorKind::NotFound => Self::not_found(e.detail()),
            ErrorKind::Conflict => Self::new(StatusCode::CONFLICT, "conflict", "Conflict", e.detail()),
            ErrorKind::PolicyViolation => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "policy", "Refused by policy", e.detail())
            }
            ErrorKind::Busy | ErrorKind::Unavailable => {
                tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "admin API: dependency unavailable");
                let mut p = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Temporarily unavailable",
                    "try again shortly",
                );
                p.retry_after = Some(5);
                p
            }
            ErrorKind::Internal => {
                tracing::error!(error = %e, source = ?std::error::Error::source(&e), "admin API: internal error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", "internal error")
            }
        }
    }
}

impl From<crate::ledger::LedgerError> for Problem {
    fn from(e: crate::ledger::LedgerError) -> Self {
        CaError::from(e).into()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry = self.retry_after;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut r = (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response();
        if let Some(s) = retry {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"privca\""));
        }
        r
    }
}
