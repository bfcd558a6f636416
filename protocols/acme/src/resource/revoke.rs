//! revokeCert (§7.6): signed by the issuing account, by an account that holds valid
//! authorizations for every identifier, or by the certificate's own key (`jwk`).

use serde_json::Value;

use crate::{
    backend::AcmeBackend,
    error::{AcmeError, ErrorType},
    jws::{self, b64url},
    reply::{Reply, ReplyBody},
    request::{AcmeState, Signed},
};

/// Reason codes a subscriber may give: unspecified, keyCompromise, affiliationChanged,
/// superseded, cessationOfOperation, privilegeWithdrawn (not caCompromise, certificateHold,
/// removeFromCRL or aACompromise).
pub const ALLOWED_REASONS: &[u8] = &[0, 1, 3, 4, 5, 9];

/// POST revokeCert.
pub async fn revoke<B: AcmeBackend>(state: &AcmeState<B>, req: Signed) -> Result<Reply, AcmeError> {
    let payload = req.payload()?;
    let der = b64url(
        payload
            .get("certificate")
            .and_then(Value::as_str)
            .ok_or_else(|| AcmeError::malformed("payload has no `certificate`"))?,
        "certificate",
    )?;
    let reason = match payload.get("reason") {
        None | Some(Value::Null) => 0,
        Some(v) => {
            v.as_u64().and_then(|r| u8::try_from(r).ok()).filter(|r| ALLOWED_REASONS.contains(r)).ok_or_else(|| {
                AcmeError::new(
                    ErrorType::BadRevocationReason,
                    format!("reason {v} is not accepted; use one of {ALLOWED_REASONS:?}"),
                )
            })?
        }
    };
    let cert = state
        .backend
        .certificate_by_der(&der)
        .await?
        .ok_or_else(|| AcmeError::not_found("certificate issued by this CA"))?;
    let by = match &req.account {
        Some(account) => {
            let mut allowed = cert.account_id.as_deref() == Some(account.id.as_str());
            if !allowed && !cert.identifiers.is_empty() {
                allowed = true;
                for i in &cert.identifiers {
                    let (base, wildcard) = i.authz_base();
                    if state.backend.valid_authz(&account.id, &base, wildcard).await?.is_none() {
                        allowed = false;
                        break;
                    }
                }
            }
            if !allowed {
                return Err(AcmeError::unauthorized("this account may not revoke this certificate"));
            }
            format!("account/{}", account.id)
        }
        None => {
            if cert.key_thumbprint.as_deref() != Some(jws::thumbprint(&req.jwk).as_str()) {
                return Err(AcmeError::unauthorized("the JWS key is not the certificate's key"));
            }
            "certificate-key".to_owned()
        }
    };
    if cert.revoked {
        return Err(AcmeError::new(ErrorType::AlreadyRevoked, "the certificate is already revoked"));
    }
    state.backend.revoke(&cert.serial, reason, &by).await?;
    tracing::info!(serial = %cert.serial, reason, by = %by, "certificate revoked over ACME");
    let mut reply = Reply::json(Value::Null);
    reply.body = ReplyBody::Empty;
    Ok(reply)
}
