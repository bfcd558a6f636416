//! Replay nonces (§6.5): authenticated and stateless to issue, single-use through the ledger.
//!
//! A nonce is `base64url(issued_at ‖ 8 random octets ‖ HMAC-SHA256(key, issued_at ‖ random))`.
//! Issuing costs no database write; every instance that shares the ledger shares the key (it
//! lives in the ledger), so any instance accepts a nonce another one issued. Redemption checks
//! the MAC and the age first (forged or stale nonces never reach the backend), then records the
//! nonce as used through the port (`AcmeBackend::redeem_nonce`), which refuses a second use.
//! privca's core does that with one insert into the ledger on PostgreSQL (shared by several
//! instances; used nonces are deleted once they expire) and in memory with a per-process key on
//! single-instance SQLite, where a durable write per request would cost an fsync.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64ct::{Base64UrlUnpadded, Encoding};
use ring::{hmac, rand::SecureRandom};

/// Issues and checks nonces.
#[derive(Clone)]
pub struct Nonces {
    key: hmac::Key,
    lifetime: Duration,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces").field("lifetime", &self.lifetime).finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

impl Nonces {
    /// Nonces keyed with `key` (shared by all instances), valid for `lifetime`.
    pub fn new(key: &[u8], lifetime: Duration) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, key), lifetime, rng: ring::rand::SystemRandom::new() }
    }

    /// A fresh nonce.
    pub fn issue(&self) -> String {
        let mut raw = [0u8; 48];
        raw[..8].copy_from_slice(&now().to_be_bytes());
        // SystemRandom only fails if the OS has no entropy source; the nonce then still carries
        // the time and stays unique through the ledger's used-nonce table.
        let _ = self.rng.fill(&mut raw[8..16]);
        let tag = hmac::sign(&self.key, &raw[..16]);
        raw[16..].copy_from_slice(tag.as_ref());
        Base64UrlUnpadded::encode_string(&raw)
    }

    /// If `nonce` is one of ours and not expired, the Unix time when it expires.
    pub fn check(&self, nonce: &str) -> Option<i64> {
        let raw = Base64UrlUnpadded::decode_vec(nonce).ok()?;
        if raw.len() != 48 {
            return None;
        }
        hmac::verify(&self.key, &raw[..16], &raw[16..]).ok()?;
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&raw[..8]);
        let expires = u64::from_be_bytes(issued).checked_add(self.lifetime.as_secs())?;
        (expires > now()).then(|| i64::try_from(expires).ok()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_verify_and_forgeries_do_not() {
        let n = Nonces::new(&[7; 32], Duration::from_secs(60));
        let a = n.issue();
        assert_ne!(a, n.issue());
        assert!(n.check(&a).is_some());
        let other = Nonces::new(&[8; 32], Duration::from_secs(60));
        assert!(other.check(&a).is_none());
        let mut tampered = a.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        assert!(n.check(&String::from_utf8(tampered).unwrap()).is_none());
        assert!(n.check("not-a-nonce").is_none());
        let expired = Nonces::new(&[7; 32], Duration::ZERO);
        assert!(expired.check(&expired.issue()).is_none());
    }
}
