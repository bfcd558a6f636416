//! Authorizations (§7.5, deactivation §7.5.2) and challenges (§7.5.1): responding to a
//! challenge starts its validation in the background.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::{
    backend::{AcmeBackend, Authz, AuthzStatus, Challenge, ChallengeStatus, ChallengeType},
    error::AcmeError,
    order_state,
    reply::Reply,
    request::{key_authorization, AcmeState, Signed},
    time::{now, rfc3339},
};

fn challenge_json<B>(state: &AcmeState<B>, authz: &Authz, c: &Challenge) -> Value {
    let mut v = json!({
        "type": c.kind.as_str(),
        "url": state.links.challenge(&authz.id, c.kind.as_str()),
        "status": c.status.as_str(),
        "token": c.token,
    });
    if let Some(t) = c.validated {
        v["validated"] = json!(rfc3339(t));
    }
    if let Some(e) = &c.error {
        v["error"] = e.clone();
    }
    v
}

/// The authorization object (`wildcard` only when true).
pub fn authz_json<B>(state: &AcmeState<B>, authz: &Authz) -> Value {
    let status = order_state::authz_status(authz, now());
    let mut v = json!({
        "identifier": authz.identifier,
        "status": status.as_str(),
        "expires": rfc3339(authz.expires),
        "challenges": authz.challenges.iter().map(|c| challenge_json(state, authz, c)).collect::<Vec<_>>(),
    });
    if authz.wildcard {
        v["wildcard"] = json!(true);
    }
    v
}

async fn load<B: AcmeBackend>(state: &AcmeState<B>, req: &Signed, id: &str) -> Result<Authz, AcmeError> {
    let account = req.account()?;
    let authz = state.backend.authz(id).await?.ok_or_else(|| AcmeError::not_found("authorization"))?;
    if authz.account_id != account.id {
        return Err(AcmeError::unauthorized("this authorization belongs to another account"));
    }
    Ok(authz)
}

/// POST to an authorization: read, or `{"status":"deactivated"}`.
pub async fn authz<B: AcmeBackend>(state: &AcmeState<B>, req: Signed, id: &str) -> Result<Reply, AcmeError> {
    let mut authz = load(state, &req, id).await?;
    if !req.is_post_as_get() {
        let payload = req.payload()?;
        match payload.get("status").and_then(Value::as_str) {
            Some("deactivated") => {
                if !matches!(authz.status, AuthzStatus::Pending | AuthzStatus::Valid) {
                    return Err(AcmeError::malformed(format!(
                        "cannot deactivate a {} authorization",
                        authz.status.as_str()
                    )));
                }
                authz.status = AuthzStatus::Deactivated;
                state.backend.update_authz(&authz).await?;
            }
            _ => return Err(AcmeError::malformed("the only update is {\"status\":\"deactivated\"}")),
        }
    }
    Ok(Reply::json(authz_json(state, &authz)))
}

/// POST to a challenge: read, or `{}` to ask for validation (§7.5.1).
pub async fn challenge<B: AcmeBackend>(
    state: &Arc<AcmeState<B>>,
    req: Signed,
    id: &str,
    kind: &str,
) -> Result<Reply, AcmeError> {
    let mut authz = load(state, &req, id).await?;
    let kind = ChallengeType::parse(kind).ok_or_else(|| AcmeError::not_found("challenge"))?;
    let index =
        authz.challenges.iter().position(|c| c.kind == kind).ok_or_else(|| AcmeError::not_found("challenge"))?;
    let up = format!("<{}>;rel=\"up\"", state.links.authz(&authz.id));
    let account = req.account()?.clone();
    if !req.is_post_as_get() {
        req.payload()?;
        let status = order_state::authz_status(&authz, now());
        if status == AuthzStatus::Pending && authz.challenges[index].status == ChallengeStatus::Pending {
            authz.challenges[index].status = ChallengeStatus::Processing;
            state.backend.update_authz(&authz).await?;
            let key_authorization = key_authorization(&authz.challenges[index].token, &account.jwk);
            let task_state = Arc::clone(state);
            let task_authz = authz.clone();
            tokio::spawn(async move { run_validation(task_state, task_authz, index, key_authorization).await });
        }
    }
    let c = &authz.challenges[index];
    let retry = (c.status == ChallengeStatus::Processing).then_some(state.settings.retry_after);
    Ok(Reply::json(challenge_json(state, &authz, c)).link(up).retry_after(retry))
}

async fn run_validation<B: AcmeBackend>(
    state: Arc<AcmeState<B>>,
    mut authz: Authz,
    index: usize,
    key_authorization: String,
) {
    let c = &authz.challenges[index];
    let result = if state.settings.skip_validation {
        Ok(())
    } else {
        state.validator.validate(c.kind, &authz.identifier, &c.token, &key_authorization).await
    };
    let challenge = &mut authz.challenges[index];
    match result {
        Ok(()) => {
            challenge.status = ChallengeStatus::Valid;
            challenge.validated = Some(now());
            authz.status = AuthzStatus::Valid;
            tracing::info!(authz = %authz.id, identifier = %authz.identifier.value, challenge = challenge.kind.as_str(), "ACME challenge valid");
        }
        Err(e) => {
            challenge.status = ChallengeStatus::Invalid;
            challenge.error = Some(e.to_json());
            authz.status = AuthzStatus::Invalid;
            tracing::info!(authz = %authz.id, identifier = %authz.identifier.value, challenge = challenge.kind.as_str(), error = %e.detail, "ACME challenge invalid");
        }
    }
    if let Err(e) = state.backend.update_authz(&authz).await {
        tracing::error!(authz = %authz.id, error = %e, "cannot record the validation result");
    }
}
