//! OCSP answers: delegated responders, status lookups, signing and the pre-signed cache.
//!
//! Each CA (root and issuers) has a delegated responder: a P-256 key in the token
//! (`privca-ocsp-<id>`) and a short-lived certificate from that CA with id-kp-OCSPSigning and
//! id-pkix-ocsp-nocheck, issued through the normal cycle and rotated when a third of its
//! lifetime is left. Responses for single CertIDs without a nonce (what nearly every client
//! sends) come from memory or from the ledger's pre-signed store; the pre-signer job signs a
//! response for every live certificate, refreshes it before nextUpdate and re-signs at once
//! after a revocation. Requests with a nonce (when `ocsp.sign_nonce`) or several CertIDs are
//! signed on demand. Unknown serials are answered `unknown` and cached in memory, so a flood of
//! them cannot keep the HSM busy. A stored response that misses its certificate's latest
//! revocation (the pre-signer has not caught up, or its instance is down) is never served: the
//! answer is signed on demand instead; the memory cache drops a revoked certificate's answers
//! within one `ocsp.check_interval` of the revocation, wherever it was made
//! ([`super::ocsp_cache`]).
//!
//! Nonces are unauthenticated work, so they are the first to shed: at most
//! `ocsp.nonce_signatures_per_second` responses echo a nonce (a token bucket), queued as
//! [`JobClass::Nonce`], the lowest class. A request over that rate, or refused by a full Nonce
//! queue, gets the response it would get without a nonce (the pre-signed one, normally): RFC
//! 9654 lets a responder leave the nonce out, and the client decides whether to accept that. On-demand signatures without a nonce are [`JobClass::Protocol`]; pre-signing and the
//! first response committed with a certificate are [`JobClass::Issuance`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, RwLock, Weak},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use der::{asn1::OctetString, Decode, Encode};
use privca_ocsp::{
    response::{response_data, signed_response, SingleAnswer, Status},
    CertRequest, HashAlgorithm, OcspReply, ParsedRequest,
};
use x509_cert::{serial_number::SerialNumber, Certificate};
use x509_ocsp::CertId;

use super::{bootstrap::ocsp_key_label, ocsp_cache::AnswerCache, CertificateAuthority, RevocationReason};
use crate::{
    error::{CaError, ErrorKind},
    ledger::{self, OcspRecord, OcspWork},
    policy::Profile,
    signer::{verify_spki, JobClass, SigningAlgorithm},
};

/// A stored or cached response closer than this to nextUpdate is not served.
const MIN_FRESH: i64 = 60;
/// Revoked serials read per CA to catch the memory cache up; more, and it starts over.
const FORGET_BATCH: i64 = 10_000;

/// A CA's OCSP identity: its CertID hashes per algorithm.
struct IssuerIdent {
    id: String,
    name_hash: HashMap<HashAlgorithm, Vec<u8>>,
    key_hash: HashMap<HashAlgorithm, Vec<u8>>,
}

/// A delegated responder in service.
struct Responder {
    key_label: String,
    cert_der: Vec<u8>,
    spki_der: Vec<u8>,
    key_hash: Vec<u8>,
    not_before: i64,
    not_after: i64,
}

/// The OCSP service of one server process (cheap to clone).
#[derive(Clone)]
pub struct OcspService {
    inner: Arc<Inner>,
}

struct Inner {
    ca: CertificateAuthority,
    idents: Vec<IssuerIdent>,
    responders: RwLock<HashMap<String, Arc<Responder>>>,
    cache: AnswerCache,
    nonce_budget: TokenBucket,
}

/// A token bucket: `rate` tokens a second, at most one second's worth saved up.
struct TokenBucket {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate);
        Self { rate, state: Mutex::new((rate, Instant::now())) }
    }

    /// Takes a token if one is left.
    fn take(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, last) = &mut *state;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn digest(alg: HashAlgorithm, data: &[u8]) -> Vec<u8> {
    use ring::digest as d;
    let algorithm = match alg {
        HashAlgorithm::Sha1 => &d::SHA1_FOR_LEGACY_USE_ONLY,
        HashAlgorithm::Sha256 => &d::SHA256,
        HashAlgorithm::Sha384 => &d::SHA384,
        HashAlgorithm::Sha512 => &d::SHA512,
    };
    d::digest(algorithm, data).as_ref().to_vec()
}

fn hash_alg(name: &str) -> Option<HashAlgorithm> {
    HashAlgorithm::ALL.into_iter().find(|h| h.as_str() == name)
}

fn at(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
}

impl OcspService {
    /// Builds the service and makes sure every CA has a current delegated responder.
    pub async fn start(ca: CertificateAuthority) -> Result<Self, CaError> {
        let mut idents = Vec::new();
        for issuer in ca.root().into_iter().chain(ca.issuers()) {
            let name = issuer
                .cert
                .tbs_certificate
                .subject
                .to_der()
                .map_err(|e| CaError::internal("issuer name").with_source(e))?;
            let key = issuer.cert.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes();
            idents.push(IssuerIdent {
                id: issuer.id.clone(),
                name_hash: HashAlgorithm::ALL.iter().map(|h| (*h, digest(*h, &name))).collect(),
                key_hash: HashAlgorithm::ALL.iter().map(|h| (*h, digest(*h, key))).collect(),
            });
        }
        let nonce_budget = TokenBucket::new(ca.config().ocsp.nonce_signatures_per_second);
        let cache = AnswerCache::new(ca.ledger().revocation_counter().await?);
        let service = OcspService {
            inner: Arc::new(Inner { ca, idents, responders: RwLock::new(HashMap::new()), cache, nonce_budget }),
        };
        service.ensure_responders().await?;
        if let Ok(mut slot) = service.inner.ca.first_response.0.write() {
            *slot = Arc::downgrade(&service.inner);
        }
        Ok(service)
    }

    fn ca(&self) -> &CertificateAuthority {
        &self.inner.ca
    }

    /// `[ocsp]` of the configuration.
    pub fn config(&self) -> &crate::config::OcspConfig {
        &self.ca().config().ocsp
    }

    fn identify(&self, r: &CertRequest) -> Option<&str> {
        self.inner
            .idents
            .iter()
            .find(|i| {
                i.name_hash.get(&r.hash) == Some(&r.issuer_name_hash)
                    && i.key_hash.get(&r.hash) == Some(&r.issuer_key_hash)
            })
            .map(|i| i.id.as_str())
    }

    fn responder(&self, id: &str) -> Result<Arc<Responder>, CaError> {
        self.inner
            .responders
            .read()
            .ok()
            .and_then(|r| r.get(id).cloned())
            .ok_or_else(|| CaError::new(ErrorKind::Unavailable, format!("no OCSP responder for {id}")))
    }

    /// Loads or issues each CA's responder certificate; rotates those with a third of their
    /// lifetime left.
    pub async fn ensure_responders(&self) -> Result<(), CaError> {
        let now = ledger::now();
        let ids: Vec<String> = self.inner.idents.iter().map(|i| i.id.clone()).collect();
        for id in ids {
            let current = self.inner.responders.read().ok().and_then(|r| r.get(&id).cloned());
            if let Some(r) = current {
                if super::more_than_a_third_left(r.not_before, r.not_after, now) {
                    continue;
                }
            }
            let responder = self.load_or_issue_responder(&id).await?;
            if let Ok(mut map) = self.inner.responders.write() {
                map.insert(id, Arc::new(responder));
            }
        }
        Ok(())
    }

    async fn load_or_issue_responder(&self, id: &str) -> Result<Responder, CaError> {
        let key_label = ocsp_key_label(id);
        let spki_der = self.ca().signing().key_info(&key_label)?.spki_der;
        let profile = Profile::ocsp_responder(id, self.ca().config().ocsp.responder_validity);
        let rec = super::own_cert::current_or_issue(self.ca(), &profile, &spki_der).await?;
        responder_from(&key_label, &rec.der)
    }

    /// Answers a parsed request (see the module documentation for which path it takes).
    pub async fn respond(&self, request: ParsedRequest) -> Result<OcspReply, CaError> {
        let mut issuers = Vec::with_capacity(request.requests.len());
        for r in &request.requests {
            let id = self.identify(r).ok_or_else(|| {
                CaError::new(ErrorKind::NotFound, "CertID names an issuer this responder does not serve")
            })?;
            issuers.push(id.to_owned());
        }
        if let Some(nonce) = request.nonce.as_deref().filter(|_| self.config().sign_nonce) {
            if !self.inner.nonce_budget.take() {
                nonce_fallback("rate");
            } else {
                match self.fresh(&request, &issuers, Some(nonce), JobClass::Nonce).await {
                    Err(e) if e.kind() == ErrorKind::Busy => nonce_fallback("busy"),
                    other => return other,
                }
            }
        }
        if request.requests.len() == 1 {
            return self.single(&request.requests[0], &issuers[0]).await;
        }
        self.fresh(&request, &issuers, None, JobClass::Protocol).await
    }

    /// A response signed now for every CertID of `request` (one issuer), echoing `nonce`.
    async fn fresh(
        &self,
        request: &ParsedRequest,
        issuers: &[String],
        nonce: Option<&[u8]>,
        class: JobClass,
    ) -> Result<OcspReply, CaError> {
        let Some(issuer) = issuers.first() else {
            return Err(CaError::bad_request("no CertID in the request"));
        };
        if issuers.iter().any(|i| i != issuer) {
            return Err(CaError::bad_request("CertIDs of several issuers in one request"));
        }
        let mut answers = Vec::with_capacity(request.requests.len());
        for r in &request.requests {
            let (status, _) = self.status(issuer, &hex::encode(&r.serial)).await?;
            answers.push((r.cert_id.clone(), status));
        }
        let reply = self.sign(issuer, answers, nonce, class).await?;
        served("fresh");
        Ok(OcspReply { cacheable: false, ..reply })
    }

    async fn single(&self, r: &CertRequest, issuer: &str) -> Result<OcspReply, CaError> {
        let serial = hex::encode(&r.serial);
        let now = ledger::now();
        let fresh = |next: SystemTime| next > at(now + MIN_FRESH);
        let read_at = self.inner.cache.caught_up();
        if let Some(reply) = self.inner.cache.get(&serial, r.hash).filter(|c| fresh(c.next_update)) {
            served("memory");
            return Ok(reply);
        }
        if let Some(rec) = self.ca().ledger().current_ocsp_response(&serial, r.hash.as_str()).await? {
            if rec.issuer_id == issuer && rec.next_update > now + MIN_FRESH {
                let reply = reply_from(&rec);
                self.inner.cache.insert(&serial, r.hash, &reply, read_at);
                served("ledger");
                return Ok(reply);
            }
        }
        let (status, seq) = self.status(issuer, &serial).await?;
        let reply = self.sign(issuer, vec![(r.cert_id.clone(), status)], None, JobClass::Protocol).await?;
        if status != Status::Unknown {
            self.ca().ledger().store_ocsp_response(&record(issuer, &serial, r.hash, seq, &reply)).await?;
        }
        self.inner.cache.insert(&serial, r.hash, &reply, read_at);
        served("signed");
        Ok(reply)
    }

    /// Signs (or re-signs) one pre-signed response.
    pub async fn presign(&self, work: &OcspWork) -> Result<(), CaError> {
        let hash = hash_alg(&work.hash_alg).ok_or_else(|| CaError::internal(format!("hash {}", work.hash_alg)))?;
        let cert_id = self.cert_id(&work.issuer_id, &work.serial, hash)?;
        let read_at = self.inner.cache.caught_up();
        let (status, seq) = self.status(&work.issuer_id, &work.serial).await?;
        let reply = self.sign(&work.issuer_id, vec![(cert_id, status)], None, JobClass::Issuance).await?;
        let record = record(&work.issuer_id, &work.serial, hash, seq, &reply);
        self.ca().ledger().store_ocsp_response(&record).await?;
        self.inner.cache.insert(&work.serial, hash, &reply, read_at);
        metrics::counter!("privca_ocsp_presigned_total").increment(1);
        Ok(())
    }

    /// A `good` response for `serial`, just signed under `issuer`, for the ledger to commit
    /// with the certificate (SHA-1 CertID, as the pre-signer keeps). Not cached here: the
    /// certificate does not exist until that commit.
    async fn first_response(&self, issuer: &str, serial: &str) -> Result<OcspRecord, CaError> {
        let hash = HashAlgorithm::Sha1;
        let cert_id = self.cert_id(issuer, serial, hash)?;
        let reply = self.sign(issuer, vec![(cert_id, Status::Good)], None, JobClass::Issuance).await?;
        Ok(record(issuer, serial, hash, 0, &reply))
    }

    fn cert_id(&self, issuer: &str, serial: &str, hash: HashAlgorithm) -> Result<CertId, CaError> {
        let ident = self
            .inner
            .idents
            .iter()
            .find(|i| i.id == issuer)
            .ok_or_else(|| CaError::internal(format!("no CA {issuer}")))?;
        let serial_bytes = hex::decode(serial).map_err(|_| CaError::internal("serial"))?;
        Ok(CertId {
            hash_algorithm: spki::AlgorithmIdentifierOwned {
                oid: hash.oid(),
                parameters: Some(der::asn1::Any::from(der::asn1::AnyRef::NULL)),
            },
            issuer_name_hash: OctetString::new(ident.name_hash.get(&hash).cloned().unwrap_or_default())
                .map_err(|e| CaError::internal("CertID").with_source(e))?,
            issuer_key_hash: OctetString::new(ident.key_hash.get(&hash).cloned().unwrap_or_default())
                .map_err(|e| CaError::internal("CertID").with_source(e))?,
            serial_number: SerialNumber::new(&serial_bytes).map_err(|e| CaError::internal("CertID").with_source(e))?,
        })
    }

    async fn status(&self, issuer: &str, serial: &str) -> Result<(Status, i64), CaError> {
        let row = self.ca().ledger().certificate_status(serial).await?;
        Ok(match row {
            Some(r) if r.issuer_id == issuer && r.revoked => {
                let reason =
                    r.reason.as_deref().and_then(|n| n.parse::<RevocationReason>().ok()).map(RevocationReason::code);
                (Status::Revoked { time: at(r.revoked_at.unwrap_or(0)), reason }, r.revocation_seq)
            }
            Some(r) if r.issuer_id == issuer => (Status::Good, r.revocation_seq),
            _ => (Status::Unknown, 0),
        })
    }

    async fn sign(
        &self,
        issuer: &str,
        answers: Vec<(CertId, Status)>,
        nonce: Option<&[u8]>,
        class: JobClass,
    ) -> Result<OcspReply, CaError> {
        let responder = self.responder(issuer)?;
        let now = SystemTime::now();
        let next = now + self.ca().config().ocsp.validity;
        let answers: Vec<SingleAnswer> = answers
            .into_iter()
            .map(|(cert_id, status)| SingleAnswer { cert_id, status, this_update: now, next_update: next })
            .collect();
        let internal = |e: privca_ocsp::OcspError| CaError::internal(format!("OCSP encoding: {e}"));
        let data = response_data(&responder.key_hash, now, answers, nonce).map_err(internal)?;
        let algorithm = SigningAlgorithm::EcdsaSha256;
        let signature = self.ca().signing().sign(class, &responder.key_label, algorithm, data.clone()).await?;
        verify_spki(&responder.spki_der, algorithm, &data, &signature)
            .map_err(|e| CaError::internal("HSM OCSP signature does not verify").with_source(e))?;
        let der = signed_response(&data, &algorithm.algorithm_identifier(), &signature, &responder.cert_der)
            .map_err(internal)?;
        let etag = hex::encode(&ring::digest::digest(&ring::digest::SHA256, &der).as_ref()[..12]);
        Ok(OcspReply { der: Arc::new(der), this_update: now, next_update: next, cacheable: true, etag })
    }

    /// Drops from the memory cache the answers of every certificate revoked since the last
    /// call, wherever the revocation was made (this process, the CLI, another instance): the
    /// pre-signer's loop calls it each tick on every instance ([`super::ocsp_cache`]).
    /// Returns the ledger's revocation counter it read first.
    pub async fn forget_revoked(&self) -> Result<i64, CaError> {
        let ledger = self.ca().ledger();
        let counter = ledger.revocation_counter().await?;
        let after = self.inner.cache.caught_up();
        if counter <= after {
            return Ok(counter);
        }
        let mut serials = Vec::new();
        let mut complete = true;
        for ident in &self.inner.idents {
            let revoked = ledger.revoked_serials_after(&ident.id, after, FORGET_BATCH).await?;
            complete &= (revoked.len() as i64) < FORGET_BATCH;
            serials.extend(revoked);
        }
        self.inner.cache.forget(counter, complete.then_some(serials.as_slice()));
        Ok(counter)
    }
}

/// The ledger row of a signed response.
fn record(issuer: &str, serial: &str, hash: HashAlgorithm, seq: i64, reply: &OcspReply) -> OcspRecord {
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    OcspRecord {
        serial: serial.to_owned(),
        hash_alg: hash.as_str().to_owned(),
        issuer_id: issuer.to_owned(),
        revocation_seq: seq,
        this_update: secs(reply.this_update),
        next_update: secs(reply.next_update),
        der: reply.der.as_ref().clone(),
    }
}

/// The OCSP service as the CA holds it, to sign each certificate's first response before the
/// commit: weakly, since the service holds the CA. Empty until the service starts (and when
/// OCSP is off); then the pre-signer signs first responses after the commit.
#[derive(Clone, Default)]
pub(crate) struct FirstResponder(Arc<RwLock<Weak<Inner>>>);

impl FirstResponder {
    /// The `good` response to commit with `serial`, or `None` (logged) to leave it to the
    /// pre-signer.
    pub(crate) async fn good(&self, issuer: &str, serial: &str) -> Option<OcspRecord> {
        let inner = self.0.read().ok()?.upgrade()?;
        match (OcspService { inner }).first_response(issuer, serial).await {
            Ok(record) => {
                metrics::counter!("privca_ocsp_presigned_total").increment(1);
                Some(record)
            }
            Err(e) => {
                tracing::warn!(serial, error = %e, "first OCSP response left to the pre-signer");
                None
            }
        }
    }
}

/// A request's nonce not echoed: over `ocsp.nonce_signatures_per_second` ("rate") or the
/// Nonce queue full ("busy"); the response comes from the nonce-less path instead.
fn nonce_fallback(reason: &'static str) {
    metrics::counter!("privca_ocsp_nonce_fallback_total", "reason" => reason).increment(1);
}

fn served(source: &'static str) {
    metrics::counter!("privca_ocsp_responses_total", "source" => source).increment(1);
}

fn reply_from(rec: &OcspRecord) -> OcspReply {
    let etag = hex::encode(&ring::digest::digest(&ring::digest::SHA256, &rec.der).as_ref()[..12]);
    OcspReply {
        der: Arc::new(rec.der.clone()),
        this_update: at(rec.this_update),
        next_update: at(rec.next_update),
        cacheable: true,
        etag,
    }
}

fn responder_from(key_label: &str, cert_der: &[u8]) -> Result<Responder, CaError> {
    let cert =
        Certificate::from_der(cert_der).map_err(|e| CaError::internal("responder certificate").with_source(e))?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let validity = &cert.tbs_certificate.validity;
    Ok(Responder {
        key_label: key_label.to_owned(),
        cert_der: cert_der.to_vec(),
        spki_der: spki.to_der().map_err(|e| CaError::internal("responder SPKI").with_source(e))?,
        key_hash: digest(HashAlgorithm::Sha1, spki.subject_public_key.raw_bytes()),
        not_before: super::x509::unix(&validity.not_before),
        not_after: super::x509::unix(&validity.not_after),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nonce_budget_allows_its_rate_and_refills_with_time() {
        let bucket = TokenBucket::new(5);
        assert_eq!((0..20).filter(|_| bucket.take()).count(), 5, "one second's worth, then none");
        // A fifth of a second later: one more token.
        bucket.state.lock().unwrap().1 -= Duration::from_millis(200);
        assert!(bucket.take());
        assert!(!bucket.take());
        // Long idle saves up one second's worth, no more.
        bucket.state.lock().unwrap().1 -= Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| bucket.take()).count(), 5);
    }
}
