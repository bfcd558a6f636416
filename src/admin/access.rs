//! Creating and changing admin users and API tokens: the one implementation behind
//! `privca admin …` and the API's `/users` and `/tokens`. Passwords and TOTP secrets are
//! generated here when not given, returned once, and stored only hashed or sealed.

use base64ct::{Base64UrlUnpadded, Encoding};
use zeroize::Zeroizing;

use super::auth::{password, token, totp, Role};
use crate::{
    audit::{AuditEvent, AuditKind},
    ca::Requester,
    error::CaError,
    ledger::{AdminUser, Ledger},
    sealing::{self, Purpose},
    signer::SigningService,
};

/// Longest token lifetime, in days.
pub const MAX_TOKEN_DAYS: u32 = 366;

/// A user just created: the secrets to hand over once.
pub struct NewUser {
    /// The password (generated unless given).
    pub password: Zeroizing<String>,
    /// `otpauth://` URL for an authenticator app, for roles that need MFA (or on request).
    pub totp_url: Option<Zeroizing<String>>,
}

fn valid_name(name: &str) -> Result<(), CaError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(CaError::bad_request("user names are 1-64 characters of letters, digits, - _ . @"))
    }
}

/// A role for a user: `metrics` is for tokens only; `owner` needs an owner name.
pub fn user_role(role: &str, owner: Option<&str>) -> Result<Role, CaError> {
    let r = Role::parse(role).ok_or_else(|| {
        CaError::bad_request(format!("role `{role}`: use admin, approver, operator, owner, auditor or metrics"))
    })?;
    if r == Role::Owner && owner.is_none_or(str::is_empty) {
        return Err(CaError::bad_request("role owner needs --owner NAME (the CLM owner it acts for)"));
    }
    Ok(r)
}

fn random_password() -> Result<Zeroizing<String>, CaError> {
    let mut b = Zeroizing::new([0u8; 18]);
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), b.as_mut())
        .map_err(|_| CaError::internal("no randomness"))?;
    Ok(Zeroizing::new(Base64UrlUnpadded::encode_string(b.as_ref())))
}

/// Creates user `name` with `role`; TOTP is enrolled for admin and approver (and when
/// `with_totp`).
#[allow(clippy::too_many_arguments)]
pub async fn create_user(
    ledger: &Ledger,
    signing: &SigningService,
    name: &str,
    role: &str,
    owner: Option<&str>,
    given_password: Option<Zeroizing<String>>,
    with_totp: bool,
    by: &Requester,
) -> Result<NewUser, CaError> {
    valid_name(name)?;
    let role = user_role(role, owner)?;
    if role == Role::Metrics {
        return Err(CaError::bad_request("role metrics is for tokens: `privca admin token new --role metrics`"));
    }
    let password = match given_password {
        Some(p) => p,
        None => random_password()?,
    };
    let hash = password::hash(&password)?;
    let (sealed, totp_url) = if with_totp || role.needs_mfa() {
        let secret = totp::new_secret()?;
        let (url, _) = totp::provisioning(&secret, name)?;
        (Some(sealing::seal(signing, Purpose::TotpSecret(name), &secret).await?), Some(Zeroizing::new(url)))
    } else {
        (None, None)
    };
    let user = AdminUser {
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        owner: owner.map(str::to_owned),
        password_hash: hash,
        totp: sealed.is_some(),
        totp_secret: sealed,
        disabled_at: None,
        created_at: crate::ledger::now(),
    };
    let event = AuditEvent::new(AuditKind::AdminUserChanged, by.to_string()).detail(
        serde_json::json!({ "user": name, "created": true, "role": role.as_str(), "owner": owner, "totp": user.totp }),
    );
    ledger.create_admin_user(&user, &event).await?;
    Ok(NewUser { password, totp_url })
}

/// Enrolls a new TOTP secret for `name` (the old one stops working); returns the URL.
pub async fn reset_totp(
    ledger: &Ledger,
    signing: &SigningService,
    name: &str,
    by: &Requester,
) -> Result<Zeroizing<String>, CaError> {
    let secret = totp::new_secret()?;
    let (url, _) = totp::provisioning(&secret, name)?;
    let sealed = sealing::seal(signing, Purpose::TotpSecret(name), &secret).await?;
    let event = AuditEvent::new(AuditKind::AdminUserChanged, by.to_string())
        .detail(serde_json::json!({ "user": name, "totp": "reset" }));
    ledger.update_admin_user(name, None, Some(Some(&sealed)), None, &event).await?;
    Ok(Zeroizing::new(url))
}

/// Disables or re-enables `name` (its sessions and tokens stop working while disabled).
pub async fn set_disabled(ledger: &Ledger, name: &str, disabled: bool, by: &Requester) -> Result<(), CaError> {
    let event = AuditEvent::new(AuditKind::AdminUserChanged, by.to_string())
        .detail(serde_json::json!({ "user": name, "disabled": disabled }));
    ledger.update_admin_user(name, None, None, Some(disabled), &event).await?;
    Ok(())
}

/// Sets a new password for `name`.
pub async fn set_password(ledger: &Ledger, name: &str, new: &str, by: &Requester) -> Result<(), CaError> {
    let hash = password::hash(new)?;
    let event = AuditEvent::new(AuditKind::AdminUserChanged, by.to_string())
        .detail(serde_json::json!({ "user": name, "password": "changed" }));
    ledger.update_admin_user(name, Some(&hash), None, None, &event).await?;
    Ok(())
}

/// Makes an API token for `role`, valid `days` days, optionally for user `user` (then it
/// stops working when the user is disabled); returns the token text, shown once.
pub async fn create_token(
    ledger: &Ledger,
    role: &str,
    days: u32,
    user: Option<&str>,
    owner: Option<&str>,
    note: Option<&str>,
    by: &Requester,
) -> Result<(String, Zeroizing<String>), CaError> {
    let role = user_role(role, owner)?;
    if !(1..=MAX_TOKEN_DAYS).contains(&days) {
        return Err(CaError::bad_request(format!("tokens expire within 1-{MAX_TOKEN_DAYS} days")));
    }
    if let Some(u) = user {
        if ledger.admin_user(u).await?.is_none() {
            return Err(CaError::not_found(format!("no admin user `{u}`")));
        }
    }
    let expires_at = crate::ledger::now() + i64::from(days) * 86_400;
    let t = token::generate(
        role.as_str(),
        user.map(str::to_owned),
        owner.map(str::to_owned),
        note.map(str::to_owned),
        expires_at,
    )?;
    let event = AuditEvent::new(AuditKind::AdminTokenCreated, by.to_string()).detail(serde_json::json!({
        "token": t.row.id, "role": role.as_str(), "user": user, "owner": owner, "expires_at": expires_at
    }));
    ledger.create_admin_token(&t.row, &event).await?;
    Ok((t.row.id, t.text))
}

/// Revokes token `id`; false when unknown or already revoked.
pub async fn revoke_token(ledger: &Ledger, id: &str, by: &Requester) -> Result<bool, CaError> {
    let event =
        AuditEvent::new(AuditKind::AdminTokenRevoked, by.to_string()).detail(serde_json::json!({ "token": id }));
    Ok(ledger.revoke_admin_token(id, &event).await?)
}
