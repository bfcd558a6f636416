//! Signing: the only module that touches key material.
//!
//! [`Signer`] is a small synchronous trait (PKCS#11 calls block): sign, read a public key,
//! decrypt. [`SigningService`] is the only caller in async code: it runs each call on the
//! blocking pool under a semaphore sized to the PKCS#11 session pool, so no more operations are
//! in flight than the token has sessions for. Production keys live in a PKCS#11 token
//! ([`pkcs11::Pkcs11Signer`]); nothing here ever reads a private key's value or wraps it out.

mod algorithm;
pub mod pkcs11;

use std::sync::Arc;

use tokio::sync::Semaphore;

pub use self::algorithm::{rsa_modulus_bits, verify_spki, KeyAlgorithm, SigningAlgorithm, VerifyError};
pub use self::pkcs11::Pkcs11Error;

/// Errors from the signing layer. PKCS#11 return codes are kept as data for logs and never
/// shown to clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// The token or module failed.
    #[error(transparent)]
    Pkcs11(#[from] Pkcs11Error),
    /// No key with this label was found at start-up.
    #[error("key `{0}` is not loaded")]
    KeyNotFound(String),
    /// The algorithm does not fit the key.
    #[error("algorithm {algorithm:?} cannot be used with key `{key}`")]
    AlgorithmMismatch { key: String, algorithm: SigningAlgorithm },
    /// The blocking task was cancelled (shutdown).
    #[error("signing task was cancelled")]
    Cancelled,
}

/// A key the signer can use: label, algorithm and public key (SPKI DER).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// Label in the token.
    pub label: String,
    /// Key type.
    pub algorithm: KeyAlgorithm,
    /// DER `SubjectPublicKeyInfo`.
    pub spki_der: Vec<u8>,
}

/// Sign, read public keys, decrypt. Implementations must be safe to call from several threads.
pub trait Signer: Send + Sync {
    /// Signs `message` (the full to-be-signed bytes; hashing is the signer's job) with `key`.
    fn sign(&self, key: &str, algorithm: SigningAlgorithm, message: &[u8]) -> Result<Vec<u8>, SignerError>;
    /// The key's algorithm and public key.
    fn key_info(&self, key: &str) -> Result<KeyInfo, SignerError>;
    /// RSA PKCS#1 v1.5 decryption (SCEP content-encryption key unwrapping).
    fn decrypt(&self, key: &str, ciphertext: &[u8]) -> Result<Vec<u8>, SignerError>;
}

/// Async front of a [`Signer`]: blocking pool plus a concurrency limit.
#[derive(Clone)]
pub struct SigningService {
    signer: Arc<dyn Signer>,
    permits: Arc<Semaphore>,
}

impl SigningService {
    /// Wraps `signer`, allowing `concurrency` operations at once.
    pub fn new(signer: Arc<dyn Signer>, concurrency: usize) -> Self {
        Self { signer, permits: Arc::new(Semaphore::new(concurrency.max(1))) }
    }

    /// The underlying signer, for synchronous callers (TLS handshakes).
    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
    }

    /// Signs `message` with `key` on the blocking pool.
    pub async fn sign(&self, key: &str, algorithm: SigningAlgorithm, message: Vec<u8>) -> Result<Vec<u8>, SignerError> {
        let _permit = self.permits.acquire().await.map_err(|_| SignerError::Cancelled)?;
        let signer = Arc::clone(&self.signer);
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || signer.sign(&key, algorithm, &message))
            .await
            .map_err(|_| SignerError::Cancelled)?
    }

    /// Decrypts `ciphertext` with `key` on the blocking pool.
    pub async fn decrypt(&self, key: &str, ciphertext: Vec<u8>) -> Result<Vec<u8>, SignerError> {
        let _permit = self.permits.acquire().await.map_err(|_| SignerError::Cancelled)?;
        let signer = Arc::clone(&self.signer);
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || signer.decrypt(&key, &ciphertext))
            .await
            .map_err(|_| SignerError::Cancelled)?
    }

    /// The key's algorithm and public key (cached by the signer; no token round trip).
    pub fn key_info(&self, key: &str) -> Result<KeyInfo, SignerError> {
        self.signer.key_info(key)
    }
}
