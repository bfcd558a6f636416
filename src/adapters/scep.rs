//! `privca_scep::ScepBackend` over the HSM, the ledger and the issuance cycle; `CaError` →
//! CertRep `failInfo`.
//!
//! The RA keys (RSA-2048, created by `init`) never leave the token: `privca-scep-ra` signs
//! CertReps, and `privca-scep-ra-encryption` decrypts request envelopes (`C_Decrypt`); with
//! `scep.ra_keys = "shared"` the first does both. Each issuing CA that a SCEP name's profile
//! issues from certifies the RA keys itself (through the normal issuance cycle), so that a name
//! on an RSA issuer presents an all-RSA chain; the certificates are reissued (at start-up, then
//! by the `scep_ra_refresh` job) when a third of their lifetime is left or when their CA was
//! replaced by an active successor. GetCACert of a name returns its RA certificates, its
//! issuing CA and, unless the name says `ca_certs = "issuer"`, the root. Every enrollment is
//! recorded with requester `scep:<name>/<transactionID>`, which is how a repeated PKCSReq or a
//! CertPoll finds the transaction again.
//!
//! A name's static challenge (labs) is read once, when the adapter starts, kept in a [`Secret`]
//! (wiped on drop) and compared in constant time; one-time challenges are stored as SHA-256
//! hashes only.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::{Arc, PoisonError, RwLock},
};

use der::{Decode, Encode};
use privca_scep::{CaCerts, FailInfo, Outcome, PkiRequest, ScepBackend, ScepError};
use subtle::ConstantTimeEq;
use x509_cert::request::CertReq;

use crate::{
    audit::{AuditEvent, AuditKind},
    ca::{
        bootstrap::{SCEP_RA_ENCRYPTION_KEY, SCEP_RA_KEY},
        own_cert,
        request::{IssuanceRequest, Requester},
        CertificateAuthority, IssueOutcome, Issuer,
    },
    config::{
        scep::{RaKeys, ScepName},
        Secret,
    },
    error::{CaError, ErrorKind},
    ledger::{ApprovalStatus, CertRecord, CertStatus, ChallengeUse, CrlKind, LedgerError, TransactionRecord},
    limit::{address_key, FailureBudget},
    policy::{Profile, RaRole},
    signer::{JobClass, SignerError, SigningAlgorithm},
};

/// The SCEP backend of `privca serve`.
#[derive(Clone)]
pub struct ScepAdapter {
    ca: CertificateAuthority,
    /// The static challenges of the names that have one, read once at start (a name whose
    /// challenge cannot be read has none: a warning is logged and only one-time challenges
    /// work there).
    static_challenges: Arc<HashMap<String, Secret>>,
    /// The RA certificates served now, by the configured issuer of the names' profiles;
    /// replaced by [`ScepAdapter::refresh_ra_certificate`].
    ra: Arc<RwLock<Arc<RaSet>>>,
    /// Envelopes that did not open, per client address (`scep.envelope_failures_per_minute`).
    envelope_failures: Arc<FailureBudget<IpAddr>>,
}

/// The RA certificates and the CA that issued them.
#[derive(Debug, PartialEq)]
struct RaCertificates {
    /// Of `privca-scep-ra`: signs CertReps (and decrypts with `ra_keys = "shared"`).
    signing: Vec<u8>,
    /// Of `privca-scep-ra-encryption`, with `ra_keys = "separate"`.
    encryption: Option<Vec<u8>>,
    issuer: String,
}

/// RA certificates by the issuer id a profile names (its current successor issues them).
type RaSet = BTreeMap<String, Arc<RaCertificates>>;

impl RaCertificates {
    fn ca_certs(&self, chain: Vec<Vec<u8>>) -> CaCerts {
        CaCerts { ra_encryption: self.encryption.clone(), ra: self.signing.clone(), chain }
    }
}

impl ScepAdapter {
    /// An adapter over `ca`, issuing the RA certificates first if needed.
    pub async fn start(ca: CertificateAuthority) -> Result<Self, CaError> {
        let ra = ra_certificates(&ca).await?;
        let mut static_challenges = HashMap::new();
        for (name, n) in &ca.config().scep.names {
            let Some(source) = &n.challenge else { continue };
            match source.read() {
                Ok(secret) => {
                    static_challenges.insert(name.clone(), secret);
                }
                Err(e) => tracing::warn!(name, error = %e, "SCEP static challenge is configured but unreadable"),
            }
        }
        let envelope_failures = Arc::new(FailureBudget::new(ca.config().scep.envelope_failures_per_minute));
        Ok(Self {
            ca,
            static_challenges: Arc::new(static_challenges),
            ra: Arc::new(RwLock::new(Arc::new(ra))),
            envelope_failures,
        })
    }

    /// The RA certificates of `name`'s issuer.
    fn ra(&self, name: &ScepName) -> Result<Arc<RaCertificates>, ScepError> {
        let set = Arc::clone(&self.ra.read().unwrap_or_else(PoisonError::into_inner));
        self.ca
            .config()
            .profiles
            .get(&name.profile)
            .and_then(|p| set.get(&p.issuer))
            .cloned()
            .ok_or_else(|| ScepError::Internal(format!("no RA certificate for profile {}", name.profile)))
    }

    /// Reissues an RA certificate that has a third of its lifetime left or less, or whose CA
    /// has been replaced by a successor that is active now; true if a certificate served
    /// changed. Requests encrypted to the previous certificate still decrypt (same RA key).
    pub async fn refresh_ra_certificate(&self) -> Result<bool, CaError> {
        let fresh = ra_certificates(&self.ca).await?;
        if **self.ra.read().unwrap_or_else(PoisonError::into_inner) == fresh {
            return Ok(false);
        }
        *self.ra.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
        Ok(true)
    }

    fn name(&self, name: &str) -> Result<&ScepName, ScepError> {
        self.ca
            .config()
            .scep
            .names
            .get(name)
            .ok_or_else(|| ScepError::fail(FailInfo::BadRequest, format!("no SCEP service named {name}")))
    }

    fn issuer_of(&self, profile: &str) -> Result<&Issuer, ScepError> {
        self.ca
            .config()
            .profiles
            .get(profile)
            .and_then(|p| self.ca.current_issuer(&p.issuer))
            .ok_or_else(|| ScepError::Internal(format!("the issuer of profile {profile} is not installed")))
    }

    fn requester(name: &str, transaction_id: &str) -> Requester {
        Requester { protocol: "scep", identity: format!("{name}/{transaction_id}") }
    }

    /// SUCCESS with the certificate and the CA that signed it.
    fn success(&self, cert: CertRecord) -> Result<Outcome, ScepError> {
        let issuer = self
            .ca
            .ca_by_id(&cert.issuer_id)
            .ok_or_else(|| ScepError::Internal(format!("issuer {} is not loaded", cert.issuer_id)))?;
        Ok(Outcome::Success { certs: vec![cert.der, issuer.der.clone()], crls: Vec::new() })
    }

    /// What happened to transaction `requester` so far, if anything.
    async fn earlier(&self, requester: &str) -> Result<Option<Outcome>, ScepError> {
        let approval = match self.ca.ledger().transaction_record(requester).await.map_err(db)? {
            None => return Ok(None),
            Some(TransactionRecord::Certificate(cert)) => return self.success(cert).map(Some),
            Some(TransactionRecord::Approval(approval)) => approval,
        };
        Ok(Some(match (approval.status, approval.serial) {
            (ApprovalStatus::Denied, _) => {
                return Err(ScepError::fail(
                    FailInfo::BadRequest,
                    format!("the request was denied: {}", approval.reason.unwrap_or_default()),
                ))
            }
            (_, Some(serial)) => match self.ca.ledger().certificate(&serial).await.map_err(db)? {
                Some(cert) => self.success(cert)?,
                None => return Err(ScepError::Internal(format!("approved certificate {serial} is missing"))),
            },
            (_, None) => Outcome::Pending,
        }))
    }

    /// Whether the CSR carries the static challenge of name `name`.
    fn static_challenge(&self, name: &str, csr: &CertReq) -> bool {
        let (Some(secret), Some(challenge)) = (self.static_challenges.get(name), challenge_password(csr)) else {
            return false;
        };
        constant_time_eq(secret.expose().as_bytes(), challenge.as_bytes())
    }

    /// PKCSReq authorisation by a one-time challenge for the name's profile, used up here by
    /// `transaction` unless another copy of it used it before ([`ChallengeUse::UsedBefore`]).
    async fn use_challenge(
        &self,
        name: &ScepName,
        csr: &CertReq,
        transaction: &str,
    ) -> Result<ChallengeUse, ScepError> {
        let Some(password) = challenge_password(csr) else { return Ok(ChallengeUse::Refused) };
        self.ca.ledger().use_scep_challenge(&challenge_hash(&password), &name.profile, transaction).await.map_err(db)
    }

    /// RenewalReq authorisation: signed by a valid privca certificate of the same profile that
    /// expires within `scep.renewal_window`. Returns its serial.
    async fn check_renewal(&self, name: &ScepName, signer_der: &[u8]) -> Result<String, ScepError> {
        let fingerprint = hex::encode(ring::digest::digest(&ring::digest::SHA256, signer_der));
        let refuse = |text: &str| ScepError::fail(FailInfo::BadRequest, text);
        let record = self
            .ca
            .ledger()
            .certificate_by_fingerprint(&fingerprint)
            .await
            .map_err(db)?
            .ok_or_else(|| refuse("RenewalReq must be signed by a certificate this CA issued"))?;
        let now = crate::ledger::now();
        if record.status != CertStatus::Valid || record.not_after <= now {
            return Err(refuse("the certificate being renewed is revoked or expired"));
        }
        if record.profile != name.profile {
            return Err(refuse("the certificate being renewed belongs to another profile"));
        }
        let window = self.ca.config().scep.renewal_window.as_secs() as i64;
        if record.not_after - now > window {
            return Err(refuse("renewal is accepted only within scep.renewal_window of the expiry"));
        }
        Ok(record.serial)
    }
}

/// `CaError` → failInfo: client-caused kinds are badRequest, the rest is internal.
fn map_ca(e: CaError) -> ScepError {
    match e.kind() {
        ErrorKind::BadRequest | ErrorKind::PolicyViolation | ErrorKind::Conflict => {
            ScepError::fail(FailInfo::BadRequest, e.detail().to_owned())
        }
        ErrorKind::NotFound => ScepError::fail(FailInfo::BadCertId, e.detail().to_owned()),
        ErrorKind::Unavailable | ErrorKind::Internal => ScepError::Internal(e.to_string()),
        ErrorKind::Busy => {
            tracing::debug!(error = %e, "SCEP request refused: the HSM queue is full (counted in privca_hsm_queue_rejected_total)");
            ScepError::Busy
        }
    }
}

fn db(e: LedgerError) -> ScepError {
    map_ca(CaError::from(e))
}

/// The challengePassword attribute of a CSR (a DirectoryString).
pub fn challenge_password(csr: &CertReq) -> Option<String> {
    let attr = csr.info.attributes.iter().find(|a| a.oid == privca_scep::oids::CHALLENGE_PASSWORD)?;
    let value = attr.values.iter().next()?;
    value
        .decode_as::<der::asn1::PrintableStringRef<'_>>()
        .map(|s| s.as_str().to_owned())
        .or_else(|_| value.decode_as::<String>())
        .or_else(|_| value.decode_as::<der::asn1::Ia5StringRef<'_>>().map(|s| s.as_str().to_owned()))
        .ok()
}

/// How a challenge is stored: SHA-256, hex (challenges are 128-bit random values).
pub fn challenge_hash(challenge: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, challenge.as_bytes()))
}

/// Compares two secrets in time that depends on neither (nor on their lengths): SHA-256 of
/// each, compared with `subtle`.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (ring::digest::digest(&ring::digest::SHA256, a), ring::digest::digest(&ring::digest::SHA256, b));
    bool::from(a.as_ref().ct_eq(b.as_ref()))
}

impl ScepBackend for ScepAdapter {
    fn knows(&self, name: &str) -> bool {
        self.ca.config().scep.names.contains_key(name)
    }

    async fn ca_certs(&self, name: &str) -> Result<CaCerts, ScepError> {
        let name = self.name(name)?;
        let issuer = self.issuer_of(&name.profile)?;
        let ra = self.ra(name)?;
        Ok(ra.ca_certs(self.chain(issuer, &ra, name.include_root)))
    }

    async fn next_ca_certs(&self, name: &str) -> Result<Option<CaCerts>, ScepError> {
        let name = self.name(name)?;
        let next = self.ca.config().profiles.get(&name.profile).and_then(|p| self.ca.next_issuer(&p.issuer));
        let ra = self.ra(name)?;
        Ok(next.map(|(issuer, _)| ra.ca_certs(self.chain(issuer, &ra, name.include_root))))
    }

    async fn ra_decrypt(&self, encrypted_key: &[u8]) -> Result<Vec<u8>, ScepError> {
        // A tampered ciphertext gives CKR_ENCRYPTED_DATA_INVALID or CKR_GENERAL_ERROR; the
        // router answers every error alike (implicit rejection); the detail is logged only.
        let key = match self.ca.config().scep.ra_keys {
            RaKeys::Separate => SCEP_RA_ENCRYPTION_KEY,
            RaKeys::Shared => SCEP_RA_KEY,
        };
        self.ca.signing().decrypt(JobClass::Protocol, key, encrypted_key.to_vec()).await.map_err(|e| match e {
            // Refused by the queue before any decryption: load, not the ciphertext, decides it.
            SignerError::Busy(_) => ScepError::Busy,
            // The token failed (whatever the ciphertext): no CertRep can be signed either.
            e if e.is_device_failure() => {
                tracing::error!(error = %e, "SCEP: the HSM cannot decrypt");
                ScepError::Unavailable
            }
            e => {
                tracing::debug!(error = %e, "SCEP envelope key did not decrypt");
                ScepError::fail(FailInfo::BadMessageCheck, "the envelope is not encrypted to the RA certificate")
            }
        })
    }

    fn envelope_failed(&self, peer: Option<IpAddr>) {
        if let Some(peer) = peer {
            self.envelope_failures.failed(address_key(peer));
        }
    }

    fn envelopes_limited(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|p| self.envelope_failures.exhausted(&address_key(p)))
    }

    async fn ra_sign(&self, data: &[u8]) -> Result<Vec<u8>, ScepError> {
        self.ca
            .signing()
            .sign(JobClass::Protocol, SCEP_RA_KEY, SigningAlgorithm::RsaPkcs1Sha256, data.to_vec())
            .await
            .map_err(|e| match e {
                SignerError::Busy(_) => ScepError::Busy,
                e => {
                    tracing::error!(error = %e, "SCEP: the HSM cannot sign the CertRep");
                    ScepError::Unavailable
                }
            })
    }

    /// PKCSReq and RenewalReq. The same transaction again gets what the first one
    /// got, never a second certificate. The reservation makes sure of that
    /// (`one_per_requester`): it is refused when the transaction has a certificate, one in
    /// flight or an approval request, and only then is the transaction looked up (PENDING
    /// while the first copy is still being signed). The lookup comes first where something
    /// would be written before the reservation: a one-time challenge (a retransmission must
    /// not use it up) or an approval request. Two copies that both pass the lookup at once
    /// (two instances, the same millisecond) meet at the challenge: the ledger records which
    /// transaction used it, so the copy that finds it used up by its twin is not refused but
    /// goes on as with a static challenge (or, on an approval profile, gets the twin's outcome
    /// or PENDING); a copy of another transaction is refused.
    async fn enroll(&self, request: PkiRequest) -> Result<Outcome, ScepError> {
        let name = self.name(&request.name)?.clone();
        let requester = Self::requester(&request.name, &request.transaction_id);
        let transaction = requester.to_string();
        let csr = CertReq::from_der(&request.csr_der)
            .map_err(|_| ScepError::fail(FailInfo::BadRequest, "the envelope does not hold a PKCS#10 request"))?;
        let approval = self.ca.config().profiles.get(&name.profile).is_some_and(|p| p.approval);
        let reservation_finds_it = !approval && (request.renewal || self.static_challenge(&request.name, &csr));
        if !reservation_finds_it {
            if let Some(outcome) = self.earlier(&transaction).await? {
                return Ok(outcome);
            }
        }
        let mut issuance = IssuanceRequest::from_csr(&request.csr_der, &name.profile, requester).map_err(map_ca)?;
        issuance.one_per_requester = true;
        let owner = if request.renewal {
            issuance.renews = Some(self.check_renewal(&name, &request.signer_cert_der).await?);
            None
        } else if reservation_finds_it {
            None
        } else {
            match self.use_challenge(&name, &csr, &transaction).await? {
                // Another copy of this transaction used the challenge (on this or another
                // instance): on an approval profile this copy gets what that one got, since a
                // second approval request would not be refused; otherwise the reservation
                // decides, as with a static challenge.
                ChallengeUse::UsedBefore(_) if approval => {
                    return Ok(self.earlier(&transaction).await?.unwrap_or(Outcome::Pending))
                }
                ChallengeUse::Used(owner) | ChallengeUse::UsedBefore(owner) => owner,
                ChallengeUse::Refused => {
                    return Err(ScepError::fail(FailInfo::BadRequest, "wrong, expired or used challenge password"))
                }
            }
        };
        issuance.owner = owner.or_else(|| name.owner.clone());
        match self.ca.issue(issuance).await {
            Ok(IssueOutcome::Issued(cert)) => self.success(cert.record),
            Ok(IssueOutcome::Pending(_)) => Ok(Outcome::Pending),
            // Refused by the reservation: the earlier outcome, or the first copy still in flight.
            Err(e) if e.kind() == ErrorKind::Conflict => {
                Ok(self.earlier(&transaction).await?.unwrap_or(Outcome::Pending))
            }
            Err(e) => Err(map_ca(e)),
        }
    }

    async fn poll(&self, name: &str, transaction_id: &str) -> Result<Outcome, ScepError> {
        self.name(name)?;
        self.earlier(&Self::requester(name, transaction_id).to_string())
            .await?
            .ok_or_else(|| ScepError::fail(FailInfo::BadCertId, "no such transaction"))
    }

    async fn get_cert(&self, issuer: &[u8], serial: &[u8]) -> Result<Outcome, ScepError> {
        let not_found = || ScepError::fail(FailInfo::BadCertId, "no certificate with this issuer and serial");
        let ca = self.ca_by_name(issuer).ok_or_else(not_found)?;
        let serial = hex::encode(serial.strip_prefix(&[0]).unwrap_or(serial));
        match self.ca.ledger().certificate(&serial).await.map_err(db)? {
            Some(cert) if cert.issuer_id == ca.id => Ok(Outcome::Success { certs: vec![cert.der], crls: Vec::new() }),
            _ => Err(not_found()),
        }
    }

    async fn get_crl(&self, issuer: &[u8], _serial: &[u8]) -> Result<Outcome, ScepError> {
        let ca = self
            .ca_by_name(issuer)
            .ok_or_else(|| ScepError::fail(FailInfo::BadCertId, "no CA with this issuer name"))?;
        let crl = self
            .ca
            .ledger()
            .latest_crl(&ca.id, CrlKind::Full, true)
            .await
            .map_err(db)?
            .ok_or_else(|| ScepError::fail(FailInfo::BadRequest, "no CRL has been published yet for this CA"))?;
        Ok(Outcome::Success { certs: Vec::new(), crls: vec![crl.der] })
    }
}

impl ScepAdapter {
    /// `issuer`, the issuer of the RA certificates `ra` when that is another one (after a
    /// rollover, until the RA certificates are reissued), and the root if `include_root`.
    fn chain(&self, issuer: &Issuer, ra: &RaCertificates, include_root: bool) -> Vec<Vec<u8>> {
        let mut chain = vec![issuer.der.clone()];
        if let Some(ra_issuer) = self.ca.issuer(&ra.issuer).filter(|i| i.id != issuer.id) {
            chain.push(ra_issuer.der.clone());
        }
        if let Some(root) = self.ca.root().filter(|r| include_root && r.id != issuer.id) {
            chain.push(root.der.clone());
        }
        chain
    }

    /// The CA (root or issuer) whose subject is the DER `name`.
    fn ca_by_name(&self, name: &[u8]) -> Option<&Issuer> {
        self.ca
            .root()
            .into_iter()
            .chain(self.ca.issuers())
            .find(|i| i.cert.tbs_certificate.subject.to_der().is_ok_and(|s| s == name))
    }
}

/// The RA certificates of `scep.ra_keys` for every issuer a SCEP name's profile names, each
/// from that issuer's current successor.
async fn ra_certificates(ca: &CertificateAuthority) -> Result<RaSet, CaError> {
    let cfg = &ca.config().scep;
    let mut set = RaSet::new();
    for name in cfg.names.values() {
        let configured = &ca
            .config()
            .profiles
            .get(&name.profile)
            .ok_or_else(|| CaError::internal(format!("unknown profile {}", name.profile)))?
            .issuer;
        if set.contains_key(configured) {
            continue;
        }
        let issuer = ca
            .current_issuer(configured)
            .map(|i| i.id.clone())
            .ok_or_else(|| CaError::internal(format!("issuer {configured} of a SCEP profile is not installed")))?;
        let certs = match cfg.ra_keys {
            RaKeys::Separate => RaCertificates {
                signing: ra_certificate(ca, &issuer, SCEP_RA_KEY, RaRole::Signing).await?,
                encryption: Some(ra_certificate(ca, &issuer, SCEP_RA_ENCRYPTION_KEY, RaRole::Encryption).await?),
                issuer,
            },
            RaKeys::Shared => RaCertificates {
                signing: ra_certificate(ca, &issuer, SCEP_RA_KEY, RaRole::Both).await?,
                encryption: None,
                issuer,
            },
        };
        set.insert(configured.clone(), Arc::new(certs));
    }
    Ok(set)
}

/// The certificate of `role` for the token key `key` from `issuer_id` ([`own_cert`]).
async fn ra_certificate(
    ca: &CertificateAuthority,
    issuer_id: &str,
    key: &str,
    role: RaRole,
) -> Result<Vec<u8>, CaError> {
    let spki_der = ca.signing().key_info(key)?.spki_der;
    let profile = Profile::scep_ra(issuer_id, ca.config().scep.ra_validity, role);
    Ok(own_cert::current_or_issue(ca, &profile, &spki_der).await?.der)
}

/// Creates a one-time challenge for `profile`; returns it (shown once).
pub async fn new_challenge(
    ca: &CertificateAuthority,
    profile: &str,
    owner: Option<&str>,
    ttl: std::time::Duration,
    uses: u32,
    by: &Requester,
) -> Result<String, CaError> {
    if !ca.config().scep.names.values().any(|n| n.profile == profile) {
        return Err(CaError::bad_request(format!("no [scep.names] entry uses profile `{profile}`")));
    }
    if uses == 0 {
        return Err(CaError::bad_request("--uses must be at least 1"));
    }
    if uses > 1 && ca.config().profiles.get(profile).is_some_and(|p| p.approval) {
        // The approval queue keeps the request, challengePassword included, in the ledger: a
        // challenge that still works after its first request must not sit there.
        return Err(CaError::bad_request(format!("profile `{profile}` needs approval: its challenges are single-use")));
    }
    let mut raw = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
        .map_err(|_| CaError::internal("no randomness"))?;
    let challenge = hex::encode(raw);
    let expires = crate::ledger::now() + ttl.as_secs() as i64;
    let event = AuditEvent::new(AuditKind::ScepChallengeCreated, by.to_string())
        .profile(profile)
        .detail(serde_json::json!({ "owner": owner, "uses": uses, "expires_at": expires }));
    ca.ledger()
        .create_scep_challenge(&challenge_hash(&challenge), profile, owner, i64::from(uses), expires, &event)
        .await?;
    Ok(challenge)
}

/// Router settings for `privca serve`, and the adapter, or `None` when `[scep] enabled = false`.
pub async fn state(ca: &CertificateAuthority) -> Result<Option<(ScepAdapter, privca_scep::ScepSettings)>, CaError> {
    if !ca.config().scep.enabled {
        return Ok(None);
    }
    let adapter = ScepAdapter::start(ca.clone()).await?;
    let rejection = privca_scep::rejection::ImplicitRejection::new()
        .map_err(|_| CaError::internal("no randomness for the SCEP implicit-rejection key"))?;
    Ok(Some((
        adapter,
        privca_scep::ScepSettings {
            prefix: crate::paths::SCEP_PREFIX.to_owned(),
            single_des: ca
                .config()
                .scep
                .names
                .iter()
                .filter(|(_, n)| n.allow_single_des)
                .map(|(name, _)| name.clone())
                .collect(),
            rejection: Arc::new(rejection),
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_stored_hashed_and_compared_in_constant_time() {
        assert_eq!(challenge_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
