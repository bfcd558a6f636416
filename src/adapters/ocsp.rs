//! `privca_ocsp::OcspBackend` over the core's [`OcspService`]; `CaError` → `OcspError`.

use privca_ocsp::{OcspBackend, OcspError, OcspReply, ParsedRequest};

use crate::{ca::ocsp::OcspService, error::ErrorKind};

/// The OCSP backend of `privca serve`.
#[derive(Clone)]
pub struct OcspAdapter(pub OcspService);

impl OcspBackend for OcspAdapter {
    async fn respond(&self, request: ParsedRequest) -> Result<OcspReply, OcspError> {
        self.0.respond(request).await.map_err(|e| {
            let status = match e.kind() {
                ErrorKind::BadRequest => OcspError::MalformedRequest,
                ErrorKind::NotFound | ErrorKind::PolicyViolation => OcspError::Unauthorized,
                ErrorKind::Busy | ErrorKind::Unavailable => OcspError::TryLater,
                ErrorKind::Conflict | ErrorKind::Internal => OcspError::InternalError,
            };
            match (e.kind(), &status) {
                // Counted in privca_hsm_queue_rejected_total; a log line each would flood the log.
                (ErrorKind::Busy, _) => tracing::debug!(error = %e, "OCSP request refused: the HSM queue is full"),
                (_, OcspError::TryLater | OcspError::InternalError) => {
                    tracing::error!(error = %e, "OCSP answer failed")
                }
                _ => tracing::debug!(error = %e, "OCSP request refused"),
            }
            status
        })
    }

    fn malformed_delay(&self) -> std::time::Duration {
        self.0.config().malformed_delay
    }
}
