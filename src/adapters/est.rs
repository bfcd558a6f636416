//! `privca_est::EstBackend` over the ledger and the issuance cycle; `CaError` → `EstError`.
//!
//! Certificates enrolled over EST carry the requester `est:<label>/<identity>` (the Basic user
//! or the client certificate's subject) and, unless the label names an owner, that identity as
//! their CLM owner. Basic passwords are argon2id PHC strings in the ledger, checked by
//! [`super::est_auth`]. A client certificate authenticates to a label only as the label's rules
//! say ([`crate::config::est::CertRules`]): for `/simplereenroll` of itself when it was issued
//! under the label's profile, otherwise when its issuer, profile and subject are listed, and
//! then it enrolls only the names `cert_names` allows ([`crate::policy::client_cert`]).
//! A `/serverkeygen` certificate whose answer could not be built is revoked through
//! [`CertificateAuthority::revoke`] (cessationOfOperation, by `system:privca`) with a `failed`
//! audit row saying why.

use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

use argon2::{
    password_hash::{phc::PasswordHash, PasswordHasher},
    Argon2,
};
use der::{Decode, Encode};
use privca_est::{
    backend::{CmsDigest, CmsSigner, KeygenOutcome},
    csrattrs::{self, CsrAttrsSpec, KeyRequest},
    CertAuth, ClientCertificate, EnrollOutcome, EnrollRequest, EstBackend, EstError, Identity, LabelPolicy,
};
use ring::rand::SecureRandom;

use crate::{
    audit::{AuditEvent, AuditKind},
    ca::{
        request::{IssuanceRequest, Requester},
        revoke::RevocationReason,
        CertificateAuthority, IssueOutcome, Issuer,
    },
    config::est::{EstConfig, EstLabel, BOOTSTRAP_ISSUER},
    error::{CaError, ErrorKind},
    ledger::{ApprovalStatus, CertRecord, CertStatus, LedgerError},
    policy::{client_cert, CnToSan},
    signer::{JobClass, KeyAlgorithm, SigningAlgorithm},
};

/// The EST backend of `privca serve`.
#[derive(Clone)]
pub struct EstAdapter {
    ca: CertificateAuthority,
    config: Arc<EstConfig>,
    basic: Arc<super::est_auth::BasicAuth>,
    /// Subjects (DER) of the configured bootstrap CAs.
    bootstrap_subjects: Arc<Vec<Vec<u8>>>,
}

impl EstAdapter {
    /// An adapter over `ca`; `bootstrap_subjects` are the DER subjects of the bootstrap CAs.
    pub fn new(ca: CertificateAuthority, bootstrap_subjects: Vec<Vec<u8>>) -> Result<Self, CaError> {
        let config = Arc::new(ca.config().est.clone());
        let basic = Arc::new(super::est_auth::BasicAuth::new(&config)?);
        Ok(Self { ca, config, basic, bootstrap_subjects: Arc::new(bootstrap_subjects) })
    }

    fn label(&self, label: &str) -> Result<&EstLabel, EstError> {
        self.config.labels.get(label).ok_or(EstError::NotFound)
    }

    fn issuer(&self, label: &str) -> Result<&Issuer, EstError> {
        let profile = &self.label(label)?.profile;
        self.ca
            .config()
            .profiles
            .get(profile)
            .and_then(|p| self.ca.current_issuer(&p.issuer))
            .ok_or_else(|| EstError::Internal(format!("the issuer of profile {profile} is not installed")))
    }

    fn requester(request: &EnrollRequest) -> Requester {
        Requester { protocol: "est", identity: format!("{}/{}", request.label, request.identity.name()) }
    }

    /// A request for the label's profile, owned by the label's owner or the identity. A client
    /// certificate enrolls (other than renewing itself) only the names the label allows it.
    fn issuance(&self, request: &EnrollRequest) -> Result<IssuanceRequest, EstError> {
        let label = self.label(&request.label)?;
        if let (Identity::Certificate(client), None) = (&request.identity, &request.renews) {
            let cert = x509_cert::Certificate::from_der(&client.der)
                .map_err(|e| EstError::Internal(format!("client certificate: {e}")))?;
            let csr = x509_cert::request::CertReq::from_der(&request.csr_der)
                .map_err(|_| EstError::bad("the body is not a PKCS#10 request"))?;
            client_cert::names_allowed(label.cert_rules.names, &cert, &csr).map_err(EstError::Forbidden)?;
        }
        let mut issuance =
            IssuanceRequest::from_csr(&request.csr_der, &label.profile, Self::requester(request)).map_err(map_ca)?;
        issuance.owner = Some(label.owner.clone().unwrap_or_else(|| request.identity.name().to_owned()));
        issuance.renews = request.renews.clone();
        Ok(issuance)
    }

    /// A request an operator already saw: its certificate, still pending, or denied.
    async fn earlier_decision(&self, request: &EnrollRequest) -> Result<Option<EnrollOutcome>, EstError> {
        let requester = Self::requester(request).to_string();
        let Some(approval) = self.ca.ledger().approval_for_csr(&requester, &request.csr_der).await.map_err(db)? else {
            return Ok(None);
        };
        Ok(match (approval.status, approval.serial) {
            (ApprovalStatus::Denied, _) => {
                return Err(EstError::Forbidden(format!(
                    "the request was denied: {}",
                    approval.reason.unwrap_or_default()
                )))
            }
            (_, Some(serial)) => {
                let record = self.ca.ledger().certificate(&serial).await.map_err(db)?;
                // Re-sending an approved request after its certificate was revoked asks anew.
                record.filter(|r| r.status == CertStatus::Valid).map(|r| EnrollOutcome::Issued(r.der))
            }
            (_, None) => Some(EnrollOutcome::Pending),
        })
    }

    /// Whether the label accepts a certificate from where `cert` comes from: for
    /// `/simplereenroll`, one privca issued under the label's profile; otherwise one of a
    /// listed issuer (or successor) and, if privca issued it, of a listed profile.
    fn admits(
        &self,
        label: &str,
        cert: &x509_cert::Certificate,
        record: Option<&CertRecord>,
        reenroll: bool,
    ) -> Result<(), &'static str> {
        let label = self.label(label).map_err(|_| "unknown label")?;
        let rules = &label.cert_rules;
        match record {
            Some(r) if reenroll => {
                if r.profile == label.profile {
                    Ok(())
                } else {
                    Err("the client certificate was issued under another profile than this label's")
                }
            }
            None if reenroll => Err("the client certificate was not issued by this CA"),
            Some(r) => {
                if !rules.issuers.iter().any(|i| self.issued_by_or_successor(&r.issuer_id, i)) {
                    return Err("the client certificate's issuer is not one this label accepts");
                }
                if !rules.profiles.contains(&r.profile) {
                    return Err("the client certificate's profile is not one this label accepts");
                }
                Ok(())
            }
            None => {
                let issuer = cert.tbs_certificate.issuer.to_der().map_err(|_| "unreadable client certificate")?;
                if !self.bootstrap_subjects.contains(&issuer) {
                    return Err("the client certificate is not in the ledger");
                }
                if !rules.issuers.iter().any(|i| i == BOOTSTRAP_ISSUER) {
                    return Err("this label does not accept bootstrap (IDevID) certificates");
                }
                Ok(())
            }
        }
    }

    /// Whether issuer `issuer_id` is `listed` or one of its successors (`replaces` chain).
    fn issued_by_or_successor(&self, issuer_id: &str, listed: &str) -> bool {
        let issuers = &self.ca.config().issuers;
        let mut current = Some(issuer_id);
        for _ in 0..=issuers.len() {
            match current {
                Some(id) if id == listed => return true,
                Some(id) => {
                    current = issuers
                        .iter()
                        .find(|i| i.id == id)
                        .and_then(|i| i.rollover.as_ref().map(|r| r.replaces.as_str()))
                }
                None => return false,
            }
        }
        false
    }

    async fn refuse_client_cert(&self, label: &str, serial: Option<&str>, reason: &str) -> EstError {
        let mut event = AuditEvent::new(AuditKind::Failed, format!("est:{label}"))
            .detail(serde_json::json!({ "stage": "est-client-certificate", "error": reason }));
        if let Some(s) = serial {
            event = event.serial(s);
        }
        if let Err(e) = self.ca.ledger().record_event(&event).await {
            tracing::error!(error = %e, "could not record audit row for a refused EST client certificate");
        }
        EstError::Forbidden(reason.to_owned())
    }
}

/// `CaError` → `EstError`: client-caused kinds are 400 (bad CSR) or 403 (policy), the rest is
/// logged and answered without detail.
pub(super) fn map_ca(e: CaError) -> EstError {
    match e.kind() {
        ErrorKind::BadRequest => EstError::BadRequest(e.detail().to_owned()),
        ErrorKind::PolicyViolation | ErrorKind::Conflict => EstError::Forbidden(e.detail().to_owned()),
        ErrorKind::NotFound => EstError::NotFound,
        ErrorKind::Unavailable => {
            tracing::error!(error = %e, "EST request: a dependency is unavailable");
            EstError::Unavailable
        }
        ErrorKind::Internal => EstError::Internal(e.to_string()),
        ErrorKind::Busy => {
            tracing::debug!(error = %e, "EST request refused: the HSM queue is full (counted in privca_hsm_queue_rejected_total)");
            EstError::Busy
        }
    }
}

fn db(e: LedgerError) -> EstError {
    map_ca(CaError::from(e))
}

impl EstBackend for EstAdapter {
    async fn ca_certs(&self, label: &str) -> Result<Vec<Vec<u8>>, EstError> {
        let issuer = self.issuer(label)?;
        let mut certs = vec![issuer.der.clone()];
        if let Some(root) = self.ca.root().filter(|r| r.id != issuer.id) {
            certs.push(root.der.clone());
        }
        Ok(certs)
    }

    async fn check_password(
        &self,
        label: &str,
        user: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<bool, EstError> {
        self.label(label)?;
        self.basic.check(&self.ca, label, user, password, peer).await
    }

    async fn check_client_cert(
        &self,
        label: &str,
        chain: &[Vec<u8>],
        reenroll: bool,
    ) -> Result<ClientCertificate, EstError> {
        let rules = &self.label(label)?.cert_rules;
        let leaf = chain.first().ok_or_else(|| EstError::Forbidden("no client certificate".into()))?;
        let fingerprint = hex::encode(ring::digest::digest(&ring::digest::SHA256, leaf));
        let cert = x509_cert::Certificate::from_der(leaf)
            .map_err(|_| EstError::Forbidden("unreadable client certificate".into()))?;
        let record = self.ca.ledger().certificate_by_fingerprint(&fingerprint).await.map_err(db)?;
        let (subject, serial) = match &record {
            Some(r) if r.status == CertStatus::Revoked => {
                return Err(self.refuse_client_cert(label, Some(&r.serial), "the client certificate is revoked").await)
            }
            Some(r) if r.not_after <= crate::ledger::now() => {
                return Err(self.refuse_client_cert(label, Some(&r.serial), "the client certificate has expired").await)
            }
            Some(r) => (r.subject.clone(), Some(r.serial.clone())),
            None => (cert.tbs_certificate.subject.to_string(), None),
        };
        if let Err(reason) = self.admits(label, &cert, record.as_ref(), reenroll) {
            return Err(self.refuse_client_cert(label, serial.as_deref(), reason).await);
        }
        if !reenroll && !client_cert::subject_allowed(&rules.subjects, &subject) {
            let reason = "the client certificate's subject is not one this label accepts";
            return Err(self.refuse_client_cert(label, serial.as_deref(), reason).await);
        }
        Ok(ClientCertificate { der: leaf.clone(), subject, serial })
    }

    async fn enroll(&self, request: EnrollRequest) -> Result<EnrollOutcome, EstError> {
        let issuance = self.issuance(&request)?;
        if let Some(outcome) = self.earlier_decision(&request).await? {
            return Ok(outcome);
        }
        match self.ca.issue(issuance).await.map_err(map_ca)? {
            IssueOutcome::Issued(cert) => Ok(EnrollOutcome::Issued(cert.record.der)),
            IssueOutcome::Pending(_) => Ok(EnrollOutcome::Pending),
        }
    }

    async fn server_keygen(&self, request: EnrollRequest) -> Result<KeygenOutcome, EstError> {
        let label = self.label(&request.label)?;
        if self.ca.config().profiles.get(&label.profile).is_some_and(|p| p.approval) {
            // The key would have to be kept until an operator approves; privca never stores it.
            return Err(EstError::Forbidden(
                "server-side key generation is not offered on labels that need approval".into(),
            ));
        }
        let mut issuance = self.issuance(&request)?;
        let (key_pkcs8, spki_der) = crate::ca::keygen::generate_key(label.serverkeygen_key).map_err(map_ca)?;
        issuance.spki_der = spki_der;
        issuance.csr_der = None;
        match self.ca.issue(issuance).await.map_err(map_ca)? {
            IssueOutcome::Issued(cert) => {
                Ok(KeygenOutcome::Issued { key_pkcs8: key_pkcs8.to_vec(), cert_der: cert.record.der })
            }
            IssueOutcome::Pending(_) => {
                Err(EstError::Internal("a server-keygen request was queued for approval".into()))
            }
        }
    }

    /// Revokes the certificate with reason cessationOfOperation: it will never be used, because
    /// its key was dropped undelivered (RFC 5280 §5.3.1: no longer needed for its purpose).
    /// Not keyCompromise (the key was never stored nor sent), and not superseded (no replacement
    /// exists unless the client asks again). A `failed` audit row records why, then the
    /// revocation writes its own `revoked` row; `privca` itself is the revoker.
    async fn undeliverable(&self, label: &str, cert_der: &[u8], reason: &str) -> Result<(), EstError> {
        let fingerprint = hex::encode(ring::digest::digest(&ring::digest::SHA256, cert_der));
        let record = self.ca.ledger().certificate_by_fingerprint(&fingerprint).await.map_err(db)?.ok_or_else(|| {
            EstError::Internal("an undelivered /serverkeygen certificate is not in the ledger".into())
        })?;
        let by = Requester::system();
        let failed = AuditEvent::new(AuditKind::Failed, by.to_string()).serial(record.serial.clone()).detail(
            serde_json::json!({
                "stage": "est-serverkeygen-delivery",
                "label": label,
                "error": reason,
                "action": "revoked (cessationOfOperation)",
            }),
        );
        if let Err(e) = self.ca.ledger().record_event(&failed).await {
            tracing::error!(error = %e, serial = %record.serial, "could not record audit row for an undelivered /serverkeygen certificate");
        }
        self.ca.revoke(&record.serial, RevocationReason::CessationOfOperation, None, &by).await.map_err(map_ca)?;
        tracing::warn!(%label, serial = %record.serial, %reason, "revoked a /serverkeygen certificate whose answer could not be built");
        Ok(())
    }

    async fn cms_signer(&self, label: &str) -> Result<CmsSigner, EstError> {
        let issuer = self.issuer(label)?;
        let digest = match issuer.signature {
            SigningAlgorithm::EcdsaSha384 => CmsDigest::Sha384,
            _ => CmsDigest::Sha256,
        };
        let signature_algorithm_der =
            issuer.signature.algorithm_identifier().to_der().map_err(|e| EstError::Internal(e.to_string()))?;
        Ok(CmsSigner { cert_der: issuer.der.clone(), digest, signature_algorithm_der })
    }

    async fn cms_sign(&self, label: &str, signed_attrs: &[u8]) -> Result<Vec<u8>, EstError> {
        let issuer = self.issuer(label)?;
        self.ca
            .signing()
            .sign(JobClass::Issuance, &issuer.key_label, issuer.signature, signed_attrs.to_vec())
            .await
            .map_err(|e| map_ca(e.into()))
    }
}

/// Hashes a new EST password (argon2id, random salt) as a PHC string.
pub fn hash_password(password: &str) -> Result<String, CaError> {
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut salt).map_err(|_| CaError::internal("no randomness"))?;
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h: PasswordHash| h.to_string())
        .map_err(|e| CaError::internal(format!("argon2: {e}")))
}

/// Creates (or resets) EST user `name` of `label`; a generated password when `password` is
/// `None`. Returns the password.
pub async fn add_user(
    ca: &CertificateAuthority,
    label: &str,
    name: &str,
    password: Option<String>,
    by: &Requester,
) -> Result<String, CaError> {
    if !ca.config().est.labels.contains_key(label) {
        return Err(CaError::bad_request(format!("unknown EST label `{label}` (see [est.labels])")));
    }
    if name.is_empty() || name.contains(':') || name.len() > 128 {
        return Err(CaError::bad_request("user names are 1-128 characters without ':'"));
    }
    let password = match password {
        Some(p) if p.len() >= 12 => p,
        Some(_) => return Err(CaError::bad_request("passwords have at least 12 characters")),
        None => {
            let mut raw = [0u8; 18];
            ring::rand::SystemRandom::new().fill(&mut raw).map_err(|_| CaError::internal("no randomness"))?;
            <base64ct::Base64UrlUnpadded as base64ct::Encoding>::encode_string(&raw)
        }
    };
    let hash = hash_password(&password)?;
    let event = AuditEvent::new(AuditKind::EstUserAdded, by.to_string())
        .detail(serde_json::json!({ "label": label, "user": name }));
    ca.ledger().put_est_user(label, name, &hash, &event).await?;
    Ok(password)
}

/// The router settings for `privca serve`, or `None` when `[est] enabled = false`.
pub fn settings(ca: &CertificateAuthority) -> Result<Option<privca_est::EstSettings>, CaError> {
    let cfg = &ca.config().est;
    if !cfg.enabled {
        return Ok(None);
    }
    let mut labels = BTreeMap::new();
    for (name, label) in &cfg.labels {
        let profile = ca
            .config()
            .profiles
            .get(&label.profile)
            .ok_or_else(|| CaError::internal(format!("EST label {name}: unknown profile")))?;
        let key = profile.allowed_keys.first().copied().map(|k| match k.curve_oid() {
            Some(curve) => KeyRequest::Ec(curve),
            None => KeyRequest::Rsa(k.rsa_bits().unwrap_or(2048) as u32),
        });
        let signature_algorithm = profile.allowed_keys.first().map(|k| match k {
            KeyAlgorithm::EcdsaP384 => const_oid::db::rfc5912::ECDSA_WITH_SHA_384,
            k if k.is_rsa() => const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            _ => const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
        });
        // A subjectAltName is asked for where the profile wants one: required, or copied from a
        // host-name CN when the request has none (san.from_cn).
        let wants_san = profile.san.required || profile.san.from_cn != CnToSan::Never;
        let extensions = if wants_san { vec![const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME] } else { Vec::new() };
        let spec = CsrAttrsSpec { key, signature_algorithm, extensions };
        let csr_attrs = csrattrs::encode(&spec).map_err(|e| CaError::internal(format!("csrattrs: {e}")))?;
        let client_cert: CertAuth = label.client_cert;
        labels.insert(name.clone(), LabelPolicy { basic: label.basic, client_cert, csr_attrs });
    }
    Ok(Some(privca_est::EstSettings {
        realm: cfg.realm.clone(),
        retry_after: cfg.retry_after.as_secs().max(1),
        labels,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_passwords_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        use argon2::password_hash::PasswordVerifier;
        assert!(Argon2::default().verify_password(b"correct horse battery", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong", &parsed).is_err());
    }

    #[test]
    fn core_refusals_keep_their_rule_in_the_body() {
        let detail = "profile tls-server requires at least one subjectAltName (dns or ip) (san.required): add one";
        let e = map_ca(CaError::policy(detail));
        assert_eq!(e.status(), axum::http::StatusCode::FORBIDDEN);
        assert_eq!(e.to_string(), detail);
        let e = map_ca(CaError::bad_request("CSR: not a DER PKCS#10 request"));
        assert_eq!((e.status().as_u16(), e.to_string().as_str()), (400, "CSR: not a DER PKCS#10 request"));
    }
}
