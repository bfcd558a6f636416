//! Login by TLS client certificate (`[admin] client_ca` and `[admin.client_certs]`). The admin
//! listener asks for a certificate without requiring one and lets any chain whose holder
//! proved its key through the handshake ([`crate::server::tls`]); here the chain is verified
//! against `client_ca` (signatures, validity, clientAuth usage) and mapped to a local user by
//! fingerprint, subject or subjectAltName. A verified, mapped certificate of an enabled user
//! authenticates as that user and role. Anything else, an unverified chain, an unmapped
//! certificate or a disabled user, is a failed login: audited (`admin-login-failed`, with the
//! certificate's fingerprint and subject, never more) and counted per client address like
//! password failures ([`crate::admin::dashboard::login`]), answered 401; past the limit, 429
//! with nothing more written, so that a client cannot grow the audit log without bound.
//!
//! Browsers send client certificates on their own, so a call authenticated this way that
//! changes something must carry `X-Requested-With` (any value), which no cross-site form can
//! set without a CORS preflight privca never grants.

use std::net::SocketAddr;

use axum::{extract::ConnectInfo, http::request::Parts};
use rustls_pki_types::{CertificateDer, UnixTime};

use super::{Principal, Role};
use crate::{
    admin::{
        dashboard::login::{PER_ADDRESS, WINDOW},
        problem::Problem,
        AdminState,
    },
    audit::{AuditEvent, AuditKind},
    config::admin::ClientAuth,
    server::listener::ClientChain,
};

/// The header a state-changing call authenticated by client certificate carries.
pub const REQUESTED_WITH: &str = "x-requested-with";

/// The user a presented chain (DER, leaf first) logs in, or why it logs in nobody.
pub fn user_for(auth: &ClientAuth, chain: &[Vec<u8>], now: UnixTime) -> Result<String, &'static str> {
    let (leaf, rest) = chain.split_first().ok_or("no certificate")?;
    let intermediates: Vec<CertificateDer<'_>> = rest.iter().map(|c| CertificateDer::from(c.as_slice())).collect();
    auth.verifier
        .verify_client_cert(&CertificateDer::from(leaf.as_slice()), &intermediates, now)
        .map_err(|_| "the certificate does not verify against admin.client_ca (issuer, validity or usage)")?;
    let info = crate::clm::discover::certinfo::CertInfo::from_der(leaf).map_err(|_| "unreadable certificate")?;
    auth.users
        .iter()
        .find(|(_, m)| m.matches(&info.fingerprint_sha256, &info.subject, &info.sans))
        .map(|(user, _)| user.clone())
        .ok_or("no user is mapped to this certificate (admin.client_certs)")
}

/// The chain of the request's TLS connection, when client-certificate login is configured.
pub fn presented<'a>(state: &'a AdminState, parts: &Parts) -> Option<(&'a ClientAuth, ClientChain)> {
    let auth = state.ca.config().admin.client_auth.as_ref()?;
    let chain = parts.extensions.get::<ClientChain>()?.clone();
    Some((auth, chain))
}

/// The client's address, for the failure counters.
pub fn address(parts: &Parts) -> String {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

/// Authenticates the request's client certificate: the user's principal, or an audited 401
/// (429 when the address has failed too often).
pub async fn login(
    state: &AdminState,
    auth: &ClientAuth,
    chain: &ClientChain,
    address: &str,
) -> Result<Principal, Problem> {
    let ledger = state.ca.ledger();
    let t = crate::ledger::now();
    let subject = format!("addr:{address}");
    if ledger.login_failures(&subject, t - WINDOW).await? >= PER_ADDRESS {
        // Past the limit nothing more is written: the audit log cannot be flooded.
        tracing::debug!(%address, "client-certificate login refused: too many failures from this address");
        return Err(Problem::rate_limited(WINDOW as u64));
    }
    let why = match user_for(auth, &chain.0, UnixTime::now()) {
        Ok(user) => match ledger.admin_user(&user).await?.filter(|u| u.disabled_at.is_none()) {
            Some(u) => match Role::parse(&u.role) {
                Some(role) => return Ok(Principal { name: u.name, role, owner: u.owner, csrf: None }),
                None => "the mapped user has an unknown role",
            },
            None => "the mapped user does not exist or is disabled",
        },
        Err(why) => why,
    };
    let leaf = chain.0.first().map(Vec::as_slice).unwrap_or_default();
    let info = crate::clm::discover::certinfo::CertInfo::from_der(leaf).ok();
    let event = AuditEvent::new(AuditKind::AdminLoginFailed, "admin:anonymous").detail(serde_json::json!({
        "method": "client-certificate",
        "why": why,
        "fingerprint": hex::encode(ring::digest::digest(&ring::digest::SHA256, leaf)),
        "subject": info.map(|i| i.subject),
        "address": address,
    }));
    ledger.record_login_failure(&[subject], &event).await?;
    Err(Problem::unauthorized())
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType};

    use super::*;
    use crate::config::admin::CertMatch;

    fn params(cn: &str, ca: bool, usage: ExtendedKeyUsagePurpose) -> CertificateParams {
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::OrganizationName, "Example");
        p.distinguished_name.push(DnType::CommonName, cn);
        if ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        } else {
            p.extended_key_usages = vec![usage];
            p.subject_alt_names = vec![SanType::Rfc822Name(format!("{cn}@example.test").try_into().unwrap())];
        }
        p
    }

    #[test]
    fn a_verified_mapped_certificate_is_its_user_and_nothing_else_is_anyone() {
        let ca_key = KeyPair::generate().unwrap();
        let ca_params = params("admin client CA", true, ExtendedKeyUsagePurpose::ClientAuth);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let leaf = |cn: &str, usage| {
            let key = KeyPair::generate().unwrap();
            params(cn, false, usage).signed_by(&key, &issuer).unwrap().der().to_vec()
        };
        let alice = leaf("alice", ExtendedKeyUsagePurpose::ClientAuth);
        let bob = leaf("bob", ExtendedKeyUsagePurpose::ClientAuth);
        let carol = leaf("carol", ExtendedKeyUsagePurpose::ClientAuth);
        let mallory = leaf("mallory", ExtendedKeyUsagePurpose::ClientAuth);
        let server_only = leaf("alice", ExtendedKeyUsagePurpose::ServerAuth);
        let rogue_key = KeyPair::generate().unwrap();
        let rogue = params("alice", false, ExtendedKeyUsagePurpose::ClientAuth).self_signed(&rogue_key).unwrap();
        let bob_fp = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bob));
        let users = vec![
            ("alice".to_owned(), CertMatch::parse("subject:CN=alice,O=Example").unwrap()),
            ("bob".to_owned(), CertMatch::parse(&format!("fingerprint:{bob_fp}")).unwrap()),
            ("carol".to_owned(), CertMatch::parse("san:email:carol@example.test").unwrap()),
        ];
        let auth = ClientAuth::new(ca.pem().as_bytes(), "ca.pem".into(), users).unwrap();
        let now = UnixTime::now();
        assert_eq!(user_for(&auth, &[alice], now).as_deref(), Ok("alice"));
        assert_eq!(user_for(&auth, &[bob], now).as_deref(), Ok("bob"));
        assert_eq!(user_for(&auth, std::slice::from_ref(&carol), now).as_deref(), Ok("carol"));
        assert!(user_for(&auth, &[mallory], now).unwrap_err().contains("no user is mapped"));
        for (what, chain) in [("self-signed", rogue.der().to_vec()), ("serverAuth only", server_only)] {
            assert!(user_for(&auth, &[chain], now).unwrap_err().contains("does not verify"), "{what}");
        }
        assert!(user_for(&auth, &[b"not a certificate".to_vec()], now).is_err());
        assert!(user_for(&auth, &[], now).is_err());
        // Past its notAfter: no longer anyone.
        let later = UnixTime::since_unix_epoch(std::time::Duration::from_secs(253_402_300_800 + 86_400 * 366 * 2000));
        assert!(user_for(&auth, &[carol], later).is_err());
    }
}
