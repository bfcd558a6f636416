//! `AcmeError`: one variant per RFC 8555 §6.7 error type (plus RFC 9773 `alreadyReplaced`),
//! rendered as `application/problem+json` (RFC 7807) with the status the RFCs fix.

use axum::http::StatusCode;
use serde::Serialize;

/// Problem document namespace (RFC 8555 §6.7).
pub const NAMESPACE: &str = "urn:ietf:params:acme:error:";

/// A JWS algorithm list, sent with `badSignatureAlgorithm` (§6.2).
pub const ALGORITHMS: &[&str] = &["ES256", "ES384", "RS256", "PS256", "EdDSA"];

/// An ACME error: type, the detail shown to the client, and optional per-identifier
/// subproblems.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind:?}: {detail}")]
pub struct AcmeError {
    /// The RFC 8555 §6.7 type.
    pub kind: ErrorType,
    /// Human-readable; never contains internal details.
    pub detail: String,
    /// `subproblems` (§6.7.1).
    pub subproblems: Vec<Subproblem>,
    /// `Location` sent with a 409 (key already in use, §7.3.5).
    pub location: Option<String>,
}

/// A subproblem for one identifier.
#[derive(Debug, Clone, Serialize)]
pub struct Subproblem {
    /// Full URN.
    #[serde(rename = "type")]
    pub kind: String,
    /// Detail.
    pub detail: String,
    /// The identifier it concerns.
    pub identifier: crate::backend::Identifier,
}

/// The error types of RFC 8555 §6.7 and RFC 9773 §5 (`alreadyReplaced`).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    AccountDoesNotExist,
    AlreadyReplaced,
    AlreadyRevoked,
    BadCsr,
    BadNonce,
    BadPublicKey,
    BadRevocationReason,
    BadSignatureAlgorithm,
    Caa,
    Compound,
    Connection,
    Dns,
    ExternalAccountRequired,
    IncorrectResponse,
    InvalidContact,
    Malformed,
    OrderNotReady,
    RateLimited,
    RejectedIdentifier,
    ServerInternal,
    Tls,
    Unauthorized,
    UnsupportedContact,
    UnsupportedIdentifier,
    UserActionRequired,
    /// `unauthorized` for a deactivated account: 401 (§7.3.6).
    AccountDeactivated,
    /// Not an RFC 8555 type: the resource does not exist (sent as `malformed` with 404, as
    /// boulder and pebble do).
    NotFound,
    /// Not an RFC 8555 type: wrong method (405 + `malformed`, §6.3).
    MethodNotAllowed,
    /// Not an RFC 8555 type: body too large (413 + `malformed`).
    PayloadTooLarge,
    /// Not an RFC 8555 type: wrong Content-Type (415 + `malformed`, §6.2).
    UnsupportedMediaType,
    /// Not an RFC 8555 type: the server is overloaded (its signing queue is full). Sent as
    /// `serverInternal` with 503 and `Retry-After:` [`BUSY_RETRY_AFTER`] seconds (RFC 9110
    /// §15.6.4): not `rateLimited`, which tells a client that it asked too much.
    ServerBusy,
    /// Not an RFC 8555 type: a dependency of the server (its database, its HSM) is down. Sent
    /// as `serverInternal` with 503 and `Retry-After:` [`UNAVAILABLE_RETRY_AFTER`] seconds, so
    /// that a client retries the same request once the dependency is back.
    ServerUnavailable,
}

/// Seconds in the `Retry-After` of a [`ErrorType::ServerBusy`] answer.
pub const BUSY_RETRY_AFTER: u64 = 1;

/// Seconds in the `Retry-After` of a [`ErrorType::ServerUnavailable`] answer.
pub const UNAVAILABLE_RETRY_AFTER: u64 = 5;

impl ErrorType {
    /// The name after the namespace.
    pub fn name(self) -> &'static str {
        match self {
            Self::AccountDoesNotExist => "accountDoesNotExist",
            Self::AlreadyReplaced => "alreadyReplaced",
            Self::AlreadyRevoked => "alreadyRevoked",
            Self::BadCsr => "badCSR",
            Self::BadNonce => "badNonce",
            Self::BadPublicKey => "badPublicKey",
            Self::BadRevocationReason => "badRevocationReason",
            Self::BadSignatureAlgorithm => "badSignatureAlgorithm",
            Self::Caa => "caa",
            Self::Compound => "compound",
            Self::Connection => "connection",
            Self::Dns => "dns",
            Self::ExternalAccountRequired => "externalAccountRequired",
            Self::IncorrectResponse => "incorrectResponse",
            Self::InvalidContact => "invalidContact",
            Self::Malformed
            | Self::NotFound
            | Self::MethodNotAllowed
            | Self::UnsupportedMediaType
            | Self::PayloadTooLarge => "malformed",
            Self::OrderNotReady => "orderNotReady",
            Self::RateLimited => "rateLimited",
            Self::RejectedIdentifier => "rejectedIdentifier",
            Self::ServerInternal | Self::ServerBusy | Self::ServerUnavailable => "serverInternal",
            Self::Tls => "tls",
            Self::Unauthorized | Self::AccountDeactivated => "unauthorized",
            Self::UnsupportedContact => "unsupportedContact",
            Self::UnsupportedIdentifier => "unsupportedIdentifier",
            Self::UserActionRequired => "userActionRequired",
        }
    }

    /// HTTP status (RFC 8555 where it fixes one, boulder/pebble otherwise).
    pub fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized | Self::ExternalAccountRequired | Self::OrderNotReady | Self::UserActionRequired => {
                StatusCode::FORBIDDEN
            }
            Self::AlreadyReplaced => StatusCode::CONFLICT,
            Self::AccountDeactivated => StatusCode::UNAUTHORIZED,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::ServerInternal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServerBusy | Self::ServerUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl AcmeError {
    /// An error of `kind` with `detail`.
    pub fn new(kind: ErrorType, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into(), subproblems: Vec::new(), location: None }
    }

    /// `malformed`.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Malformed, detail)
    }

    /// `unauthorized`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Unauthorized, detail)
    }

    /// `serverInternal` with a fixed text; the cause is for the log only.
    pub fn internal() -> Self {
        Self::new(ErrorType::ServerInternal, "the server could not complete the request")
    }

    /// `serverInternal` (503, Retry-After) for an overloaded server.
    pub fn busy() -> Self {
        Self::new(ErrorType::ServerBusy, "the server is busy; retry shortly")
    }

    /// `serverInternal` (503, Retry-After) while a dependency of the server is down.
    pub fn unavailable() -> Self {
        Self::new(ErrorType::ServerUnavailable, "the server cannot complete the request now; retry later")
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorType::NotFound, format!("no such {what}"))
    }

    /// The HTTP status of this error; a deactivated account's request is 401 (§7.3.6), a key
    /// conflict 409 (§7.3.5).
    pub fn status(&self) -> StatusCode {
        if self.location.is_some() {
            return StatusCode::CONFLICT;
        }
        self.kind.status()
    }

    /// The problem document.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "type": format!("{NAMESPACE}{}", self.kind.name()),
            "detail": self.detail,
            "status": self.status().as_u16(),
        });
        if !self.subproblems.is_empty() {
            v["subproblems"] = serde_json::to_value(&self.subproblems).unwrap_or_default();
        }
        if self.kind == ErrorType::BadSignatureAlgorithm {
            v["algorithms"] = serde_json::json!(ALGORITHMS);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_rfc() {
        assert_eq!(ErrorType::BadNonce.status(), StatusCode::BAD_REQUEST);
        assert_eq!(ErrorType::OrderNotReady.status(), StatusCode::FORBIDDEN);
        assert_eq!(ErrorType::AlreadyReplaced.status(), StatusCode::CONFLICT);
        assert_eq!(ErrorType::AccountDoesNotExist.status(), StatusCode::BAD_REQUEST);
        let e = AcmeError::new(ErrorType::BadSignatureAlgorithm, "no");
        let json = e.to_json();
        assert_eq!(json["type"], "urn:ietf:params:acme:error:badSignatureAlgorithm");
        assert!(json["algorithms"].as_array().is_some_and(|a| a.len() == ALGORITHMS.len()));
        assert_eq!(AcmeError::not_found("order").to_json()["type"], "urn:ietf:params:acme:error:malformed");
        let busy = AcmeError::busy();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.to_json()["type"], "urn:ietf:params:acme:error:serverInternal");
        let down = AcmeError::unavailable();
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.to_json()["type"], "urn:ietf:params:acme:error:serverInternal");
    }
}
