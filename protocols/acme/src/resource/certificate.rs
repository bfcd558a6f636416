//! Certificate download (§7.4.2): POST-as-GET, `application/pem-certificate-chain` leaf first,
//! or the leaf alone as DER for `Accept: application/pkix-cert`.

use axum::http::{header, HeaderMap};

use crate::{
    backend::AcmeBackend,
    error::AcmeError,
    reply::{Reply, ReplyBody},
    request::{AcmeState, Signed},
};

/// POST-as-GET to a certificate URL.
pub async fn download<B: AcmeBackend>(
    state: &AcmeState<B>,
    req: Signed,
    headers: &HeaderMap,
    serial: &str,
) -> Result<Reply, AcmeError> {
    let account = req.account()?;
    if !req.is_post_as_get() {
        return Err(AcmeError::malformed("certificate downloads are POST-as-GET"));
    }
    let (pem, owner) =
        state.backend.certificate_chain(serial).await?.ok_or_else(|| AcmeError::not_found("certificate"))?;
    if owner.as_deref() != Some(account.id.as_str()) {
        return Err(AcmeError::unauthorized("this certificate was issued to another account"));
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let body = if accept.contains("application/pkix-cert") {
        let leaf = x509_cert::Certificate::load_pem_chain(pem.as_bytes())
            .ok()
            .and_then(|chain| chain.into_iter().next())
            .and_then(|leaf| der::Encode::to_der(&leaf).ok())
            .ok_or_else(AcmeError::internal)?;
        ReplyBody::Der(leaf)
    } else {
        ReplyBody::Pem(pem)
    };
    let mut reply = Reply::json(serde_json::Value::Null);
    reply.body = body;
    Ok(reply)
}
