//! The OCSP responder's memory cache of signed answers, kept true to revocations made anywhere.
//!
//! An answer is cached per (serial, CertID hash). Revocations can be committed by this process,
//! by the CLI or by another instance on the same ledger, so none of them can be relied on to
//! tell this cache; instead the cache keeps the ledger's revocation counter it has caught up to
//! ([`AnswerCache::caught_up`]), and [`AnswerCache::forget`] drops the answers of every serial
//! revoked after it (run by the OCSP pre-signer's loop on every instance each
//! `ocsp.check_interval`). An answer read or signed while a revocation was being caught up with
//! is served but not cached ([`AnswerCache::insert`] takes the counter seen before the read), so
//! no `good` answer outlives its certificate's revocation here by more than one check interval.

use std::{
    collections::HashMap,
    sync::{PoisonError, RwLock},
};

use privca_ocsp::{HashAlgorithm, OcspReply};

/// Cached answers kept at most; beyond it the cache starts over.
const MAX_CACHE: usize = 200_000;

/// Answers by (serial, hash), with the revocation counter they are true at.
#[derive(Default)]
pub(crate) struct AnswerCache {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    answers: HashMap<(String, HashAlgorithm), OcspReply>,
    /// Every revocation up to this sequence has had its serial's answers dropped.
    caught_up: i64,
}

impl AnswerCache {
    /// A cache that has caught up to revocation sequence `counter` (read before anything is
    /// cached).
    pub(crate) fn new(counter: i64) -> Self {
        Self { inner: RwLock::new(Inner { answers: HashMap::new(), caught_up: counter }) }
    }

    /// The cached answer for (serial, hash).
    pub(crate) fn get(&self, serial: &str, hash: HashAlgorithm) -> Option<OcspReply> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner.answers.get(&(serial.to_owned(), hash)).cloned()
    }

    /// The revocation sequence the cache has caught up to: read it before reading a status or
    /// a stored response, and hand it to [`AnswerCache::insert`].
    pub(crate) fn caught_up(&self) -> i64 {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).caught_up
    }

    /// Caches `reply`, read or signed after the cache had caught up to `read_at`; not cached if
    /// the cache has caught up with a revocation since (it may be the one the reply misses).
    pub(crate) fn insert(&self, serial: &str, hash: HashAlgorithm, reply: &OcspReply, read_at: i64) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.caught_up != read_at {
            return;
        }
        if inner.answers.len() >= MAX_CACHE {
            inner.answers.clear();
        }
        inner.answers.insert((serial.to_owned(), hash), reply.clone());
    }

    /// Catches up to revocation sequence `counter`: drops the answers of `revoked` (every serial
    /// revoked after [`AnswerCache::caught_up`] up to `counter`), or every answer when that list
    /// is `None` (too long to read).
    pub(crate) fn forget(&self, counter: i64, revoked: Option<&[String]>) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if counter <= inner.caught_up {
            return;
        }
        match revoked {
            Some(serials) => {
                for serial in serials {
                    for hash in HashAlgorithm::ALL {
                        inner.answers.remove(&(serial.clone(), hash));
                    }
                }
            }
            None => inner.answers.clear(),
        }
        inner.caught_up = counter;
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::SystemTime};

    use super::*;

    fn reply(tag: u8) -> OcspReply {
        let now = SystemTime::now();
        OcspReply { der: Arc::new(vec![tag]), this_update: now, next_update: now, cacheable: true, etag: String::new() }
    }

    #[test]
    fn a_revocation_drops_the_serials_answers_and_only_those() {
        let cache = AnswerCache::new(5);
        cache.insert("01", HashAlgorithm::Sha1, &reply(1), 5);
        cache.insert("01", HashAlgorithm::Sha256, &reply(2), 5);
        cache.insert("02", HashAlgorithm::Sha1, &reply(3), 5);
        cache.forget(6, Some(&["01".to_owned()]));
        assert!(cache.get("01", HashAlgorithm::Sha1).is_none());
        assert!(cache.get("01", HashAlgorithm::Sha256).is_none());
        assert_eq!(cache.get("02", HashAlgorithm::Sha1).map(|r| r.der[0]), Some(3));
        assert_eq!(cache.caught_up(), 6);
        // A list too long to read: everything goes.
        cache.forget(9, None);
        assert!(cache.get("02", HashAlgorithm::Sha1).is_none());
        // An older counter changes nothing.
        cache.insert("03", HashAlgorithm::Sha1, &reply(4), 9);
        cache.forget(8, None);
        assert!(cache.get("03", HashAlgorithm::Sha1).is_some());
    }

    #[test]
    fn an_answer_read_before_a_revocation_was_caught_up_with_is_not_cached() {
        let cache = AnswerCache::new(5);
        let read_at = cache.caught_up();
        // The serial is revoked (sequence 6) and caught up with while the answer is in flight.
        cache.forget(6, Some(&["01".to_owned()]));
        cache.insert("01", HashAlgorithm::Sha1, &reply(1), read_at);
        assert!(cache.get("01", HashAlgorithm::Sha1).is_none());
        cache.insert("01", HashAlgorithm::Sha1, &reply(2), cache.caught_up());
        assert!(cache.get("01", HashAlgorithm::Sha1).is_some());
    }
}
