//! `privca_est::EstBackend` over the ledger and the issuance cycle; `CaError` → `EstError`.
//!
//! Certificates enrolled over EST carry the requester `est:<label>/<identity>` (the Basic user
//! or the client certificate's subject) and, unless the label names an owner, that identity as
//! their CLM owner. Basic passwords are argon2id PHC strings in the ledger; a successful check is
//! remembered for `est.password_cache` (keyed by an HMAC of the password under a per-process
//! key) so that a device's next request does not pay argon2 again.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Instant,
};

use argon2::{
    password_hash::{phc::PasswordHash, PasswordHasher, PasswordVerifier},
    Argon2,
};
use der::{asn1::BitString, Any, Decode, Encode};
use privca_est::{
    backend::{CmsDigest, CmsSigner, KeygenOutcome},
    csrattrs::{self, CsrAttrsSpec, KeyRequest},
    ClientCertificate, EnrollOutcome, EnrollRequest, EstBackend, EstError, LabelPolicy,
};
use ring::{hmac, rand::SecureRandom, signature::KeyPair};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::{
    audit::{AuditEvent, AuditKind},
    ca::{
        request::{IssuanceRequest, Requester},
        CertificateAuthority, IssueOutcome, Issuer,
    },
    config::est::{EstConfig, EstLabel},
    error::{CaError, ErrorKind},
    ledger::{ApprovalStatus, CertStatus, LedgerError},
    signer::{JobClass, KeyAlgorithm, SigningAlgorithm},
};

/// The EST backend of `privca serve`.
#[derive(Clone)]
pub struct EstAdapter {
    ca: CertificateAuthority,
    config: Arc<EstConfig>,
    passwords: Arc<PasswordCache>,
    /// Subjects (DER) of the configured bootstrap CAs.
    bootstrap_subjects: Arc<Vec<Vec<u8>>>,
}

/// Remembered successful Basic checks: `(label, user)` → (HMAC of the password, expiry).
struct PasswordCache {
    key: hmac::Key,
    entries: Mutex<HashMap<LabelUser, (Vec<u8>, Instant)>>,
}

/// `(label, user name)`.
type LabelUser = (String, String);

impl PasswordCache {
    fn tag(&self, password: &str) -> Vec<u8> {
        hmac::sign(&self.key, password.as_bytes()).as_ref().to_vec()
    }

    fn hit(&self, label: &str, user: &str, password: &str) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        matches!(entries.get(&(label.to_owned(), user.to_owned())),
            Some((tag, until)) if *until > Instant::now() && hmac::verify(&self.key, password.as_bytes(), tag).is_ok())
    }

    fn remember(&self, label: &str, user: &str, password: &str, ttl: std::time::Duration) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if entries.len() > 10_000 {
            entries.retain(|_, (_, until)| *until > now);
        }
        entries.insert((label.to_owned(), user.to_owned()), (self.tag(password), now + ttl));
    }

    fn forget(&self, label: &str, user: &str) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(&(label.to_owned(), user.to_owned()));
    }
}

impl EstAdapter {
    /// An adapter over `ca`; `bootstrap_subjects` are the DER subjects of the bootstrap CAs.
    pub fn new(ca: CertificateAuthority, bootstrap_subjects: Vec<Vec<u8>>) -> Result<Self, CaError> {
        let mut key = [0u8; 32];
        ring::rand::SystemRandom::new().fill(&mut key).map_err(|_| CaError::internal("no randomness"))?;
        let config = Arc::new(ca.config().est.clone());
        Ok(Self {
            ca,
            config,
            passwords: Arc::new(PasswordCache {
                key: hmac::Key::new(hmac::HMAC_SHA256, &key),
                entries: Mutex::default(),
            }),
            bootstrap_subjects: Arc::new(bootstrap_subjects),
        })
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

    /// A request for the label's profile, owned by the label's owner or the identity.
    fn issuance(&self, request: &EnrollRequest) -> Result<IssuanceRequest, EstError> {
        let label = self.label(&request.label)?;
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
fn map_ca(e: CaError) -> EstError {
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

    async fn check_password(&self, label: &str, user: &str, password: &str) -> Result<bool, EstError> {
        if self.passwords.hit(label, user, password) {
            return Ok(true);
        }
        let Some(hash) = self.ca.ledger().est_password_hash(label, user).await.map_err(db)? else {
            return Ok(false);
        };
        let candidate = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|h| Argon2::default().verify_password(candidate.as_bytes(), &h).is_ok())
        })
        .await
        .map_err(|e| EstError::Internal(format!("password check: {e}")))?;
        if ok {
            self.passwords.remember(label, user, password, self.config.password_cache);
        } else {
            self.passwords.forget(label, user);
        }
        Ok(ok)
    }

    async fn check_client_cert(&self, label: &str, chain: &[Vec<u8>]) -> Result<ClientCertificate, EstError> {
        let leaf = chain.first().ok_or_else(|| EstError::Forbidden("no client certificate".into()))?;
        let fingerprint = hex::encode(ring::digest::digest(&ring::digest::SHA256, leaf));
        let cert = x509_cert::Certificate::from_der(leaf)
            .map_err(|_| EstError::Forbidden("unreadable client certificate".into()))?;
        match self.ca.ledger().certificate_by_fingerprint(&fingerprint).await.map_err(db)? {
            Some(record) if record.status == CertStatus::Revoked => {
                Err(self.refuse_client_cert(label, Some(&record.serial), "the client certificate is revoked").await)
            }
            Some(record) if record.not_after <= crate::ledger::now() => {
                Err(self.refuse_client_cert(label, Some(&record.serial), "the client certificate has expired").await)
            }
            Some(record) => {
                Ok(ClientCertificate { der: leaf.clone(), subject: record.subject, serial: Some(record.serial) })
            }
            None => {
                let issuer = cert.tbs_certificate.issuer.to_der().map_err(|e| EstError::Internal(e.to_string()))?;
                if self.bootstrap_subjects.contains(&issuer) {
                    Ok(ClientCertificate {
                        der: leaf.clone(),
                        subject: cert.tbs_certificate.subject.to_string(),
                        serial: None,
                    })
                } else {
                    Err(self.refuse_client_cert(label, None, "the client certificate is not in the ledger").await)
                }
            }
        }
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
        let (key_pkcs8, spki_der) = generate_key(label.serverkeygen_key)?;
        issuance.spki_der = spki_der;
        issuance.csr_der = None;
        match self.ca.issue(issuance).await.map_err(map_ca)? {
            IssueOutcome::Issued(cert) => Ok(KeygenOutcome::Issued { key_pkcs8, cert_der: cert.record.der }),
            IssueOutcome::Pending(_) => {
                Err(EstError::Internal("a server-keygen request was queued for approval".into()))
            }
        }
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

/// A fresh software key for `/serverkeygen`: PKCS#8 DER (handed to the client, never stored)
/// and its SPKI DER.
fn generate_key(algorithm: KeyAlgorithm) -> Result<(Vec<u8>, Vec<u8>), EstError> {
    let (signing, curve) = match algorithm {
        KeyAlgorithm::EcdsaP384 => {
            (&ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING, const_oid::db::rfc5912::SECP_384_R_1)
        }
        _ => (&ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING, const_oid::db::rfc5912::SECP_256_R_1),
    };
    let rng = ring::rand::SystemRandom::new();
    let internal = |what: &str| EstError::Internal(format!("server key generation: {what}"));
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(signing, &rng).map_err(|_| internal("generate"))?;
    let pair =
        ring::signature::EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), &rng).map_err(|_| internal("parse"))?;
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
            parameters: Some(Any::encode_from(&curve).map_err(|_| internal("curve"))?),
        },
        subject_public_key: BitString::from_bytes(pair.public_key().as_ref()).map_err(|_| internal("key"))?,
    };
    Ok((pkcs8.as_ref().to_vec(), spki.to_der().map_err(|_| internal("SPKI"))?))
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
        let extensions =
            if profile.san.required { vec![const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME] } else { Vec::new() };
        let spec = CsrAttrsSpec { key, signature_algorithm, extensions };
        let csr_attrs = csrattrs::encode(&spec).map_err(|e| CaError::internal(format!("csrattrs: {e}")))?;
        labels.insert(name.clone(), LabelPolicy { basic: label.basic, client_cert: label.client_cert, csr_attrs });
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
    fn hashed_passwords_verify_and_the_cache_expires() {
        let hash = hash_password("correct horse battery").unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse battery", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong", &parsed).is_err());
        let cache = PasswordCache { key: hmac::Key::new(hmac::HMAC_SHA256, b"k"), entries: Mutex::default() };
        cache.remember("default", "u", "pw", std::time::Duration::from_secs(60));
        assert!(cache.hit("default", "u", "pw"));
        assert!(!cache.hit("default", "u", "other"));
        assert!(!cache.hit("vpn", "u", "pw"));
        cache.remember("default", "v", "pw", std::time::Duration::ZERO);
        assert!(!cache.hit("default", "v", "pw"));
    }

    #[test]
    fn generated_keys_match_their_spki() {
        let (pkcs8, spki) = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
        let spki = spki::SubjectPublicKeyInfoRef::from_der(&spki).unwrap();
        assert_eq!(KeyAlgorithm::from_spki(&spki), Some(KeyAlgorithm::EcdsaP256));
        assert!(!pkcs8.is_empty());
    }
}
