//! newAccount (§7.3, EAB §7.3.4), account update and deactivation (§7.3.2, §7.3.6), the orders
//! list (§7.1.2.1) and key rollover (§7.3.5).

use serde_json::{json, Value};

use crate::{
    backend::{Account, AccountStatus, AcmeBackend},
    error::{AcmeError, ErrorType},
    jws::{self, Jws, KeyRef},
    reply::Reply,
    request::{random_id, AcmeState, Signed},
};

/// The account object.
pub fn account_json<B>(state: &AcmeState<B>, a: &Account) -> Value {
    let mut v = json!({
        "status": a.status.as_str(),
        "contact": a.contact,
        "orders": state.links.url(&format!("account/{}/orders", a.id)),
    });
    if let Some(eab) = &a.eab {
        v["externalAccountBinding"] = eab.clone();
    }
    v
}

/// Validates `contact` (§7.3): `mailto:` with exactly one address and no header fields.
pub fn check_contacts(contact: &Value) -> Result<Vec<String>, AcmeError> {
    let list = match contact {
        Value::Null => return Ok(vec![]),
        Value::Array(a) => a,
        _ => return Err(AcmeError::malformed("`contact` must be an array of URLs")),
    };
    let mut out = Vec::new();
    for c in list {
        let s = c.as_str().ok_or_else(|| AcmeError::malformed("`contact` entries must be strings"))?;
        let Some(addr) = s.strip_prefix("mailto:") else {
            return Err(AcmeError::new(
                ErrorType::UnsupportedContact,
                format!("only mailto: contacts are supported: {s}"),
            ));
        };
        let invalid = |why: &str| AcmeError::new(ErrorType::InvalidContact, format!("contact {s}: {why}"));
        if addr.contains('?') || addr.contains(',') {
            return Err(invalid("one address without header fields, please"));
        }
        let (local, domain) = addr.split_once('@').ok_or_else(|| invalid("not an email address"))?;
        if local.is_empty() || domain.is_empty() || !domain.contains('.') || addr.chars().any(char::is_whitespace) {
            return Err(invalid("not an email address"));
        }
        out.push(s.to_owned());
    }
    if out.len() > 10 {
        return Err(AcmeError::new(ErrorType::InvalidContact, "at most 10 contacts"));
    }
    Ok(out)
}

/// POST newAccount.
pub async fn new_account<B: AcmeBackend>(state: &AcmeState<B>, req: Signed) -> Result<Reply, AcmeError> {
    let payload = req.payload()?;
    let thumbprint = jws::thumbprint(&req.jwk);
    if let Some(existing) = state.backend.account_by_key(&thumbprint).await? {
        if existing.status != AccountStatus::Valid {
            return Err(AcmeError::new(ErrorType::AccountDeactivated, "this account is deactivated"));
        }
        return Ok(Reply::json(account_json(state, &existing)).location(state.links.account(&existing.id)));
    }
    if payload.get("onlyReturnExisting").and_then(Value::as_bool) == Some(true) {
        return Err(AcmeError::new(ErrorType::AccountDoesNotExist, "no account exists with this key"));
    }
    if state.settings.terms_of_service.is_some()
        && payload.get("termsOfServiceAgreed").and_then(Value::as_bool) != Some(true)
    {
        return Err(AcmeError::malformed("you must agree to the terms of service (termsOfServiceAgreed)"));
    }
    let contact = check_contacts(payload.get("contact").unwrap_or(&Value::Null))?;
    let mut account = Account {
        id: random_id(12),
        jwk: req.jwk.clone(),
        thumbprint,
        status: AccountStatus::Valid,
        contact,
        eab: None,
        owner: None,
        profile: None,
    };
    let mut eab_kid = None;
    match payload.get("externalAccountBinding") {
        Some(eab) => {
            let (kid, url, key) = jws::eab_header(eab)?;
            if url != req.jws.url {
                return Err(AcmeError::malformed("EAB `url` must be the newAccount URL"));
            }
            if jws::thumbprint(&key) != account.thumbprint {
                return Err(AcmeError::new(ErrorType::BadPublicKey, "EAB payload is not the account key"));
            }
            let stored = state
                .backend
                .eab_key(&kid)
                .await?
                .ok_or_else(|| AcmeError::unauthorized("unknown external account key id"))?;
            if stored.bound_account.is_some() {
                return Err(AcmeError::unauthorized("this external account key is already bound to an account"));
            }
            Jws::verify_eab(eab, stored.hmac_key.expose())?;
            account.eab = Some(eab.clone());
            account.owner = Some(stored.owner.clone());
            account.profile = stored.profile.clone();
            eab_kid = Some(kid);
        }
        None if state.settings.eab_required => {
            return Err(AcmeError::new(
                ErrorType::ExternalAccountRequired,
                "this server requires external account binding",
            ))
        }
        None => {}
    }
    state.backend.create_account(&account, eab_kid.as_deref()).await?;
    tracing::info!(account = %account.id, "ACME account created");
    Ok(Reply::created(account_json(state, &account), state.links.account(&account.id)))
}

/// POST to an account URL: read, update contact, deactivate.
pub async fn update<B: AcmeBackend>(state: &AcmeState<B>, req: Signed, id: &str) -> Result<Reply, AcmeError> {
    let mut account = req.account()?.clone();
    if account.id != id {
        return Err(AcmeError::unauthorized("the request's `kid` is not this account"));
    }
    if !req.is_post_as_get() {
        let payload = req.payload()?;
        if let Some(contact) = payload.get("contact") {
            account.contact = check_contacts(contact)?;
        }
        match payload.get("status").and_then(Value::as_str) {
            None => {}
            Some("deactivated") => account.status = AccountStatus::Deactivated,
            Some(other) => return Err(AcmeError::malformed(format!("cannot change account status to `{other}`"))),
        }
        state.backend.update_account(&account).await?;
        tracing::info!(account = %account.id, status = account.status.as_str(), "ACME account updated");
    }
    Ok(Reply::json(account_json(state, &account)).location(state.links.account(&account.id)))
}

/// POST-as-GET to the orders list.
pub async fn orders<B: AcmeBackend>(state: &AcmeState<B>, req: Signed, id: &str) -> Result<Reply, AcmeError> {
    let account = req.account()?;
    if account.id != id {
        return Err(AcmeError::unauthorized("the request's `kid` is not this account"));
    }
    let ids = state.backend.account_orders(id).await?;
    let urls: Vec<String> = ids.iter().map(|o| state.links.order(o)).collect();
    Ok(Reply::json(json!({ "orders": urls })))
}

/// POST keyChange (§7.3.5).
pub async fn key_change<B: AcmeBackend>(state: &AcmeState<B>, req: Signed) -> Result<Reply, AcmeError> {
    let mut account = req.account()?.clone();
    let outer: Value =
        serde_json::from_slice(&req.jws.payload).map_err(|_| AcmeError::malformed("payload is not a JWS"))?;
    let inner = Jws::from_value(&outer)?;
    let KeyRef::Jwk(new_key) = &inner.key else {
        return Err(AcmeError::malformed("the inner JWS must carry the new key as `jwk`"));
    };
    if inner.url != req.jws.url {
        return Err(AcmeError::malformed("inner and outer `url` differ"));
    }
    if inner.nonce.is_some() {
        return Err(AcmeError::malformed("the inner JWS must not carry a nonce"));
    }
    inner.verify(new_key)?;
    let payload: Value =
        serde_json::from_slice(&inner.payload).map_err(|_| AcmeError::malformed("inner payload is not JSON"))?;
    if payload.get("account").and_then(Value::as_str) != Some(state.links.account(&account.id).as_str()) {
        return Err(AcmeError::malformed("inner payload `account` is not the signing account"));
    }
    let old = jws::public_jwk(payload.get("oldKey").unwrap_or(&Value::Null))?;
    if jws::thumbprint(&old) != account.thumbprint {
        return Err(AcmeError::malformed("inner payload `oldKey` is not the account's current key"));
    }
    let thumbprint = jws::thumbprint(new_key);
    if thumbprint == account.thumbprint {
        return Err(AcmeError::malformed("the new key is the current key"));
    }
    if let Some(holder) = state.backend.account_by_key(&thumbprint).await? {
        let mut e = AcmeError::malformed("the new key is already in use by another account");
        e.location = Some(state.links.account(&holder.id));
        return Err(e);
    }
    account.jwk = new_key.clone();
    account.thumbprint = thumbprint;
    state.backend.update_account(&account).await?;
    tracing::info!(account = %account.id, "ACME account key rolled over");
    Ok(Reply::json(account_json(state, &account)).location(state.links.account(&account.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts() {
        assert_eq!(check_contacts(&json!(["mailto:a@b.test"])).unwrap(), vec!["mailto:a@b.test"]);
        assert_eq!(check_contacts(&json!(["tel:+1"])).unwrap_err().kind, ErrorType::UnsupportedContact);
        assert_eq!(check_contacts(&json!(["mailto:a@b.test?subject=x"])).unwrap_err().kind, ErrorType::InvalidContact);
        assert_eq!(check_contacts(&json!(["mailto:a@b.test,c@d.test"])).unwrap_err().kind, ErrorType::InvalidContact);
        assert_eq!(check_contacts(&json!(["mailto:nobody"])).unwrap_err().kind, ErrorType::InvalidContact);
    }
}
