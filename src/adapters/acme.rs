//! `privca_acme::AcmeBackend` over the ledger and the issuance cycle; `CaError` → `AcmeError`.
//!
//! Certificates ordered over ACME carry the requester `acme:account/<id>`, which is how a
//! certificate is tied back to its account (download, revocation, ARI `replaces`).

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
};

use base64ct::{Base64UrlUnpadded, Encoding};
use der::{Decode, Encode};
use privca_acme::{
    backend::{
        Account, ApprovalState, Authz, AuthzStatus, CertInfo, ChallengeStatus, EabKey, FinalizeOutcome, HmacKey,
        Identifier, Order, Redeemed,
    },
    jws, AcmeBackend, AcmeError, ErrorType,
};

use super::{
    batch::{Answer, Batcher},
    cache::Cache,
    redeemer::Redeemer,
};
use crate::{
    audit::{AuditEvent, AuditKind},
    ca::request::{IssuanceRequest, Requester},
    ca::{revoke::RevocationReason, x509, CertificateAuthority, IssueOutcome},
    config::acme::AcmeConfig,
    error::{CaError, ErrorKind},
    ledger::{ApprovalStatus, CertRecord, CertStatus, Ledger, LedgerError, RevokeOutcome, IDS_PER_STATEMENT},
    policy::{identifiers, SanType},
    sealing::{self, Purpose},
};
use zeroize::{Zeroize, Zeroizing};

/// The ACME backend of `privca serve`.
#[derive(Clone)]
pub struct AcmeAdapter {
    ca: CertificateAuthority,
    config: Arc<AcmeConfig>,
    /// Accounts by id: every JWS request after newAccount names its account by `kid` (§6.2),
    /// so each order would read the same account row once per request. This process drops a
    /// copy after each change it makes. Other instances sharing a PostgreSQL ledger may change
    /// an account too: a signature that does not verify against the copy's key is checked
    /// again against the ledger's (`account_from_ledger`, which replaces the copy: a key
    /// rollover answered elsewhere), and the nonce redemption of every request reads the
    /// account's key, status and contact in the same statement (`Ledger::redeem_acme_nonce`),
    /// so a copy that differs (a deactivation or contact change elsewhere) is dropped and read
    /// again before the request goes on. (On SQLite this process is the only writer of
    /// accounts.)
    accounts: Arc<Cache<Account>>,
    /// Nonce redemptions on a shared ledger, batched.
    redeemer: Arc<Redeemer>,
    /// On a shared (PostgreSQL) ledger: reads of orders, authorizations and certificates by
    /// id (each client poll, each download) and authorization updates, batched. On SQLite
    /// they go straight to the ledger: there a statement is a hand-off to sqlx's thread, not a
    /// round trip, and batching cost more than it saved (two alternating c=32 pairs).
    batches: Option<Arc<Batches>>,
    local: Option<Arc<Local>>,
}

/// Statements that concurrent requests share: polls of many orders cost one read.
struct Batches {
    orders: Batcher<String, Option<Order>>,
    authzs: Batcher<String, Option<Authz>>,
    /// Authorization updates (a challenge handed to validation, its outcome).
    authz_updates: Batcher<Authz, ()>,
    /// Certificates by serial (downloads).
    certificates: Batcher<String, Option<CertRecord>>,
}

impl Default for Batches {
    fn default() -> Self {
        Self {
            orders: Batcher::new(IDS_PER_STATEMENT),
            authzs: Batcher::new(IDS_PER_STATEMENT),
            authz_updates: Batcher::new(IDS_PER_STATEMENT),
            certificates: Batcher::new(IDS_PER_STATEMENT),
        }
    }
}

impl AcmeAdapter {
    /// One row by key through `read` (the ledger's many-key form): on a shared ledger in the
    /// `pick`ed batch, on SQLite straight away.
    async fn read_by_key<T, R, F>(
        &self,
        pick: impl FnOnce(&Batches) -> &Batcher<String, Option<T>>,
        key: &str,
        read: R,
    ) -> Result<Option<T>, AcmeError>
    where
        T: Send + 'static,
        R: FnOnce(Ledger, Vec<String>) -> F + Send + 'static,
        F: Future<Output = Result<Vec<Option<T>>, LedgerError>> + Send + 'static,
    {
        let ledger = self.ca.ledger().clone();
        let Some(batches) = &self.batches else {
            return Ok(read(ledger, vec![key.to_owned()]).await.map_err(db)?.pop().flatten());
        };
        let run = move |keys: Vec<String>| async move {
            read(ledger, keys).await.map_err(|e| tracing::error!(error = %e, "a batched ACME read failed")).ok()
        };
        match pick(batches).run(key.to_owned(), |_| false, run).await {
            Answer::Done(v) => Ok(v),
            // The batch's ledger call failed (logged by it): the database, not the request.
            Answer::Conflict | Answer::Failed => Err(AcmeError::unavailable()),
        }
    }

    async fn read_order(&self, id: &str) -> Result<Option<Order>, AcmeError> {
        self.read_by_key(|b| &b.orders, id, |l, ids| async move { l.acme_orders(&ids).await }).await
    }

    async fn read_authz(&self, id: &str) -> Result<Option<Authz>, AcmeError> {
        self.read_by_key(|b| &b.authzs, id, |l, ids| async move { l.acme_authzs(&ids).await }).await
    }

    async fn read_certificate(&self, serial: &str) -> Result<Option<CertRecord>, AcmeError> {
        self.read_by_key(|b| &b.certificates, serial, |l, serials| async move { l.certificates(&serials).await }).await
    }

    /// Stores `authz` (durable when this returns), sharing a statement with concurrent
    /// updates of other authorizations. An update of an authorization that already waits in
    /// the queue goes alone: one statement must not carry two rows for one authorization
    /// (which of two concurrent updates stays is left open, as without batching).
    async fn write_authz(&self, authz: &Authz) -> Result<(), AcmeError> {
        let Some(batches) = &self.batches else {
            return self.ca.ledger().update_acme_authz(authz).await.map_err(db);
        };
        let ledger = self.ca.ledger().clone();
        let run = move |authzs: Vec<Authz>| async move {
            let n = authzs.len();
            match ledger.update_acme_authzs(&authzs).await {
                Ok(()) => Some(vec![(); n]),
                Err(e) => {
                    tracing::error!(error = %e, authorizations = n, "storing ACME authorizations failed");
                    None
                }
            }
        };
        match batches.authz_updates.run(authz.clone(), |w| w.id == authz.id, run).await {
            Answer::Done(()) => Ok(()),
            Answer::Conflict => self.ca.ledger().update_acme_authz(authz).await.map_err(db),
            Answer::Failed => Err(AcmeError::unavailable()),
        }
    }

    /// An adapter over `ca`; `single_instance` keeps redeemed nonces and validation state in
    /// memory (SQLite deployments, where this process is the ledger's only ACME server).
    pub fn new(ca: CertificateAuthority, single_instance: bool) -> Self {
        let config = Arc::new(ca.config().acme.clone());
        let local = single_instance.then(Arc::default);
        let batches = (!single_instance).then(Arc::default);
        Self { ca, config, accounts: Arc::default(), redeemer: Arc::default(), batches, local }
    }
}

/// What a single-instance server keeps in memory instead of asking the ledger on every request.
#[derive(Default)]
struct Local {
    nonces: UsedNonces,
    /// Authorizations by id (each order poll reads its authorizations). Only this process
    /// changes them: it puts the new value once the change is durable, or drops the copy if
    /// the write failed. A challenge's `processing` state (§7.5.1) lives only here: it lasts as
    /// long as the validation task that will write the outcome, so after a restart (which ends
    /// the task) the challenge is `pending` again and the client can ask anew, instead of
    /// `processing` for ever; and a validation costs one durable write instead of two.
    authzs: Cache<Authz>,
}

/// Whether `authz` is the hand-over to a validation task: still `pending`, a challenge
/// `processing`.
fn validation_started(authz: &Authz) -> bool {
    authz.status == AuthzStatus::Pending && authz.challenges.iter().any(|c| c.status == ChallengeStatus::Processing)
}

/// Redeemed nonces of this process with their expiry, for single-instance (SQLite) ledgers:
/// redeeming a nonce is then a map insert rather than a durable write (an fsync) on every ACME
/// request. The nonce key is fresh per process, so nonces from before a restart are refused
/// (`badNonce`, which clients retry) and the map need not survive it.
#[derive(Default)]
struct UsedNonces {
    map: Mutex<HashMap<String, i64>>,
}

impl UsedNonces {
    /// Beyond this many entries, expired ones are dropped before inserting.
    const PRUNE_AT: usize = 4096;

    fn redeem(&self, nonce: &str, expires_at: i64) -> bool {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= Self::PRUNE_AT && map.len().is_power_of_two() {
            let now = crate::ledger::now();
            map.retain(|_, exp| *exp > now);
        }
        map.insert(nonce.to_owned(), expires_at).is_none()
    }
}

/// `CaError` → `AcmeError`, with `bad_input` for client-caused kinds (`badCSR` at finalize,
/// `malformed` elsewhere). Internal details go to the log only.
fn map_ca(e: CaError, bad_input: ErrorType) -> AcmeError {
    match e.kind() {
        ErrorKind::BadRequest | ErrorKind::PolicyViolation => AcmeError::new(bad_input, e.detail().to_owned()),
        ErrorKind::NotFound => AcmeError::not_found("object"),
        ErrorKind::Conflict => AcmeError::malformed(e.detail().to_owned()),
        ErrorKind::Busy => {
            tracing::debug!(error = %e, "ACME request refused: the HSM queue is full (counted in privca_hsm_queue_rejected_total)");
            AcmeError::busy()
        }
        ErrorKind::Unavailable => {
            tracing::error!(error = %e, "ACME request failed: a dependency is down");
            AcmeError::unavailable()
        }
        ErrorKind::Internal => {
            tracing::error!(error = %e, "ACME request failed in the core");
            AcmeError::internal()
        }
    }
}

fn db(e: LedgerError) -> AcmeError {
    map_ca(CaError::from(e), ErrorType::Malformed)
}

fn actor(account_id: &str) -> String {
    format!("acme:account/{account_id}")
}

/// The ACME account id in a certificate's requester (`acme:account/<id>`, possibly behind
/// `approval:`).
fn account_of(requester: &str) -> Option<String> {
    requester.split("acme:account/").nth(1).map(str::to_owned)
}

fn identifiers_of(record: &CertRecord) -> Vec<Identifier> {
    record
        .sans
        .iter()
        .filter_map(|s| {
            let (kind, value) = s.split_once(':')?;
            matches!(kind, "dns" | "ip").then(|| Identifier { kind: kind.into(), value: value.into() })
        })
        .collect()
}

impl AcmeAdapter {
    async fn cert_info(&self, record: CertRecord) -> Result<CertInfo, AcmeError> {
        let now = crate::ledger::now();
        let revoked = matches!(record.status, CertStatus::Revoked);
        let window = if revoked {
            (now - 3600, now)
        } else if let Some(flagged) = record.renew_early_at {
            // Flagged by an operator: renew from the moment of the flag, within a day.
            (flagged, flagged + 86_400)
        } else {
            // A tier no longer configured has the default target.
            let w = self
                .config
                .ari
                .get(&record.tier)
                .copied()
                .unwrap_or_else(|| crate::config::clm::TierPolicy::default_for(&record.tier).ari_window());
            w.over(record.not_before, record.not_after)
        };
        let key_thumbprint = x509_cert::Certificate::from_der(&record.der)
            .ok()
            .and_then(|c| c.tbs_certificate.subject_public_key_info.to_der().ok())
            .and_then(|spki| jws::jwk_from_spki(&spki))
            .map(|jwk| jws::thumbprint(&jwk));
        Ok(CertInfo {
            replaced: self.ca.ledger().acme_replaced(&record.serial).await.map_err(db)?,
            account_id: account_of(&record.requester),
            identifiers: identifiers_of(&record),
            serial: record.serial,
            revoked,
            window,
            key_thumbprint,
        })
    }

    fn rejected(identifier: &Identifier, detail: String) -> privca_acme::error::Subproblem {
        privca_acme::error::Subproblem {
            kind: format!("{}rejectedIdentifier", privca_acme::error::NAMESPACE),
            detail,
            identifier: identifier.clone(),
        }
    }
}

impl AcmeBackend for AcmeAdapter {
    async fn redeem_nonce(
        &self,
        nonce: &str,
        expires_at: i64,
        account: Option<&Account>,
    ) -> Result<Redeemed, AcmeError> {
        if let Some(local) = &self.local {
            return Ok(if local.nonces.redeem(nonce, expires_at) { Redeemed::Fresh } else { Redeemed::Used });
        }
        let redeemed = self.redeemer.redeem(self.ca.ledger(), nonce, expires_at, account).await?;
        if let (Redeemed::AccountChanged, Some(a)) = (redeemed, account) {
            self.accounts.remove(&a.id);
        }
        Ok(redeemed)
    }

    async fn account_by_key(&self, thumbprint: &str) -> Result<Option<Account>, AcmeError> {
        self.ca.ledger().acme_account_by_key(thumbprint).await.map_err(db)
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, AcmeError> {
        self.accounts.get_or_read(id, || async { self.ca.ledger().acme_account(id).await.map_err(db) }).await
    }

    async fn account_from_ledger(&self, id: &str) -> Result<Option<Account>, AcmeError> {
        let epoch = self.accounts.invalidate(id);
        let account = self.ca.ledger().acme_account(id).await.map_err(db)?;
        if let Some(a) = &account {
            self.accounts.fill(id, a, epoch);
        }
        Ok(account)
    }

    async fn eab_key(&self, kid: &str) -> Result<Option<EabKey>, AcmeError> {
        let Some((mut key, sealed)) = self.ca.ledger().eab_key(kid).await.map_err(db)? else {
            return Ok(None);
        };
        let Some(sealed) = sealed else {
            tracing::error!(kid, "EAB key is still stored in the clear (restart privca to seal it)");
            return Err(AcmeError::internal());
        };
        let hmac_key = sealing::open(self.ca.signing(), Purpose::EabKey(kid), &sealed).await.map_err(|e| {
            tracing::error!(kid, error = %e, "stored EAB key does not open");
            AcmeError::internal()
        })?;
        key.hmac_key = HmacKey::new(hmac_key);
        Ok(Some(key))
    }

    async fn create_account(&self, account: &Account, eab_kid: Option<&str>) -> Result<(), AcmeError> {
        let event = AuditEvent::new(AuditKind::AcmeAccountCreated, actor(&account.id)).detail(
            serde_json::json!({ "thumbprint": account.thumbprint, "eab_kid": eab_kid, "owner": account.owner }),
        );
        match self.ca.ledger().create_acme_account(account, eab_kid, &event).await {
            Err(LedgerError::Conflict(_)) => Err(AcmeError::unauthorized("this external account key is already bound")),
            other => other.map_err(db),
        }
    }

    async fn update_account(&self, account: &Account) -> Result<(), AcmeError> {
        let event = AuditEvent::new(AuditKind::AcmeAccountUpdated, actor(&account.id)).detail(serde_json::json!({
            "status": account.status.as_str(),
            "thumbprint": account.thumbprint,
            "contacts": account.contact.len(),
        }));
        let result = self.ca.ledger().update_acme_account(account, &event).await.map_err(db);
        self.accounts.remove(&account.id);
        result
    }

    async fn check_order(
        &self,
        account: &Account,
        ids: &[Identifier],
        requested: Option<&str>,
    ) -> Result<String, AcmeError> {
        let name = match (requested, &account.profile) {
            (Some(r), Some(bound)) if r != bound => {
                return Err(AcmeError::malformed(format!("this account may only use profile `{bound}`")))
            }
            (Some(r), _) => r.to_owned(),
            (None, Some(bound)) => bound.clone(),
            (None, None) => self.config.profiles.first().cloned().ok_or_else(AcmeError::internal)?,
        };
        if account.profile.is_none() && !self.config.profiles.contains(&name) {
            return Err(AcmeError::malformed(format!("profile `{name}` is not offered over ACME")));
        }
        let profile = self
            .ca
            .config()
            .profiles
            .get(&name)
            .ok_or_else(|| AcmeError::malformed(format!("unknown profile `{name}`")))?;
        let mut problems = Vec::new();
        for i in ids {
            let verdict = match i.kind.as_str() {
                "dns" if profile.san.types.contains(&SanType::Dns) => {
                    identifiers::check_dns_syntax(&i.value, profile.san.wildcards)
                        .and_then(|()| {
                            identifiers::check_dns_policy(
                                &i.value,
                                &profile.san.dns_allow,
                                &profile.san.dns_deny,
                                &profile.name,
                            )
                        })
                        .map_err(|e| e.detail().to_owned())
                }
                "ip" if profile.san.types.contains(&SanType::Ip) => Ok(()),
                kind => Err(format!("profile `{name}` does not issue {kind} identifiers")),
            };
            if let Err(detail) = verdict {
                problems.push(Self::rejected(i, detail));
            }
        }
        if ids.len() > profile.san.max_names {
            return Err(AcmeError::new(
                ErrorType::RejectedIdentifier,
                format!("profile `{name}` allows at most {} names", profile.san.max_names),
            ));
        }
        if !problems.is_empty() {
            let mut e = AcmeError::new(ErrorType::RejectedIdentifier, "the policy refuses some identifiers");
            e.subproblems = problems;
            return Err(e);
        }
        Ok(name)
    }

    async fn valid_authz(
        &self,
        account_id: &str,
        identifier: &Identifier,
        wildcard: bool,
    ) -> Result<Option<Authz>, AcmeError> {
        self.ca.ledger().acme_valid_authz(account_id, identifier, wildcard).await.map_err(db)
    }

    async fn create_order(&self, order: &Order, new_authzs: &[Authz]) -> Result<(), AcmeError> {
        self.ca.ledger().create_acme_order(order, new_authzs).await.map_err(db)?;
        if let Some(local) = &self.local {
            for a in new_authzs {
                local.authzs.put(&a.id, a.clone());
            }
        }
        Ok(())
    }

    async fn order(&self, id: &str) -> Result<Option<Order>, AcmeError> {
        self.read_order(id).await
    }

    async fn update_order(&self, order: &Order) -> Result<(), AcmeError> {
        self.ca.ledger().update_acme_order(order).await.map_err(db)
    }

    async fn account_orders(&self, account_id: &str) -> Result<Vec<String>, AcmeError> {
        self.ca.ledger().acme_account_orders(account_id).await.map_err(db)
    }

    async fn authz(&self, id: &str) -> Result<Option<Authz>, AcmeError> {
        let Some(local) = &self.local else {
            return self.read_authz(id).await;
        };
        local.authzs.get_or_read(id, || self.read_authz(id)).await
    }

    async fn update_authz(&self, authz: &Authz) -> Result<(), AcmeError> {
        let Some(local) = &self.local else {
            return self.write_authz(authz).await;
        };
        if validation_started(authz) {
            local.authzs.put(&authz.id, authz.clone());
            return Ok(());
        }
        // The outcome (or a deactivation) is durable before the copy changes, so a reader
        // sees one or the other; after a failed write the ledger's `pending` shows.
        match self.write_authz(authz).await {
            Ok(()) => {
                local.authzs.put(&authz.id, authz.clone());
                Ok(())
            }
            Err(e) => {
                local.authzs.remove(&authz.id);
                Err(e)
            }
        }
    }

    async fn finalize(&self, account: &Account, order: &Order, csr_der: &[u8]) -> Result<FinalizeOutcome, AcmeError> {
        let requester = Requester { protocol: "acme", identity: format!("account/{}", account.id) };
        let mut request =
            IssuanceRequest::from_csr(csr_der, &order.profile, requester).map_err(|e| map_ca(e, ErrorType::BadCsr))?;
        request.owner = account.owner.clone();
        request.renews = order.replaces_serial.clone();
        request.acme_order = Some(order.id.clone());
        match self.ca.issue(request).await {
            Ok(IssueOutcome::Issued(cert)) => Ok(FinalizeOutcome::Issued(cert.record.serial)),
            Ok(IssueOutcome::Pending(id)) => Ok(FinalizeOutcome::Pending(id)),
            // The only conflict of a finalize: the order was claimed by another one.
            Err(e) if e.kind() == ErrorKind::Conflict => Ok(FinalizeOutcome::Busy),
            Err(e) => Err(map_ca(e, ErrorType::BadCsr)),
        }
    }

    async fn approval_state(&self, id: i64) -> Result<ApprovalState, AcmeError> {
        let approval = self.ca.ledger().approval(id).await.map_err(db)?.ok_or_else(AcmeError::internal)?;
        Ok(match (approval.status, approval.serial) {
            (ApprovalStatus::Issued, Some(serial)) => ApprovalState::Issued(serial),
            (ApprovalStatus::Denied, _) => ApprovalState::Denied(approval.reason.unwrap_or_default()),
            _ => ApprovalState::Pending,
        })
    }

    async fn certificate_chain(&self, serial: &str) -> Result<Option<(String, Option<String>)>, AcmeError> {
        let Some(record) = self.read_certificate(serial).await? else {
            return Ok(None);
        };
        let issuer = self.ca.issuer(&record.issuer_id).ok_or_else(AcmeError::internal)?;
        let pem = format!("{}{}", x509::pem(&record.der), self.ca.chain_without_root(issuer));
        Ok(Some((pem, account_of(&record.requester))))
    }

    async fn certificate_by_der(&self, der: &[u8]) -> Result<Option<CertInfo>, AcmeError> {
        match self.ca.ledger().certificate_by_fingerprint(&x509::sha256_hex(der)).await.map_err(db)? {
            Some(record) => Ok(Some(self.cert_info(record).await?)),
            None => Ok(None),
        }
    }

    async fn certificate_by_cert_id(
        &self,
        key_identifier: &[u8],
        serial: &[u8],
    ) -> Result<Option<CertInfo>, AcmeError> {
        let Some(issuer) = self.ca.issuers().find(|i| i.ski == key_identifier) else {
            return Ok(None);
        };
        // privca's serials have a non-zero, positive first octet (`prepare::random_serial`), so
        // their DER content octets are exactly the ledger's hex; strip a sign octet anyway.
        let octets = match serial {
            [0, rest @ ..] if !rest.is_empty() => rest,
            s => s,
        };
        let hex = hex::encode(octets);
        match self.ca.ledger().certificate(&hex).await.map_err(db)? {
            Some(record) if record.issuer_id == issuer.id => Ok(Some(self.cert_info(record).await?)),
            _ => Ok(None),
        }
    }

    async fn revoke(&self, serial: &str, reason: u8, by: &str) -> Result<(), AcmeError> {
        let reason = RevocationReason::from_code(reason)
            .ok_or_else(|| AcmeError::new(ErrorType::BadRevocationReason, "unknown reason code"))?;
        let by = Requester { protocol: "acme", identity: by.to_owned() };
        match self.ca.revoke(serial, reason, None, &by).await.map_err(|e| map_ca(e, ErrorType::Malformed))? {
            RevokeOutcome::Revoked | RevokeOutcome::HoldReleased => Ok(()),
            RevokeOutcome::AlreadyRevoked(_) => {
                Err(AcmeError::new(ErrorType::AlreadyRevoked, "the certificate is already revoked"))
            }
        }
    }
}

/// Creates an EAB key for `owner` (optionally bound to `profile`): returns (kid, base64url
/// HMAC key of 32 random octets). The ledger gets the HMAC key sealed by the token only.
pub async fn create_eab_key(
    ca: &CertificateAuthority,
    owner: &str,
    profile: Option<&str>,
    by: &Requester,
) -> Result<(String, String), CaError> {
    if let Some(p) = profile {
        if !ca.config().profiles.contains_key(p) {
            return Err(CaError::bad_request(format!("unknown profile `{p}`")));
        }
    }
    let rng = ring::rand::SystemRandom::new();
    let mut secret = Zeroizing::new([0u8; 32]);
    let mut id = [0u8; 12];
    ring::rand::SecureRandom::fill(&rng, &mut *secret).map_err(|_| CaError::internal("no randomness"))?;
    ring::rand::SecureRandom::fill(&rng, &mut id).map_err(|_| CaError::internal("no randomness"))?;
    let kid = format!("kid-{}", Base64UrlUnpadded::encode_string(&id));
    let encoded = Base64UrlUnpadded::encode_string(&*secret);
    let sealed = sealing::seal(ca.signing(), Purpose::EabKey(&kid), &*secret).await?;
    let key = EabKey {
        kid: kid.clone(),
        hmac_key: HmacKey::default(),
        owner: owner.to_owned(),
        profile: profile.map(str::to_owned),
        bound_account: None,
    };
    let event = AuditEvent::new(AuditKind::AcmeEabKeyCreated, by.to_string())
        .detail(serde_json::json!({ "kid": kid, "owner": owner, "profile": profile }));
    ca.ledger().create_eab_key(&key, &sealed, &event).await?;
    Ok((kid, encoded))
}

/// The ACME router state for `privca serve`, or `None` when `[acme] enabled = false`.
///
/// On PostgreSQL (possibly several instances) the nonce key is created in the ledger on first
/// start (sealed by the token, [`sealing`]) and shared by every instance, and redeemed nonces
/// are ledger rows. SQLite serves one
/// instance: the key is fresh per process and redeemed nonces are kept in memory.
pub async fn state(ca: &CertificateAuthority) -> Result<Option<privca_acme::AcmeState<AcmeAdapter>>, CaError> {
    let cfg = &ca.config().acme;
    if !cfg.enabled {
        return Ok(None);
    }
    let mut fresh = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut fresh)
        .map_err(|_| CaError::internal("no randomness"))?;
    let single_instance = ca.ledger().dialect() == crate::ledger::Dialect::Sqlite;
    let key = if single_instance {
        Zeroizing::new(fresh.to_vec())
    } else {
        let sealed = sealing::seal(ca.signing(), Purpose::AcmeNonceKey, &fresh).await?;
        let stored = ca.ledger().acme_nonce_key(&sealed).await?;
        sealing::open(ca.signing(), Purpose::AcmeNonceKey, &stored).await?
    };
    fresh.zeroize();
    let validation = privca_acme::ValidationSettings {
        resolver: cfg.resolver,
        http01_port: cfg.http01_port,
        tlsalpn01_port: cfg.tlsalpn01_port,
        timeout: cfg.timeout,
        attempts: cfg.attempts,
        concurrency: cfg.concurrency,
        retry_delay: cfg.retry_delay,
        deny_ranges: cfg.deny_ranges.clone(),
    };
    let validator = privca_acme::Validator::new(validation).map_err(CaError::internal)?;
    let profiles = cfg
        .profiles
        .iter()
        .map(|p| {
            let description = ca.config().profiles.get(p).map(|p| p.description.clone()).unwrap_or_default();
            (p.clone(), description)
        })
        .collect();
    let settings = privca_acme::AcmeSettings {
        origin: ca.config().urls.https_base.trim_end_matches('/').to_owned(),
        prefix: crate::paths::ACME_PREFIX.to_owned(),
        terms_of_service: cfg.terms_of_service.clone(),
        website: cfg.website.clone(),
        caa_identities: cfg.caa_identities.clone(),
        eab_required: cfg.eab_required,
        profiles,
        order_lifetime: cfg.order_lifetime,
        authz_lifetime: cfg.authz_lifetime,
        authz_reuse: cfg.authz_reuse,
        nonce_lifetime: cfg.nonce_lifetime,
        orders_per_hour: cfg.orders_per_hour,
        retry_after: cfg.retry_after.as_secs().max(1),
        ari_retry_after: 6 * 3600,
        skip_validation: cfg.skip_validation,
    };
    Ok(Some(privca_acme::AcmeState::new(AcmeAdapter::new(ca.clone(), single_instance), settings, &key, validator)))
}

#[cfg(test)]
mod tests {
    use super::{map_ca, CaError, ErrorType, UsedNonces};

    #[test]
    fn a_profile_refusal_of_a_finalize_is_a_bad_csr_problem_with_the_rule() {
        let detail = "profile tls-server requires at least one subjectAltName (dns or ip) (san.required): add one";
        let e = map_ca(CaError::policy(detail), ErrorType::BadCsr);
        assert_eq!((e.kind, e.detail.as_str()), (ErrorType::BadCsr, detail));
    }

    #[test]
    fn a_nonce_is_redeemed_once_and_expired_ones_are_pruned() {
        let used = UsedNonces::default();
        assert!(used.redeem("a", i64::MAX));
        assert!(!used.redeem("a", i64::MAX));
        for i in 1..UsedNonces::PRUNE_AT {
            assert!(used.redeem(&format!("old{i}"), 0));
        }
        // The map is at PRUNE_AT: the next insert drops every expired entry first.
        assert!(used.redeem("b", i64::MAX));
        assert_eq!(used.map.lock().map(|m| m.len()).unwrap_or_default(), 2);
        assert!(!used.redeem("a", i64::MAX));
    }
}
