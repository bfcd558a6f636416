//! `CrlError`: the outcomes of CRL publication and encoding, as HTTP statuses.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

/// A CRL failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrlError {
    /// No CRL with this name (unknown issuer, or none published yet): 404.
    #[error("no such CRL")]
    NotFound,
    /// The backend failed; details are logged, never sent: 503.
    #[error("CRL unavailable")]
    Unavailable,
    /// An entry or parameter cannot be encoded (bug or corrupt data).
    #[error("CRL encoding: {0}")]
    Encoding(String),
}

impl From<der::Error> for CrlError {
    fn from(e: der::Error) -> Self {
        CrlError::Encoding(e.to_string())
    }
}

impl IntoResponse for CrlError {
    fn into_response(self) -> Response {
        let status = match self {
            CrlError::NotFound => StatusCode::NOT_FOUND,
            CrlError::Unavailable | CrlError::Encoding(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, format!("{self}\n")).into_response()
    }
}
