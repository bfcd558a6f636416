//! `CaError`: the core's single error type.
//!
//! Every core service returns `CaError`. Protocol adapters map its [`ErrorKind`] to their wire
//! errors with an exhaustive `match`; `detail` is safe to show to the requester only for the
//! client-caused kinds (`BadRequest`, `PolicyViolation`, `NotFound`, `Conflict`); `Busy` is
//! an overload refusal that carries no detail to the client either. The `source`
//! chain is for logs only.

use std::fmt;

/// What went wrong, at the level a protocol needs to choose its wire answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request could not be parsed or its signature did not verify.
    BadRequest,
    /// The HSM queue of the work's class is full (overload, see `signer::JobClass`): refused
    /// at once, before any work; each protocol answers with its own "try again shortly".
    Busy,
    /// The object is in a state that forbids the operation (already revoked, duplicate).
    Conflict,
    /// A bug or an invariant violation inside privca.
    Internal,
    /// The named object does not exist.
    NotFound,
    /// The request is well formed but the profile or key policy refuses it.
    PolicyViolation,
    /// A dependency (HSM, database) is down; retrying later may succeed.
    Unavailable,
}

/// The core's error: a kind, a message that names the failed rule, and an optional cause.
#[derive(Debug, thiserror::Error)]
pub struct CaError {
    kind: ErrorKind,
    detail: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl CaError {
    /// A new error of `kind` with a human-readable `detail`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into(), source: None }
    }

    /// Attaches the underlying cause (logged, never sent to clients).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Shorthand for [`ErrorKind::BadRequest`].
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, detail)
    }

    /// Shorthand for [`ErrorKind::PolicyViolation`].
    pub fn policy(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::PolicyViolation, detail)
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, detail)
    }

    /// Shorthand for [`ErrorKind::Internal`].
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, detail)
    }

    /// The kind, for wire mapping.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message naming the failed rule.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for CaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl From<crate::ledger::LedgerError> for CaError {
    fn from(e: crate::ledger::LedgerError) -> Self {
        use crate::ledger::LedgerError as L;
        let kind = match &e {
            L::NotFound(_) => ErrorKind::NotFound,
            L::Conflict(_) => ErrorKind::Conflict,
            L::Unavailable(_) | L::Tls { .. } => ErrorKind::Unavailable,
            L::Corrupt(_) | L::Incompatible(_) => ErrorKind::Internal,
        };
        Self::new(kind, "ledger operation failed").with_source(e)
    }
}

impl From<crate::signer::SignerError> for CaError {
    fn from(e: crate::signer::SignerError) -> Self {
        let kind = match e {
            crate::signer::SignerError::Busy(_) => ErrorKind::Busy,
            _ => ErrorKind::Unavailable,
        };
        Self::new(kind, "signing failed").with_source(e)
    }
}
