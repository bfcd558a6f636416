//! Issuance with a server-generated key, delivered as a password-protected PKCS#12 (the API's
//! `POST /certificates/keystore` and the dashboard's `/ui/keystore`), for owners whose systems
//! cannot make a CSR. The key is generated in software ([`crate::ca::keygen`], the path EST
//! `/serverkeygen` uses); the certificate goes through the normal issuance cycle (prepare →
//! reserve → sign in the HSM → commit, each step audited with the caller as requester). The
//! key and the password exist only in this request's memory (zeroized when dropped): never in
//! the ledger, the audit log or the logs. Profiles that need approval are refused (the key
//! would have to be kept until an approver decides). A PKCS#12 that could not be built after
//! the certificate was committed gets that certificate revoked (cessationOfOperation), as EST
//! does for an undeliverable `/serverkeygen` answer.

use std::{net::IpAddr, str::FromStr};

use zeroize::Zeroizing;

use super::{
    auth::{Action, Principal},
    problem::Problem,
    AdminState,
};
use crate::{
    audit::{AuditEvent, AuditKind},
    ca::{keygen, IssuanceRequest, IssueOutcome, Requester, RevocationReason, San},
    error::CaError,
    signer::KeyAlgorithm,
};

/// Most names in one request.
pub const MAX_NAMES: usize = 100;

/// What the caller asks for.
pub struct KeystoreRequest {
    /// Profile name.
    pub profile: String,
    /// Subject CN (default: the first name).
    pub common_name: Option<String>,
    /// DNS names, IP addresses or e-mail addresses, for the subjectAltName.
    pub names: Vec<String>,
    /// CLM owner (role `owner`: always its own).
    pub owner: Option<String>,
    /// `ecdsa-p256` or `ecdsa-p384` (default: the first of these the profile allows).
    pub key: Option<String>,
    /// The PKCS#12's password.
    pub password: Zeroizing<String>,
}

/// The issued certificate's serial and its PKCS#12.
pub struct Keystore {
    /// Serial (hex).
    pub serial: String,
    /// The PKCS#12 (DER).
    pub pkcs12: Vec<u8>,
}

/// Issues a certificate for a fresh key and returns both as a PKCS#12, for `p`.
pub async fn issue(state: &AdminState, p: &Principal, r: KeystoreRequest) -> Result<Keystore, Problem> {
    p.require(state, Action::Operate).await?;
    crate::admin::pkcs12::check_password(&r.password)?;
    let config = state.ca.config();
    let profile = config
        .profiles
        .get(&r.profile)
        .ok_or_else(|| Problem::bad_request(format!("unknown profile `{}`", r.profile)))?;
    if profile.approval {
        return Err(Problem::bad_request(format!(
            "profile `{}` needs approval: server-generated keys are offered only where issuance is immediate \
             (privca never keeps a key waiting)",
            r.profile
        )));
    }
    let algorithm = match r.key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        Some(k) => KeyAlgorithm::from_str(k)
            .ok()
            .filter(|a| keygen::GENERATED.contains(a))
            .ok_or_else(|| Problem::bad_request(format!("key `{k}`: use ecdsa-p256 or ecdsa-p384")))?,
        None => *profile.allowed_keys.iter().find(|a| keygen::GENERATED.contains(a)).ok_or_else(|| {
            Problem::bad_request(format!("profile `{}` allows no key type privca generates", r.profile))
        })?,
    };
    if !profile.allowed_keys.contains(&algorithm) {
        return Err(Problem::bad_request(format!("profile `{}` does not allow {} keys", r.profile, algorithm.name())));
    }
    let mut request = request(&r, p.requester())?;
    let (key_pkcs8, spki_der) = keygen::generate_key(algorithm)?;
    request.spki_der = spki_der;
    request.owner = p.scope_owner(r.owner.clone());
    let issued = match state.ca.issue(request).await? {
        IssueOutcome::Issued(c) => c,
        IssueOutcome::Pending(_) => {
            return Err(CaError::internal("a server-key request was queued for approval").into())
        }
    };
    let serial = issued.record.serial.clone();
    let chain = crate::ca::x509::pem_certificates(&issued.chain_pem)?;
    let password = r.password.clone();
    let built = tokio::task::spawn_blocking(move || crate::admin::pkcs12::build(&key_pkcs8, &chain, &password)).await;
    match built {
        Ok(Ok(pkcs12)) => Ok(Keystore { serial, pkcs12 }),
        Ok(Err(e)) => Err(undeliverable(state, &serial, e).await),
        Err(e) => Err(undeliverable(state, &serial, CaError::internal("PKCS#12 task").with_source(e)).await),
    }
}

/// The issuance request for `r`'s names (no key yet).
fn request(r: &KeystoreRequest, requester: Requester) -> Result<IssuanceRequest, Problem> {
    let names: Vec<&str> = r.names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()).collect();
    if names.len() > MAX_NAMES {
        return Err(Problem::bad_request(format!("at most {MAX_NAMES} names")));
    }
    let cn = r.common_name.as_deref().map(str::trim).filter(|c| !c.is_empty()).or(names.first().copied());
    let Some(cn) = cn else {
        return Err(Problem::bad_request("name the certificate: a common_name or at least one name"));
    };
    let sans = names
        .iter()
        .map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => San::Ip(ip),
            Err(_) if n.contains('@') => San::Email((*n).to_owned()),
            Err(_) => San::Dns(n.to_ascii_lowercase()),
        })
        .collect();
    let mut request = IssuanceRequest::own_key(&r.profile, Vec::new());
    request.subject = vec![(const_oid::db::rfc4519::CN, cn.to_owned())];
    request.sans = sans;
    request.requester = requester;
    request.owner = None;
    Ok(request)
}

/// Revokes the committed certificate `serial` whose PKCS#12 could not be built (its key is
/// gone), with a `failed` audit row saying why; returns the error to answer.
async fn undeliverable(state: &AdminState, serial: &str, e: CaError) -> Problem {
    let by = Requester::system();
    let failed =
        AuditEvent::new(AuditKind::Failed, by.to_string()).serial(serial.to_owned()).detail(serde_json::json!({
            "stage": "admin-keystore-delivery",
            "error": e.to_string(),
            "action": "revoked (cessationOfOperation)",
        }));
    if let Err(e) = state.ca.ledger().record_event(&failed).await {
        tracing::error!(error = %e, %serial, "could not record the audit row of an undelivered keystore");
    }
    if let Err(e) = state.ca.revoke(serial, RevocationReason::CessationOfOperation, None, &by).await {
        tracing::error!(error = %e, %serial, "could not revoke a certificate whose keystore was not delivered");
    }
    tracing::warn!(%serial, error = %e, "revoked a certificate whose keystore could not be built");
    e.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(names: &[&str], cn: Option<&str>) -> KeystoreRequest {
        KeystoreRequest {
            profile: "tls-server".into(),
            common_name: cn.map(str::to_owned),
            names: names.iter().map(|s| (*s).to_owned()).collect(),
            owner: None,
            key: None,
            password: Zeroizing::new("x".repeat(12)),
        }
    }

    #[test]
    fn names_become_typed_sans_and_the_first_is_the_cn() {
        let req =
            request(&r(&["WWW.Example.test", "10.0.0.1", "ops@example.test", " "], None), Requester::cli()).unwrap();
        assert_eq!(req.subject[0].1, "WWW.Example.test");
        assert_eq!(
            req.sans,
            vec![
                San::Dns("www.example.test".into()),
                San::Ip("10.0.0.1".parse().unwrap()),
                San::Email("ops@example.test".into())
            ]
        );
        assert!(request(&r(&[], None), Requester::cli()).is_err());
        assert_eq!(request(&r(&[], Some("device 7")), Requester::cli()).unwrap().subject[0].1, "device 7");
        let many: Vec<String> = (0..101).map(|i| format!("h{i}.example.test")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(request(&r(&many, None), Requester::cli()).is_err());
    }
}
