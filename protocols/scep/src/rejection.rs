//! Closing the RA key as a decryption oracle (Bleichenbacher, RFC 8894 §2.9's PKCS#1 v1.5 key
//! transport).
//!
//! A pkcsPKIEnvelope whose content cannot be opened gets one answer, whatever the cause: a
//! PKCS#1 padding the RA key refused, a content-encryption key of the wrong size, a bad CBC
//! padding, or content that does not decode as what the messageType promises. When the RA key
//! recovers no usable key, [`ImplicitRejection`] substitutes a synthetic one (keyed hash of the
//! encrypted key under a secret drawn at start-up) and the request carries on to the CBC
//! decryption and the content's decoding, so every cause fails at the same later step, after
//! the same work, with [`unopenable`]. The synthetic key is deterministic per ciphertext: a
//! resent ciphertext gives the same result, so repeating a probe teaches nothing.
//!
//! Such failures are reported to the backend ([`crate::ScepBackend::envelope_failed`]), which
//! keeps a budget per client address; an address over it is answered HTTP 429 before any HSM
//! work.

use ring::{
    hmac,
    rand::{SecureRandom, SystemRandom},
};

use crate::error::{FailInfo, ScepError};

/// The failInfoText of every envelope that cannot be opened.
pub const UNOPENABLE: &str = "the pkcsPKIEnvelope cannot be opened with the RA key";

/// The one failure of an envelope that cannot be opened (badMessageCheck, RFC 8894 §3.3.2.2).
pub fn unopenable() -> ScepError {
    ScepError::fail(FailInfo::BadMessageCheck, UNOPENABLE)
}

/// Synthetic content-encryption keys for envelopes the RA key does not open.
pub struct ImplicitRejection {
    key: hmac::Key,
}

impl std::fmt::Debug for ImplicitRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImplicitRejection(..)")
    }
}

impl ImplicitRejection {
    /// A rejection key drawn from the system's CSPRNG.
    pub fn new() -> Result<Self, ScepError> {
        let mut secret = [0u8; 32];
        SystemRandom::new().fill(&mut secret).map_err(|_| ScepError::Internal("no randomness".into()))?;
        Ok(Self { key: hmac::Key::new(hmac::HMAC_SHA256, &secret) })
    }

    /// The key to decrypt the content with: `recovered` when the RA key gave one of `len`
    /// bytes, else the synthetic key of `encrypted_key` (computed in either case, so both
    /// paths cost the same).
    pub fn content_key(&self, encrypted_key: &[u8], recovered: Option<&[u8]>, len: usize) -> Vec<u8> {
        let mut key = Vec::with_capacity(len + 32);
        let mut block = 0u8;
        while key.len() < len {
            let mut ctx = hmac::Context::with_key(&self.key);
            ctx.update(&[block]);
            ctx.update(encrypted_key);
            key.extend_from_slice(ctx.sign().as_ref());
            block = block.wrapping_add(1);
        }
        key.truncate(len);
        if let Some(real) = recovered.filter(|k| k.len() == len) {
            key.copy_from_slice(real);
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usable_key_is_kept_and_anything_else_gets_the_same_synthetic_key() {
        let r = ImplicitRejection::new().unwrap();
        let real = [7u8; 16];
        assert_eq!(r.content_key(b"ct", Some(&real), 16), real);
        let synthetic = r.content_key(b"ct", None, 16);
        assert_eq!(synthetic.len(), 16);
        assert_ne!(synthetic, real);
        // A 7-byte key (valid padding, wrong size) is rejected like a padding failure.
        assert_eq!(r.content_key(b"ct", Some(&[1; 7]), 16), synthetic);
        // Deterministic per ciphertext, different across ciphertexts and processes.
        assert_ne!(r.content_key(b"other", None, 16), synthetic);
        assert_ne!(ImplicitRejection::new().unwrap().content_key(b"ct", None, 16), synthetic);
        assert_eq!(r.content_key(b"ct", None, 24).len(), 24);
        assert_eq!(r.content_key(b"ct", None, 32).len(), 32);
    }
}
