//! Admin passwords: argon2id PHC strings (the EST user hashing), checked off the async threads
//! with at most two checks at a time, so a login flood cannot take every blocking thread or
//! gigabytes of argon2 memory. An unknown user's password is checked against a decoy hash, so
//! timing does not tell which names exist.

use std::sync::{Mutex, OnceLock, PoisonError};

use tokio::sync::Semaphore;

use crate::{error::CaError, password::Verifier};

/// The shortest password accepted.
pub const MIN_LEN: usize = 12;

/// Concurrent argon2 checks.
static CHECKS: Semaphore = Semaphore::const_new(2);
/// The checks' argon2 memory, kept between checks: at most one [`Verifier`] per permit.
static VERIFIERS: Mutex<Vec<Verifier>> = Mutex::new(Vec::new());
/// The hash an unknown user's password is checked against.
static DECOY: OnceLock<String> = OnceLock::new();

/// Hashes a new password (argon2id, random salt).
pub fn hash(password: &str) -> Result<String, CaError> {
    if password.chars().count() < MIN_LEN {
        return Err(CaError::bad_request(format!("passwords have at least {MIN_LEN} characters")));
    }
    crate::adapters::est::hash_password(password)
}

/// Whether `password` matches `phc` (`None`: unknown user, checked against the decoy and false).
pub async fn verify(phc: Option<&str>, password: &str) -> Result<bool, CaError> {
    let known = phc.is_some();
    let phc = match phc {
        Some(p) => p.to_owned(),
        None => decoy()?,
    };
    let password = zeroize::Zeroizing::new(password.to_owned());
    let _permit = CHECKS.acquire().await.map_err(|_| CaError::internal("password checks closed"))?;
    let ok = tokio::task::spawn_blocking(move || {
        let mut verifier = VERIFIERS.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default();
        let ok = verifier.verify(&phc, password.as_bytes());
        VERIFIERS.lock().unwrap_or_else(PoisonError::into_inner).push(verifier);
        ok
    })
    .await
    .map_err(|e| CaError::internal("password check task").with_source(e))?;
    Ok(known && ok)
}

fn decoy() -> Result<String, CaError> {
    if let Some(d) = DECOY.get() {
        return Ok(d.clone());
    }
    let mut random = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| CaError::internal("no randomness"))?;
    let d = crate::adapters::est::hash_password(&hex::encode(random))?;
    Ok(DECOY.get_or_init(|| d).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn right_wrong_and_unknown() {
        let h = hash("correct horse battery").unwrap();
        assert!(verify(Some(&h), "correct horse battery").await.unwrap());
        assert!(!verify(Some(&h), "correct horse battery!").await.unwrap());
        assert!(!verify(None, "correct horse battery").await.unwrap());
        assert!(hash("short").is_err());
    }
}
