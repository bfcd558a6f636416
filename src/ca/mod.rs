//! The issuance cycle: prepare → reserve → sign → verify → commit.
//!
//! 1. **Prepare** ([`prepare`]): the profile and the request become a `TBSCertificate`; CSR
//!    signature, key policy and name rules are checked here. A refusal writes an audit `failed`
//!    row and nothing else.
//! 2. **Approval gate**: a profile with `approval = true` stores the request as pending and
//!    stops; `privca approvals approve ID` re-enters the cycle.
//! 3. **Reserve**: the serial and the TBS hash are written to the ledger before any signature.
//! 4. **Sign** in the HSM, then **verify** the signature with the issuer's public key.
//! 5. **Commit**: certificate row, reservation state and audit row in one transaction.
//!
//! A failure after the reservation marks it `aborted` with an audit row; the serial is never
//! reused and no certificate exists that the ledger does not know.

pub mod bootstrap;
pub mod chain;
pub mod changes;
pub mod crl;
pub mod health;
pub mod keygen;
pub mod ocsp;
mod ocsp_cache;
pub mod own_cert;
pub mod prepare;
pub mod request;
pub mod revoke;
pub mod sign;
pub mod x509;

use std::{collections::BTreeMap, sync::Arc, time::SystemTime};

use der::{Decode, Encode};
use x509_cert::Certificate;

pub use self::request::{IssuanceRequest, Requester, San};
pub use self::revoke::RevocationReason;
use crate::{
    audit::{AuditEvent, AuditKind},
    config::Config,
    error::{CaError, ErrorKind},
    ledger::{ApprovalStatus, CertRecord, CertStatus, Decided, Ledger, NewApproval, Reservation, RevokeOutcome},
    policy::Profile,
    signer::{SigningAlgorithm, SigningService},
};

/// Whether one of privca's own certificates (its TLS certificate, an OCSP responder's, a SCEP
/// RA's) valid from `not_before` to `not_after` still has more than a third of its lifetime
/// left at `now`: past that, privca reissues it.
pub fn more_than_a_third_left(not_before: i64, not_after: i64, now: i64) -> bool {
    (not_after - now) * 3 > (not_after - not_before)
}

/// Label of a CA key in the token.
pub fn key_label(ca_id: &str) -> String {
    if ca_id == "root" {
        "privca-root".into()
    } else {
        format!("privca-issuer-{ca_id}")
    }
}

/// A CA certificate with its key, ready to sign.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// `root` or the issuer id.
    pub id: String,
    /// Key label in the token.
    pub key_label: String,
    /// Signature algorithm.
    pub signature: SigningAlgorithm,
    /// Parsed certificate.
    pub cert: Certificate,
    /// DER certificate.
    pub der: Vec<u8>,
    /// DER SPKI.
    pub spki_der: Vec<u8>,
    /// Subject key identifier.
    pub ski: Vec<u8>,
    /// End of validity.
    pub not_after: SystemTime,
    /// PEM of this certificate followed by the certificates above it.
    pub chain_pem: String,
}

impl Issuer {
    /// Builds an issuer from a stored CA certificate.
    pub fn from_der(id: &str, der: &[u8], chain_above_pem: &str, signature: SigningAlgorithm) -> Result<Self, CaError> {
        let cert =
            Certificate::from_der(der).map_err(|e| CaError::internal(format!("CA certificate {id}")).with_source(e))?;
        let spki_der = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| CaError::internal("CA SPKI").with_source(e))?;
        let ski = match x509::certificate_ski(&cert) {
            Some(ski) => ski,
            None => x509::key_identifier(&spki_der)?,
        };
        Ok(Self {
            id: id.to_owned(),
            key_label: key_label(id),
            signature,
            not_after: cert.tbs_certificate.validity.not_after.to_system_time(),
            chain_pem: format!("{}{}", x509::pem(der), chain_above_pem),
            cert,
            der: der.to_vec(),
            spki_der,
            ski,
        })
    }
}

/// What [`CertificateAuthority::issue`] produced.
#[derive(Debug)]
pub enum IssueOutcome {
    /// Issued and committed.
    Issued(Box<IssuedCertificate>),
    /// Waiting for an operator (approval id).
    Pending(i64),
}

/// A committed certificate and its chain.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// The ledger row.
    pub record: CertRecord,
    /// Leaf, issuer (and any certificates above the issuer except the root), PEM.
    pub chain_pem: String,
}

/// What an approval did.
#[derive(Debug)]
pub enum Approved {
    /// The last approval needed: the certificate is issued.
    Issued(Box<IssuedCertificate>),
    /// Recorded; more distinct approvers are needed.
    Waiting {
        /// Approvals so far.
        approvals: i64,
        /// Approvals needed.
        required: i64,
    },
}

/// The CA: configuration, ledger, signing service and loaded issuers.
#[derive(Clone)]
pub struct CertificateAuthority {
    config: Arc<Config>,
    ledger: Ledger,
    signing: SigningService,
    root: Option<Issuer>,
    issuers: BTreeMap<String, Issuer>,
    changes: changes::ChangeFeed,
    first_response: ocsp::FirstResponder,
}

impl CertificateAuthority {
    /// Loads the CA certificates from the ledger. Fails if `privca init` has not run, or if a
    /// non-external issuer has no certificate yet.
    pub async fn open(config: Arc<Config>, ledger: Ledger, signing: SigningService) -> Result<Self, CaError> {
        let root = match ledger.ca_certificate("root").await? {
            Some(c) => Some(Issuer::from_der("root", &c.der, "", config.root.signature)?),
            None => None,
        };
        let mut issuers = BTreeMap::new();
        for ic in &config.issuers {
            match ledger.ca_certificate(&ic.id).await? {
                Some(c) => {
                    let issuer = Issuer::from_der(&ic.id, &c.der, &c.chain_pem, ic.ca.signature)?;
                    let token_spki = signing.key_info(&issuer.key_label)?.spki_der;
                    if token_spki != issuer.spki_der {
                        return Err(CaError::internal(format!(
                            "issuer {}: certificate does not match key {} in the token",
                            ic.id, issuer.key_label
                        )));
                    }
                    issuers.insert(ic.id.clone(), issuer);
                }
                None if ic.external => {
                    tracing::warn!(issuer = %ic.id, "issuer awaits `privca import-issuer`; profiles using it will fail");
                }
                None => {
                    return Err(CaError::new(
                        ErrorKind::Unavailable,
                        format!("issuer {} has no certificate: run `privca init`", ic.id),
                    ))
                }
            }
        }
        Ok(Self {
            config,
            ledger,
            signing,
            root,
            issuers,
            changes: changes::ChangeFeed::default(),
            first_response: ocsp::FirstResponder::default(),
        })
    }

    /// Reports commits and revocations to `feed` (the OCSP pre-signer of `privca serve`).
    pub fn with_change_feed(mut self, feed: changes::ChangeFeed) -> Self {
        self.changes = feed;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The signing service.
    pub fn signing(&self) -> &SigningService {
        &self.signing
    }

    /// The root, when privca holds one.
    pub fn root(&self) -> Option<&Issuer> {
        self.root.as_ref()
    }

    /// An issuer by id.
    pub fn issuer(&self, id: &str) -> Option<&Issuer> {
        self.issuers.get(id)
    }

    /// The root (`root`) or an issuer by id: every CA that signs something.
    pub fn ca_by_id(&self, id: &str) -> Option<&Issuer> {
        if id == "root" {
            self.root()
        } else {
            self.issuer(id)
        }
    }

    /// The issuer that signs for profiles naming `id` now: `id` itself, or the newest loaded
    /// successor (`[[issuer]] replaces`) whose `active_from` has passed.
    pub fn current_issuer(&self, id: &str) -> Option<&Issuer> {
        self.current_issuer_at(id, SystemTime::now())
    }

    fn current_issuer_at(&self, id: &str, at: SystemTime) -> Option<&Issuer> {
        let mut current = self.ca_by_id(id)?;
        while let Some((next, active_from)) = self.successor(&current.id) {
            if active_from > at {
                break;
            }
            current = next;
        }
        Some(current)
    }

    /// The loaded successor of the current issuer for `id` that is not active yet, and when it
    /// takes over (what SCEP's GetNextCACert announces).
    pub fn next_issuer(&self, id: &str) -> Option<(&Issuer, SystemTime)> {
        let now = SystemTime::now();
        let current = self.current_issuer_at(id, now)?;
        self.successor(&current.id).filter(|(_, at)| *at > now)
    }

    fn successor(&self, id: &str) -> Option<(&Issuer, SystemTime)> {
        let next = self.config.issuers.iter().find(|i| i.rollover.as_ref().is_some_and(|r| r.replaces == id))?;
        Some((self.issuers.get(&next.id)?, next.rollover.as_ref()?.active_from))
    }

    /// All loaded issuers.
    pub fn issuers(&self) -> impl Iterator<Item = &Issuer> {
        self.issuers.values()
    }

    /// Runs the issuance cycle for `request` under its configured profile, signed by the
    /// profile's issuer or, after a rollover, by the successor that is active now.
    #[tracing::instrument(skip_all, fields(profile = %request.profile, requester = %request.requester))]
    pub async fn issue(&self, request: IssuanceRequest) -> Result<IssueOutcome, CaError> {
        let config = Arc::clone(&self.config);
        match config.profiles.get(&request.profile) {
            Some(profile) => self.issue_from(request, profile, self.current_issuer(&profile.issuer)).await,
            None => {
                let e = CaError::policy(format!("unknown profile `{}`", request.profile));
                Err(self.refused(&request, e).await)
            }
        }
    }

    /// Runs the issuance cycle under a built-in profile (the OCSP responder's, the SCEP RA's),
    /// signed by exactly the issuer it names.
    pub async fn issue_with_profile(
        &self,
        request: IssuanceRequest,
        profile: &Profile,
    ) -> Result<IssueOutcome, CaError> {
        self.issue_from(request, profile, self.ca_by_id(&profile.issuer)).await
    }

    /// A renewal (ACME `replaces`, EST `/simplereenroll`, SCEP RenewalReq) under a profile with
    /// `renewal_reuse_key = false` must bring a new key: the same SubjectPublicKeyInfo as the
    /// certificate it renews is a policy violation, which each protocol answers with its own
    /// refusal. privca's own certificates (the server's TLS certificate, requester `system`)
    /// keep their key in the token by design and are not held to it.
    async fn check_renewal_key(&self, request: &IssuanceRequest, profile: &Profile) -> Result<(), CaError> {
        let applies = !profile.renewal_reuse_key && request.requester != Requester::system();
        let Some(serial) = request.renews.as_deref().filter(|_| applies) else { return Ok(()) };
        let Some(old) = self.ledger.certificate(serial).await? else { return Ok(()) };
        let old = Certificate::from_der(&old.der)
            .and_then(|c| c.tbs_certificate.subject_public_key_info.to_der())
            .map_err(|e| CaError::new(ErrorKind::Internal, format!("certificate {serial} in the ledger: {e}")))?;
        if old == request.spki_der {
            return Err(CaError::new(
                ErrorKind::PolicyViolation,
                format!("profile {} does not allow a renewal to reuse the key of certificate {serial}", profile.name),
            ));
        }
        Ok(())
    }

    async fn issue_from(
        &self,
        request: IssuanceRequest,
        profile: &Profile,
        issuer: Option<&Issuer>,
    ) -> Result<IssueOutcome, CaError> {
        let Some(issuer) = issuer else {
            let e = CaError::new(ErrorKind::Unavailable, format!("issuer {} is not installed", profile.issuer));
            return Err(self.refused(&request, e).await);
        };
        if let Err(e) = self.check_renewal_key(&request, profile).await {
            return Err(self.refused(&request, e).await);
        }
        let prepared = match prepare::prepare(&request, profile, issuer, &self.config.urls) {
            Ok(p) => p,
            Err(e) => return Err(self.refused(&request, e).await),
        };
        if profile.approval && request.approval_id.is_none() {
            return self.queue_for_approval(&request, &prepared).await;
        }
        let owner = request.owner.clone().unwrap_or_else(|| profile.owner.clone());
        let record = CertRecord {
            serial: prepared.serial.clone(),
            issuer_id: issuer.id.clone(),
            subject: prepared.subject.clone(),
            sans: prepared.sans.clone(),
            fingerprint_sha256: String::new(),
            not_before: prepared.not_before,
            not_after: prepared.not_after,
            profile: profile.name.clone(),
            requester: request.requester.to_string(),
            owner,
            tier: profile.tier.clone(),
            status: CertStatus::Valid,
            revocation_reason: None,
            revoked_at: None,
            invalidity_date: None,
            renews_serial: request.renews.clone(),
            renew_early_at: None,
            der: Vec::new(),
        };
        let record = self.reserve_sign_commit(issuer, prepared, record, &request).await?;
        if let Some(id) = request.approval_id {
            self.ledger.mark_approval_issued(id, &record.serial).await?;
        }
        let chain_pem = format!("{}{}", x509::pem(&record.der), self.chain_without_root(issuer));
        Ok(IssueOutcome::Issued(Box::new(IssuedCertificate { record, chain_pem })))
    }

    /// The issuer's chain up to, but excluding, the root (what a server should send).
    pub fn chain_without_root(&self, issuer: &Issuer) -> String {
        let root_pem = self.root.as_ref().map(|r| x509::pem(&r.der)).unwrap_or_default();
        if root_pem.is_empty() {
            return issuer.chain_pem.clone();
        }
        issuer.chain_pem.replace(&root_pem, "")
    }

    async fn reserve_sign_commit(
        &self,
        issuer: &Issuer,
        prepared: prepare::PreparedCertificate,
        mut record: CertRecord,
        request: &IssuanceRequest,
    ) -> Result<CertRecord, CaError> {
        let acme_order = request.acme_order.as_deref();
        let serial = prepared.serial.clone();
        let tbs_sha256 = x509::sha256_hex(&prepared.tbs_der);
        let event = |kind| {
            AuditEvent::new(kind, record.requester.clone())
                .serial(serial.clone())
                .profile(record.profile.clone())
                .issuer(issuer.id.clone())
        };
        let reservation = Reservation {
            serial: serial.clone(),
            issuer_id: issuer.id.clone(),
            profile: record.profile.clone(),
            requester: record.requester.clone(),
            tbs_sha256: tbs_sha256.clone(),
            acme_order: acme_order.map(str::to_owned),
            one_per_requester: request.one_per_requester,
        };
        self.ledger
            .reserve_issuance(
                &reservation,
                &event(AuditKind::Reserve).detail(serde_json::json!({ "tbs_sha256": tbs_sha256 })),
            )
            .await?;
        let signed = sign::sign_certificate(
            &self.signing,
            &issuer.key_label,
            issuer.signature,
            &issuer.spki_der,
            prepared.tbs,
            prepared.tbs_der,
        )
        .await;
        let der = match signed {
            Ok(der) => der,
            Err(e) => return Err(self.abort(&serial, e, event(AuditKind::Failed), acme_order).await),
        };
        record.fingerprint_sha256 = x509::sha256_hex(&der);
        record.der = der;
        let committed = event(AuditKind::Committed).detail(serde_json::json!({
            "fingerprint_sha256": record.fingerprint_sha256,
            "subject": record.subject,
            "sans": record.sans,
            "owner": record.owner,
            "tier": record.tier.as_str(),
            "not_after": record.not_after,
        }));
        // The first OCSP response is committed with the certificate, so relying parties can
        // check it from the moment it exists; without one the pre-signer follows the commit.
        let first_ocsp = self.first_response.good(&issuer.id, &serial).await;
        if let Err(e) = self.ledger.record_issued(&record, &committed, acme_order, first_ocsp.as_ref()).await {
            return Err(self.abort(&serial, e.into(), event(AuditKind::Failed), acme_order).await);
        }
        tracing::info!(serial = %serial, issuer = %issuer.id, "certificate issued");
        if first_ocsp.is_none() {
            self.changes
                .send(changes::LedgerChange::Committed { serial: serial.clone(), issuer_id: issuer.id.clone() });
        }
        metrics::counter!("privca_certificates_issued_total", "profile" => record.profile.clone()).increment(1);
        Ok(record)
    }

    async fn abort(&self, serial: &str, error: CaError, event: AuditEvent, acme_order: Option<&str>) -> CaError {
        tracing::error!(serial, error = %error, "issuance aborted after reservation");
        let event = event.detail(serde_json::json!({ "stage": "sign", "error": error.detail() }));
        if let Err(e) = self.ledger.abort_reservation(serial, error.detail(), &event, acme_order).await {
            tracing::error!(serial, error = %e, "could not mark reservation aborted");
        }
        error
    }

    /// Records a refusal (audit `failed`) and hands the error back.
    async fn refused(&self, request: &IssuanceRequest, error: CaError) -> CaError {
        metrics::counter!("privca_issuance_refused_total").increment(1);
        let event = AuditEvent::new(AuditKind::Failed, request.requester.to_string())
            .profile(request.profile.clone())
            .detail(serde_json::json!({ "stage": "prepare", "error": error.detail() }));
        if let Err(e) = self.ledger.record_event(&event).await {
            tracing::error!(error = %e, "could not record audit row for a refused request");
        }
        error
    }

    async fn queue_for_approval(
        &self,
        request: &IssuanceRequest,
        prepared: &prepare::PreparedCertificate,
    ) -> Result<IssueOutcome, CaError> {
        let csr_der = request.csr_der.clone().ok_or_else(|| {
            CaError::policy(format!("profile {} requires approval, which needs a CSR", request.profile))
        })?;
        let profile_approvers = self.config.profiles.get(&request.profile).map_or(1, |p| p.approvers);
        let approval = NewApproval {
            profile: request.profile.clone(),
            requester: request.requester.to_string(),
            owner: request.owner.clone(),
            subject: prepared.subject.clone(),
            sans: prepared.sans.clone(),
            csr_der,
            acme_order: request.acme_order.clone(),
            approvals_required: profile_approvers,
        };
        let event = AuditEvent::new(AuditKind::ApprovalRequested, request.requester.to_string())
            .profile(request.profile.clone())
            .detail(serde_json::json!({ "subject": prepared.subject, "sans": prepared.sans }));
        let id = self.ledger.create_approval(&approval, &event).await?;
        tracing::info!(approval = id, "request queued for approval");
        Ok(IssueOutcome::Pending(id))
    }

    /// Records `by`'s approval of request `id`; once the profile's number of distinct
    /// approvers is reached, issues its certificate.
    pub async fn approve(&self, id: i64, by: &Requester) -> Result<Approved, CaError> {
        let approval = self
            .ledger
            .approval(id)
            .await?
            .ok_or_else(|| CaError::new(ErrorKind::NotFound, format!("no approval with id {id}")))?;
        if approval.status != ApprovalStatus::Pending {
            return Err(CaError::new(
                ErrorKind::Conflict,
                format!("approval {id} is {:?}, not pending", approval.status),
            ));
        }
        // Over the admin API and dashboard a request is approved by someone else than its
        // requester (the CLI runs as the CA host's operator, who holds the token anyway).
        if by.protocol == "admin" && approval.requester == by.to_string() {
            return Err(CaError::new(ErrorKind::PolicyViolation, "a request cannot be approved by its requester"));
        }
        let event = AuditEvent::new(AuditKind::ApprovalApproved, by.to_string())
            .profile(approval.profile.clone())
            .detail(serde_json::json!({ "approval_id": id }));
        if let Decided::Waiting { approvals, required } =
            self.ledger.decide_approval(id, true, &by.to_string(), None, &event).await?
        {
            return Ok(Approved::Waiting { approvals, required });
        }
        let mut request = IssuanceRequest::from_csr(&approval.csr_der, &approval.profile, by.clone())?;
        request.requester = Requester { protocol: "approval", identity: approval.requester.clone() };
        request.owner = approval.owner.clone();
        request.approval_id = Some(id);
        match self.issue(request).await? {
            IssueOutcome::Issued(cert) => Ok(Approved::Issued(cert)),
            IssueOutcome::Pending(_) => Err(CaError::internal("approved request was queued again")),
        }
    }

    /// Denies request `id` with `reason`.
    pub async fn deny(&self, id: i64, by: &Requester, reason: &str) -> Result<(), CaError> {
        let event = AuditEvent::new(AuditKind::ApprovalDenied, by.to_string())
            .detail(serde_json::json!({ "approval_id": id, "reason": reason }));
        self.ledger.decide_approval(id, false, &by.to_string(), Some(reason), &event).await?;
        Ok(())
    }

    /// Revokes `serial` (hex) with `reason`. Idempotent: a second call reports
    /// [`RevokeOutcome::AlreadyRevoked`]. `removeFromCRL` lifts a `certificateHold` instead.
    #[tracing::instrument(skip_all, fields(serial = %serial))]
    pub async fn revoke(
        &self,
        serial: &str,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
        by: &Requester,
    ) -> Result<RevokeOutcome, CaError> {
        let serial = normalize_serial(serial)?;
        if reason == RevocationReason::RemoveFromCrl {
            let event = AuditEvent::new(AuditKind::Unrevoked, by.to_string()).serial(serial.clone());
            self.ledger.release_hold(&serial, &event).await?;
            self.changes.send(changes::LedgerChange::Revoked);
            return Ok(RevokeOutcome::HoldReleased);
        }
        let at = crate::ledger::now();
        let event = AuditEvent::new(AuditKind::Revoked, by.to_string())
            .serial(serial.clone())
            .detail(serde_json::json!({ "reason": reason.as_str(), "invalidity_date": invalidity_date }));
        let entry = crl::crl_entry(&serial, at, reason, invalidity_date)?;
        let outcome = self.ledger.revoke(&serial, reason.as_str(), at, invalidity_date, &entry, &event).await?;
        self.changes.send(changes::LedgerChange::Revoked);
        Ok(outcome)
    }

    /// Flags `serial` for early renewal (e.g. after a mis-issuance or a key-management event):
    /// ACME ARI suggests a window starting now. False if it was already flagged or is not valid.
    pub async fn flag_renew_early(&self, serial: &str, reason: &str, by: &Requester) -> Result<bool, CaError> {
        let serial = normalize_serial(serial)?;
        let event = AuditEvent::new(AuditKind::RenewEarlyFlagged, by.to_string())
            .serial(serial.clone())
            .detail(serde_json::json!({ "reason": reason }));
        Ok(self.ledger.flag_renew_early(&serial, crate::ledger::now(), &event).await?)
    }
}

/// Lower-case hex without separators or leading `0x`; refuses anything else.
pub fn normalize_serial(serial: &str) -> Result<String, CaError> {
    let s: String =
        serial.trim().trim_start_matches("0x").chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase();
    if s.is_empty() || s.len() > 40 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CaError::bad_request(format!("`{serial}` is not a hexadecimal serial number")));
    }
    Ok(if s.len() % 2 == 1 { format!("0{s}") } else { s })
}

#[cfg(test)]
mod tests {
    use super::more_than_a_third_left;

    #[test]
    fn a_certificate_is_reissued_once_a_third_of_its_life_is_left() {
        // Valid 0..300: reissued from 200 on.
        assert!(more_than_a_third_left(0, 300, 0));
        assert!(more_than_a_third_left(0, 300, 199));
        assert!(!more_than_a_third_left(0, 300, 200));
        assert!(!more_than_a_third_left(0, 300, 400), "expired");
    }
}
