//! `FailInfo` (RFC 8894 §3.2.1.4) and `ScepError`: what goes wrong, and how it is answered.
//! Undecodable input is an HTTP 400; an overloaded server (`Busy`) or a failed HSM
//! (`Unavailable`) an HTTP 503 with Retry-After; everything else is a signed CertRep FAILURE (HTTP 200) with the transactionID
//! and nonces echoed.

/// CertRep `failInfo` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailInfo {
    /// Unrecognized or unsupported algorithm.
    BadAlg = 0,
    /// Integrity check (signature) failed, or the envelope could not be decrypted.
    BadMessageCheck = 1,
    /// Transaction not permitted or supported (policy, challenge).
    BadRequest = 2,
    /// signingTime too far from the CA's time.
    BadTime = 3,
    /// No certificate could be identified matching the criteria.
    BadCertId = 4,
}

impl FailInfo {
    /// The PrintableString value.
    pub fn code(self) -> &'static str {
        match self {
            Self::BadAlg => "0",
            Self::BadMessageCheck => "1",
            Self::BadRequest => "2",
            Self::BadTime => "3",
            Self::BadCertId => "4",
        }
    }
}

/// A SCEP request that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScepError {
    /// Not a pkiMessage at all (no transactionID to answer to): HTTP 400.
    #[error("{0}")]
    Undecodable(String),
    /// A refusal answered with a CertRep FAILURE.
    #[error("{1}")]
    Fail(FailInfo, String),
    /// Something failed inside privca (HSM, database): HTTP 500, logged.
    #[error("internal error")]
    Internal(String),
    /// The server is overloaded (its signing queue is full): HTTP 503 with `Retry-After:`
    /// [`BUSY_RETRY_AFTER`] seconds, not a signed CertRep. A CertRep FAILURE would itself
    /// need an RA signature, the very work that was refused, and its failInfo values all mean
    /// "this request is wrong", which a client would not retry; an HTTP error is what clients
    /// retry (certmonger, sscep and the Windows client treat a 5xx as temporary).
    #[error("service busy, retry later")]
    Busy,
    /// The HSM is down: no CertRep can be signed (the RA key is in it), so the answer is HTTP
    /// 503 with `Retry-After:` [`UNAVAILABLE_RETRY_AFTER`] seconds, which clients retry, as for
    /// [`ScepError::Busy`]. (With the HSM up and the database down, the request gets a signed
    /// CertRep FAILURE.)
    #[error("service unavailable, retry later")]
    Unavailable,
}

/// Seconds in the `Retry-After` of a [`ScepError::Busy`] answer.
pub const BUSY_RETRY_AFTER: u32 = 1;

/// Seconds in the `Retry-After` of a [`ScepError::Unavailable`] answer.
pub const UNAVAILABLE_RETRY_AFTER: u32 = 5;

impl ScepError {
    /// A FAILURE with `info` and `text`.
    pub fn fail(info: FailInfo, text: impl Into<String>) -> Self {
        Self::Fail(info, text.into())
    }
}
