//! newOrder (§7.4, `replaces` RFC 9773 §5, `profile`), order reads (with approval polling)
//! and finalize (§7.4).

use std::{collections::BTreeSet, net::IpAddr};

use der::{Decode, Encode};
use serde_json::{json, Value};
use x509_cert::{
    ext::pkix::{name::GeneralName, SubjectAltName},
    request::{CertReq, ExtensionReq},
};

use crate::{
    ari::CertId,
    backend::{
        Account, AcmeBackend, ApprovalState, Authz, AuthzStatus, Challenge, ChallengeStatus, ChallengeType,
        FinalizeOutcome, Identifier, Order, OrderStatus,
    },
    error::{AcmeError, ErrorType, Subproblem},
    jws::{self, b64url},
    order_state,
    reply::Reply,
    request::{random_id, AcmeState, Signed},
    time::{now, rfc3339},
};

/// Most identifiers in one order.
const MAX_IDENTIFIERS: usize = 100;

/// The order object.
pub fn order_json<B>(state: &AcmeState<B>, order: &Order, status: OrderStatus) -> Value {
    let mut v = json!({
        "status": status.as_str(),
        "expires": rfc3339(order.expires),
        "identifiers": order.identifiers,
        "authorizations": order.authz_ids.iter().map(|a| state.links.authz(a)).collect::<Vec<_>>(),
        "finalize": state.links.url(&format!("order/{}/finalize", order.id)),
    });
    v["profile"] = json!(order.profile);
    if let Some(r) = &order.replaces {
        v["replaces"] = json!(r);
    }
    if let Some(serial) = &order.certificate_serial {
        v["certificate"] = json!(state.links.certificate(serial));
    }
    if let Some(e) = &order.error {
        v["error"] = e.clone();
    }
    v
}

/// Checks an identifier's syntax (§7.1.3, RFC 8738 §3); the policy check comes later.
fn check_identifier(i: &Identifier) -> Result<(), AcmeError> {
    match i.kind.as_str() {
        "dns" => {
            let v = &i.value;
            if v.is_empty() || v.ends_with('.') || v.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
                return Err(AcmeError::new(
                    ErrorType::RejectedIdentifier,
                    format!("`{v}` is not a lower-case DNS name in A-label form without a trailing dot"),
                ));
            }
            Ok(())
        }
        "ip" => match i.value.parse::<IpAddr>() {
            Ok(ip) if ip.to_string() == i.value => Ok(()),
            _ => Err(AcmeError::malformed(format!("`{}` is not an IP address in RFC 5952 form", i.value))),
        },
        other => {
            Err(AcmeError::new(ErrorType::UnsupportedIdentifier, format!("identifier type `{other}` is not supported")))
        }
    }
}

fn new_authz<B>(state: &AcmeState<B>, account: &Account, identifier: Identifier, wildcard: bool, now: i64) -> Authz {
    let kinds: &[ChallengeType] = if wildcard {
        &[ChallengeType::Dns01]
    } else if identifier.kind == "ip" {
        &[ChallengeType::Http01, ChallengeType::TlsAlpn01]
    } else {
        &[ChallengeType::Http01, ChallengeType::Dns01, ChallengeType::TlsAlpn01]
    };
    Authz {
        id: random_id(12),
        account_id: account.id.clone(),
        identifier,
        wildcard,
        status: AuthzStatus::Pending,
        expires: now + state.settings.authz_lifetime.as_secs() as i64,
        challenges: kinds
            .iter()
            .map(|k| Challenge {
                kind: *k,
                token: random_id(32),
                status: ChallengeStatus::Pending,
                validated: None,
                error: None,
            })
            .collect(),
    }
}

/// POST newOrder.
pub async fn new_order<B: AcmeBackend>(state: &AcmeState<B>, req: Signed) -> Result<Reply, AcmeError> {
    let account = req.account()?;
    let payload = req.payload()?;
    if payload.get("notBefore").is_some() || payload.get("notAfter").is_some() {
        return Err(AcmeError::malformed("notBefore/notAfter are not supported; validity comes from the profile"));
    }
    let identifiers: Vec<Identifier> =
        serde_json::from_value(payload.get("identifiers").cloned().unwrap_or(Value::Null))
            .map_err(|_| AcmeError::malformed("`identifiers` must be an array of identifier objects"))?;
    if identifiers.is_empty() || identifiers.len() > MAX_IDENTIFIERS {
        return Err(AcmeError::malformed(format!("an order needs 1 to {MAX_IDENTIFIERS} identifiers")));
    }
    let mut problems = Vec::new();
    for i in &identifiers {
        if let Err(e) = check_identifier(i) {
            if e.kind != ErrorType::RejectedIdentifier {
                return Err(e);
            }
            problems.push(Subproblem {
                kind: format!("{}{}", crate::error::NAMESPACE, e.kind.name()),
                detail: e.detail,
                identifier: i.clone(),
            });
        }
    }
    if !problems.is_empty() {
        let mut e = AcmeError::new(ErrorType::RejectedIdentifier, "some identifiers are not acceptable");
        e.subproblems = problems;
        return Err(e);
    }
    let identifiers: Vec<Identifier> = identifiers.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
    let now = now();
    let (replaces, replaces_serial) = match payload.get("replaces") {
        None | Some(Value::Null) => (None, None),
        Some(Value::String(s)) => {
            let id = CertId::parse(s)?;
            let cert = state
                .backend
                .certificate_by_cert_id(&id.key_identifier, &id.serial)
                .await?
                .ok_or_else(|| AcmeError::malformed("`replaces` names no certificate issued here"))?;
            if cert.account_id.as_deref() != Some(account.id.as_str()) {
                return Err(AcmeError::unauthorized("`replaces` names a certificate of another account"));
            }
            if !cert.identifiers.iter().any(|c| identifiers.contains(c)) {
                return Err(AcmeError::malformed("the replaced certificate shares no identifier with this order"));
            }
            if cert.replaced {
                return Err(AcmeError::new(ErrorType::AlreadyReplaced, "this certificate has already been replaced"));
            }
            (Some(s.clone()), Some(cert.serial))
        }
        Some(_) => return Err(AcmeError::malformed("`replaces` must be a string")),
    };
    let requested_profile = payload.get("profile").and_then(Value::as_str).or(account.profile.as_deref());
    let profile = state.backend.check_order(account, &identifiers, requested_profile).await?;
    state.rate_limit(&account.id, now)?;

    let mut authzs = Vec::with_capacity(identifiers.len());
    let mut fresh = Vec::new();
    for i in &identifiers {
        let (base, wildcard) = i.authz_base();
        let reused = if state.settings.authz_reuse {
            state.backend.valid_authz(&account.id, &base, wildcard).await?
        } else {
            None
        };
        match reused {
            Some(a) => authzs.push(a),
            None => {
                let a = new_authz(state, account, base, wildcard, now);
                fresh.push(a.clone());
                authzs.push(a);
            }
        }
    }
    let order = Order {
        id: random_id(12),
        account_id: account.id.clone(),
        status: OrderStatus::Pending,
        expires: now + state.settings.order_lifetime.as_secs() as i64,
        identifiers,
        profile,
        replaces,
        replaces_serial,
        authz_ids: authzs.iter().map(|a| a.id.clone()).collect(),
        error: None,
        certificate_serial: None,
        approval_id: None,
    };
    state.backend.create_order(&order, &fresh).await?;
    let status = order_state::order_status(order.status, order.expires, &authzs, now);
    Ok(Reply::created(order_json(state, &order, status), state.links.order(&order.id)))
}

/// Loads an order of the requesting account with its current status, and settles a pending
/// approval. The authorizations are read only while they decide the status (stored `pending`).
async fn load<B: AcmeBackend>(
    state: &AcmeState<B>,
    account: &Account,
    id: &str,
) -> Result<(Order, OrderStatus), AcmeError> {
    let mut order = state.backend.order(id).await?.ok_or_else(|| AcmeError::not_found("order"))?;
    if order.account_id != account.id {
        return Err(AcmeError::unauthorized("this order belongs to another account"));
    }
    if let (OrderStatus::Processing, Some(approval)) = (order.status, order.approval_id) {
        match state.backend.approval_state(approval).await? {
            ApprovalState::Pending => {}
            ApprovalState::Issued(serial) => {
                order.status = OrderStatus::Valid;
                order.certificate_serial = Some(serial);
                state.backend.update_order(&order).await?;
            }
            ApprovalState::Denied(reason) => {
                order.status = OrderStatus::Invalid;
                order.error =
                    Some(AcmeError::unauthorized(format!("an operator denied the request: {reason}")).to_json());
                state.backend.update_order(&order).await?;
            }
        }
    }
    let mut authzs = Vec::new();
    if order.status == OrderStatus::Pending {
        for a in &order.authz_ids {
            if let Some(authz) = state.backend.authz(a).await? {
                authzs.push(authz);
            }
        }
    }
    let status = order_state::order_status(order.status, order.expires, &authzs, now());
    Ok((order, status))
}

/// POST-as-GET to an order.
pub async fn read<B: AcmeBackend>(state: &AcmeState<B>, req: Signed, id: &str) -> Result<Reply, AcmeError> {
    let (order, status) = load(state, req.account()?, id).await?;
    let retry = (status == OrderStatus::Processing).then_some(state.settings.retry_after);
    Ok(Reply::json(order_json(state, &order, status)).retry_after(retry))
}

/// The CSR's identifiers (CN and dNSName/iPAddress SANs) and its DER SubjectPublicKeyInfo, as
/// finalize compares them with the order's identifiers and the account key.
pub fn csr_identifiers(csr: &CertReq) -> Result<(BTreeSet<Identifier>, Vec<u8>), AcmeError> {
    let bad = |d: &str| AcmeError::new(ErrorType::BadCsr, d.to_owned());
    let mut ids = BTreeSet::new();
    for rdn in csr.info.subject.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid == const_oid::db::rfc4519::CN {
                let cn = der::asn1::Utf8StringRef::try_from(&atv.value)
                    .map(|s| s.as_str().to_owned())
                    .or_else(|_| der::asn1::PrintableStringRef::try_from(&atv.value).map(|s| s.as_str().to_owned()))
                    .map_err(|_| bad("the CSR's CN is not a string"))?;
                let kind = if cn.parse::<IpAddr>().is_ok() { "ip" } else { "dns" };
                ids.insert(Identifier { kind: kind.into(), value: cn.to_ascii_lowercase() });
            }
        }
    }
    for attr in csr.info.attributes.iter() {
        if attr.oid != const_oid::db::rfc5912::ID_EXTENSION_REQ {
            continue;
        }
        for value in attr.values.iter() {
            let der = value.to_der().map_err(|_| bad("bad extensionRequest"))?;
            let req = ExtensionReq::from_der(&der).map_err(|_| bad("bad extensionRequest"))?;
            for ext in req.0.iter().filter(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME) {
                let san = SubjectAltName::from_der(ext.extn_value.as_bytes()).map_err(|_| bad("bad subjectAltName"))?;
                for name in san.0 {
                    match name {
                        GeneralName::DnsName(n) => {
                            ids.insert(Identifier { kind: "dns".into(), value: n.as_str().to_ascii_lowercase() });
                        }
                        GeneralName::IpAddress(o) => {
                            let ip = match o.as_bytes().len() {
                                4 => <[u8; 4]>::try_from(o.as_bytes()).map(IpAddr::from).ok(),
                                16 => <[u8; 16]>::try_from(o.as_bytes()).map(IpAddr::from).ok(),
                                _ => None,
                            }
                            .ok_or_else(|| bad("bad iPAddress SAN"))?;
                            ids.insert(Identifier { kind: "ip".into(), value: ip.to_string() });
                        }
                        _ => return Err(bad("the CSR asks for a SAN type ACME cannot validate")),
                    }
                }
            }
        }
    }
    let spki = csr.info.public_key.to_der().map_err(|_| bad("bad public key"))?;
    Ok((ids, spki))
}

/// POST finalize.
pub async fn finalize<B: AcmeBackend>(state: &AcmeState<B>, req: Signed, id: &str) -> Result<Reply, AcmeError> {
    let account = req.account()?;
    let payload = req.payload()?;
    let (mut order, status) = load(state, account, id).await?;
    if status != OrderStatus::Ready {
        return Err(AcmeError::new(ErrorType::OrderNotReady, format!("the order is {}, not ready", status.as_str())));
    }
    let csr_b64 =
        payload.get("csr").and_then(Value::as_str).ok_or_else(|| AcmeError::malformed("payload has no `csr`"))?;
    let csr_der = b64url(csr_b64, "csr").map_err(|e| AcmeError::new(ErrorType::BadCsr, e.detail))?;
    let csr = CertReq::from_der(&csr_der).map_err(|_| AcmeError::new(ErrorType::BadCsr, "the CSR does not parse"))?;
    let (names, spki) = csr_identifiers(&csr)?;
    let wanted: BTreeSet<Identifier> = order.identifiers.iter().cloned().collect();
    if names != wanted {
        return Err(AcmeError::new(ErrorType::BadCsr, "the CSR's names are not exactly the order's identifiers"));
    }
    if jws::jwk_from_spki(&spki).map(|k| jws::thumbprint(&k)).as_deref() == Some(account.thumbprint.as_str()) {
        return Err(AcmeError::new(ErrorType::BadCsr, "the certificate key must not be the account key"));
    }
    // The backend stores the order's new state with the issuance (see `AcmeBackend::finalize`).
    match state.backend.finalize(account, &order, &csr_der).await? {
        FinalizeOutcome::Issued(serial) => {
            order.status = OrderStatus::Valid;
            order.certificate_serial = Some(serial);
        }
        FinalizeOutcome::Pending(approval) => {
            order.status = OrderStatus::Processing;
            order.approval_id = Some(approval);
        }
        FinalizeOutcome::Busy => {
            return Err(AcmeError::new(ErrorType::OrderNotReady, "the order is already being finalized"));
        }
    }
    let retry = (order.status == OrderStatus::Processing).then_some(state.settings.retry_after);
    Ok(Reply::json(order_json(state, &order, order.status)).location(state.links.order(&order.id)).retry_after(retry))
}
