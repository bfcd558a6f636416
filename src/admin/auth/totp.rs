//! TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps, the usual authenticator
//! app parameters). A code is accepted for the current step or one step either side (clock
//! skew), and each step at most once per user: the ledger keeps the last accepted step and
//! moves it forward atomically, so a code seen once (shoulder-surfed, replayed, or raced on two
//! instances) never logs in again.

use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

use crate::error::CaError;

/// Seconds per step.
pub const STEP: u64 = 30;
/// Digits per code.
const DIGITS: usize = 6;
/// Steps accepted either side of now.
const SKEW: u16 = 1;

/// A new random 160-bit secret (RFC 4226 §4 recommends 160 bits).
pub fn new_secret() -> Result<Zeroizing<Vec<u8>>, CaError> {
    let mut s = Zeroizing::new(vec![0u8; 20]);
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut s)
        .map_err(|_| CaError::internal("no randomness"))?;
    Ok(s)
}

fn totp(secret: &[u8], account: &str) -> Result<Totp, CaError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_skew(SKEW)
        .with_step_duration(STEP)
        .with_secret(secret.to_vec())
        .with_issuer(Some("privca"))
        .with_account_name(account)
        .build()
        .map_err(|e| CaError::internal(format!("TOTP: {e}")))
}

/// The `otpauth://` URL an authenticator app enrolls from, and the base32 secret.
pub fn provisioning(secret: &[u8], account: &str) -> Result<(String, String), CaError> {
    let t = totp(secret, account)?;
    let url = t.to_url().map_err(|e| CaError::internal(format!("TOTP: {e}")))?;
    Ok((url, t.secret().to_base32()))
}

/// The time step `code` is valid for at Unix time `now`, if any (constant-time comparisons).
pub fn matching_step(secret: &[u8], account: &str, code: &str, now: u64) -> Result<Option<i64>, CaError> {
    let t = totp(secret, account)?;
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let step = now / STEP;
    let mut found = None;
    for s in [step.saturating_sub(1), step, step + 1] {
        let expected = t.generate(s * STEP).to_string();
        if bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes())) {
            found = Some(s as i64);
        }
    }
    Ok(found)
}

/// The code for Unix time `now` (tests and the dashboard's browser test use it).
pub fn code_at(secret: &[u8], account: &str, now: u64) -> Result<String, CaError> {
    Ok(totp(secret, account)?.generate(now).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1, truncated to 6 digits.
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, "a", 59).unwrap(), "287082");
        assert_eq!(code_at(secret, "a", 1_111_111_109).unwrap(), "081804");
        assert_eq!(code_at(secret, "a", 2_000_000_000).unwrap(), "279037");
    }

    #[test]
    fn skew_of_one_step_and_no_more() {
        let secret = new_secret().unwrap();
        let now = 1_800_000_000u64;
        let code = code_at(&secret, "a", now).unwrap();
        assert_eq!(matching_step(&secret, "a", &code, now).unwrap(), Some((now / STEP) as i64));
        assert!(matching_step(&secret, "a", &code, now + STEP).unwrap().is_some());
        assert!(matching_step(&secret, "a", &code, now - STEP).unwrap().is_some());
        assert_eq!(matching_step(&secret, "a", &code, now + 3 * STEP).unwrap(), None);
        assert_eq!(matching_step(&secret, "a", "12345", now).unwrap(), None);
        let (url, b32) = provisioning(&secret, "alice").unwrap();
        assert!(url.starts_with("otpauth://totp/privca:alice?") && url.contains(&b32));
    }
}
