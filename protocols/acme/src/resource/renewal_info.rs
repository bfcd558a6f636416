//! ACME Renewal Information (RFC 9773 §4): unauthenticated GET `renewalInfo/<certID>`.

use serde_json::json;

use crate::{ari::CertId, backend::AcmeBackend, error::AcmeError, reply::Reply, request::AcmeState, time::rfc3339};

/// GET renewalInfo.
pub async fn renewal_info<B: AcmeBackend>(state: &AcmeState<B>, cert_id: &str) -> Result<Reply, AcmeError> {
    let id = CertId::parse(cert_id)?;
    let cert = state
        .backend
        .certificate_by_cert_id(&id.key_identifier, &id.serial)
        .await?
        .ok_or_else(|| AcmeError::not_found("certificate"))?;
    let (start, end) = cert.window;
    let end = end.max(start + 1);
    Ok(Reply::json(json!({ "suggestedWindow": { "start": rfc3339(start), "end": rfc3339(end) } }))
        .retry_after(Some(state.settings.ari_retry_after)))
}
