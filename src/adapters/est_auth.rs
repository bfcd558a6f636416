//! EST HTTP Basic authentication against the ledger's argon2id password hashes, hardened for an
//! unauthenticated listener:
//!
//! * an unknown user costs the same argon2 work as a known one (its password is checked against
//!   a hash of a random password drawn at start-up), so timing does not tell users apart;
//! * a successful check is remembered for `est.password_cache` (keyed by an HMAC of the
//!   password under a per-process key), and a wrong password does not evict it: an attacker
//!   cannot make the real device pay argon2 again;
//! * failures are budgeted per client address and per user (`est.address_failures_per_minute`,
//!   `est.user_failures_per_minute`): an address over its budget gets 429 before anything is
//!   checked; a user over its budget gets 429 instead of an argon2 check (a remembered
//!   password still works). Failures within the budgets are audited;
//! * argon2 runs on `est.password_checks` threads of its own, fed by a bounded queue (eight
//!   waiting per thread, past that 503 busy): ~19 MiB of working memory per thread, never one
//!   blocking thread (and one allocator arena keeping its 19 MiB) per request.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{mpsc, Arc, Mutex},
    time::{Duration, Instant},
};

use privca_est::EstError;
use ring::{hmac, rand::SecureRandom};
use tokio::sync::oneshot;

use super::est::hash_password;
use crate::{
    audit::{AuditEvent, AuditKind},
    ca::CertificateAuthority,
    config::est::EstConfig,
    error::CaError,
    limit::{address_key, FailureBudget},
};

/// Seconds a throttled client is told to wait.
const RETRY_AFTER: u64 = 60;
/// Waiters allowed per concurrent argon2 check.
const WAITERS_PER_CHECK: usize = 8;

/// `(label, user name)`.
type LabelUser = (String, String);

/// The Basic checks of one EST server.
pub(super) struct BasicAuth {
    cache: PasswordCache,
    /// What an unknown user's password is checked against.
    decoy_hash: String,
    by_address: FailureBudget<IpAddr>,
    by_user: FailureBudget<LabelUser>,
    checks: mpsc::SyncSender<Check>,
}

/// One argon2 check for the pool: the PHC hash, the candidate, where the answer goes.
type Check = (String, String, oneshot::Sender<bool>);

impl BasicAuth {
    pub(super) fn new(config: &EstConfig) -> Result<Self, CaError> {
        let rng = ring::rand::SystemRandom::new();
        let mut key = [0u8; 32];
        rng.fill(&mut key).map_err(|_| CaError::internal("no randomness"))?;
        let mut decoy = [0u8; 24];
        rng.fill(&mut decoy).map_err(|_| CaError::internal("no randomness"))?;
        Ok(Self {
            cache: PasswordCache { key: hmac::Key::new(hmac::HMAC_SHA256, &key), entries: Mutex::default() },
            decoy_hash: hash_password(&hex::encode(decoy))?,
            by_address: FailureBudget::new(config.address_failures_per_minute),
            by_user: FailureBudget::new(config.user_failures_per_minute),
            checks: check_pool(config.password_checks)?,
        })
    }

    /// Whether `password` is user `user`'s of `label`, sent from `peer`.
    pub(super) async fn check(
        &self,
        ca: &CertificateAuthority,
        label: &str,
        user: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<bool, EstError> {
        let address = peer.map(address_key);
        if address.is_some_and(|a| self.by_address.exhausted(&a)) {
            metrics::counter!("privca_est_auth_throttled_total", "by" => "address").increment(1);
            return Err(EstError::TooManyRequests { retry_after: RETRY_AFTER });
        }
        if self.cache.hit(label, user, password) {
            return Ok(true);
        }
        // Every check spends a failure before it runs (checks running at once cannot overspend)
        // and gets it back when it succeeds.
        if address.is_some_and(|a| !self.by_address.try_spend(&a)) {
            metrics::counter!("privca_est_auth_throttled_total", "by" => "address").increment(1);
            return Err(EstError::TooManyRequests { retry_after: RETRY_AFTER });
        }
        let who = (label.to_owned(), user.to_owned());
        let refund = |user_spent: bool| {
            if let Some(a) = address {
                self.by_address.refund(&a);
            }
            if user_spent {
                self.by_user.refund(&who);
            }
        };
        if !self.by_user.try_spend(&who) {
            refund(false);
            metrics::counter!("privca_est_auth_throttled_total", "by" => "user").increment(1);
            return Err(EstError::TooManyRequests { retry_after: RETRY_AFTER });
        }
        let outcome = self.checked(ca, label, user, password).await;
        if !matches!(outcome, Ok(false)) {
            refund(true);
            return outcome;
        }
        metrics::counter!("privca_est_auth_failures_total").increment(1);
        let event = AuditEvent::new(AuditKind::Failed, format!("est:{label}/{user}"))
            .detail(serde_json::json!({ "stage": "est-basic-auth", "address": peer.map(|p| p.to_string()) }));
        if let Err(e) = ca.ledger().record_event(&event).await {
            tracing::error!(error = %e, "could not record the audit row of a failed EST password");
        }
        Ok(false)
    }

    /// The argon2 check of `password` against the user's hash, or against the decoy hash for
    /// an unknown user (same work, always false); remembered when right.
    async fn checked(
        &self,
        ca: &CertificateAuthority,
        label: &str,
        user: &str,
        password: &str,
    ) -> Result<bool, EstError> {
        let stored = ca.ledger().est_password_hash(label, user).await.map_err(|e| super::est::map_ca(e.into()))?;
        let known = stored.is_some();
        let verified = self.verify(stored.unwrap_or_else(|| self.decoy_hash.clone()), password).await?;
        if verified && known {
            self.cache.remember(label, user, password, ca.config().est.password_cache);
        }
        Ok(verified && known)
    }

    /// argon2id verification on the pool; 503 when its queue is full.
    async fn verify(&self, hash: String, password: &str) -> Result<bool, EstError> {
        let (tx, rx) = oneshot::channel();
        self.checks.try_send((hash, password.to_owned(), tx)).map_err(|_| {
            metrics::counter!("privca_est_password_checks_refused_total").increment(1);
            EstError::Busy
        })?;
        rx.await.map_err(|_| EstError::Internal("the password check pool stopped".into()))
    }
}

/// `threads` argon2 threads behind a queue of `threads × WAITERS_PER_CHECK` checks. The
/// threads stop when the sender is dropped.
fn check_pool(threads: usize) -> Result<mpsc::SyncSender<Check>, CaError> {
    let (tx, rx) = mpsc::sync_channel::<Check>(threads * WAITERS_PER_CHECK);
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..threads {
        let rx = Arc::clone(&rx);
        std::thread::Builder::new()
            .name(format!("privca-argon2-{i}"))
            .spawn(move || {
                // This thread's argon2 memory, allocated at its first check and kept.
                let mut verifier = crate::password::Verifier::default();
                loop {
                    let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((hash, candidate, answer)) = next else { return };
                    if answer.is_closed() {
                        continue;
                    }
                    let _ = answer.send(verifier.verify(&hash, candidate.as_bytes()));
                }
            })
            .map_err(|e| CaError::internal("cannot start a password check thread").with_source(e))?;
    }
    Ok(tx)
}

/// Remembered successful Basic checks: `(label, user)` → (HMAC of the password, expiry).
struct PasswordCache {
    key: hmac::Key,
    entries: Mutex<HashMap<LabelUser, (Vec<u8>, Instant)>>,
}

impl PasswordCache {
    fn hit(&self, label: &str, user: &str, password: &str) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        matches!(entries.get(&(label.to_owned(), user.to_owned())),
            Some((tag, until)) if *until > Instant::now() && hmac::verify(&self.key, password.as_bytes(), tag).is_ok())
    }

    fn remember(&self, label: &str, user: &str, password: &str, ttl: Duration) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if entries.len() > 10_000 {
            entries.retain(|_, (_, until)| *until > now);
        }
        let tag = hmac::sign(&self.key, password.as_bytes()).as_ref().to_vec();
        entries.insert((label.to_owned(), user.to_owned()), (tag, now + ttl));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_remembers_a_password_until_it_expires() {
        let cache = PasswordCache { key: hmac::Key::new(hmac::HMAC_SHA256, b"k"), entries: Mutex::default() };
        cache.remember("default", "u", "pw", Duration::from_secs(60));
        assert!(cache.hit("default", "u", "pw"));
        assert!(!cache.hit("default", "u", "other"));
        assert!(cache.hit("default", "u", "pw"), "a wrong password does not evict it");
        assert!(!cache.hit("vpn", "u", "pw"));
        cache.remember("default", "v", "pw", Duration::ZERO);
        assert!(!cache.hit("default", "v", "pw"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_wait_in_a_bounded_queue() {
        let config = EstConfig { password_checks: 1, ..EstConfig::default() };
        let auth = Arc::new(BasicAuth::new(&config).unwrap());
        let hash = hash_password("correct horse battery").unwrap();
        assert!(auth.verify(hash.clone(), "correct horse battery").await.unwrap());
        assert!(!auth.verify(auth.decoy_hash.clone(), "correct horse battery").await.unwrap());
        // One thread and eight waiting: of 20 at once, some are refused with 503.
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (auth, hash) = (Arc::clone(&auth), hash.clone());
                tokio::spawn(async move { auth.verify(hash, "wrong").await })
            })
            .collect();
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(ok) => assert!(!ok),
                Err(EstError::Busy) => refused += 1,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert!(refused >= 1, "past 1 + 8 waiting, checks are refused");
    }
}
