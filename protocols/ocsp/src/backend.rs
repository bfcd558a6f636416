//! The port: what the router needs from the core.

use std::{future::Future, sync::Arc, time::SystemTime};

use crate::{OcspError, ParsedRequest};

/// A successful, signed answer.
#[derive(Debug, Clone)]
pub struct OcspReply {
    /// DER `OCSPResponse`.
    pub der: Arc<Vec<u8>>,
    /// thisUpdate of the (first) single response.
    pub this_update: SystemTime,
    /// nextUpdate of the (first) single response.
    pub next_update: SystemTime,
    /// False for answers that must not be cached (nonce echoed, several CertIDs).
    pub cacheable: bool,
    /// Entity tag for HTTP caches.
    pub etag: String,
}

/// Answers parsed OCSP requests.
pub trait OcspBackend: Clone + Send + Sync + 'static {
    /// The signed response for `request`, or the unsuccessful status to send.
    fn respond(&self, request: ParsedRequest) -> impl Future<Output = Result<OcspReply, OcspError>> + Send;

    /// How long to hold back a `malformedRequest` answer (tarpit): a flood of garbage then
    /// costs its sender the wait instead of costing valid requests the CPU.
    fn malformed_delay(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}
