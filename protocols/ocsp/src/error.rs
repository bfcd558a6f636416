//! `OcspError`: the unsuccessful `OCSPResponseStatus` values (RFC 6960 §4.2.1). Each is sent
//! as an unsigned `OCSPResponse` with HTTP 200; details are logged by the core, never sent.

use x509_ocsp::OcspResponseStatus;

/// An OCSP answer other than `successful`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OcspError {
    /// malformedRequest (1): undecodable, bad nonce, unknown critical extension.
    #[error("malformedRequest")]
    MalformedRequest,
    /// internalError (2).
    #[error("internalError")]
    InternalError,
    /// tryLater (3): the HSM or the ledger is unavailable.
    #[error("tryLater")]
    TryLater,
    /// unauthorized (6): an issuer this responder does not serve.
    #[error("unauthorized")]
    Unauthorized,
}

impl OcspError {
    /// The wire status.
    pub fn status(self) -> OcspResponseStatus {
        match self {
            OcspError::MalformedRequest => OcspResponseStatus::MalformedRequest,
            OcspError::InternalError => OcspResponseStatus::InternalError,
            OcspError::TryLater => OcspResponseStatus::TryLater,
            OcspError::Unauthorized => OcspResponseStatus::Unauthorized,
        }
    }

    /// The unsigned `OCSPResponse { responseStatus }` (no responseBytes).
    pub fn to_der(self) -> Vec<u8> {
        vec![0x30, 0x03, 0x0a, 0x01, self.status() as u8]
    }
}
