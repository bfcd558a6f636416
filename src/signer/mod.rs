//! Signing: the only module that touches key material.
//!
//! [`Signer`] is a small synchronous trait (PKCS#11 calls block): sign, read a public key,
//! decrypt. [`SigningService`] is the only caller in async code: it runs each call on the
//! blocking pool under a semaphore sized to the PKCS#11 session pool, so no more operations are
//! in flight than the token has sessions for. Production keys live in a PKCS#11 token
//! ([`pkcs11::Pkcs11Signer`]); nothing here ever reads a private key's value or wraps it out.
//! The same front seals and opens small secrets with an AES-256-GCM key that stays in the
//! token ([`crate::sealing`]).

mod algorithm;
pub mod pkcs11;

use std::sync::{mpsc, Arc, Mutex};

use tokio::sync::oneshot;
use zeroize::Zeroizing;

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
    /// AES-GCM encryption with secret key `key`: ciphertext with the 16-byte tag appended.
    fn encrypt_secret(&self, key: &str, iv: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SignerError>;
    /// AES-GCM decryption with secret key `key` (fails when the tag does not verify).
    fn decrypt_secret(
        &self,
        key: &str,
        iv: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SignerError>;
}

/// Async front of a [`Signer`]: a fixed pool of signing threads (one per PKCS#11 session)
/// fed by a queue. A worker that finishes a job takes the next queued one without a thread
/// hand-off, so under load the token runs back to back; the caller is woken through a oneshot
/// channel. Dropping the last clone of the service stops the threads.
#[derive(Clone)]
pub struct SigningService {
    signer: Arc<dyn Signer>,
    jobs: mpsc::Sender<Job>,
}

type Job = Box<dyn FnOnce(&dyn Signer) + Send>;

/// Nice value of the signing threads.
const SIGNER_NICE: i32 = 10;

/// Runs the calling signing thread at [`SIGNER_NICE`]. With a software token the HSM's work is
/// this process's CPU: an RSA operation holds a core for most of a millisecond, and at normal
/// priority the threads that move requests along (the async runtime, sqlx's SQLite thread
/// while it holds the ledger's write turn) wait behind it. At a lower priority the scheduler
/// lets them run first; the signing work is the same, it only yields. (SCEP at c=8, two sets
/// of four alternating runs: +7 % enrollments/s over nice 0 both times; nice 5 gave +2 %.)
/// The price: while request threads keep both cores busy with work that needs no signature
/// (an OCSP flood), signing gets about a tenth of a core's share instead of an equal one.
/// Linux nice values are per thread; lowering one needs no privilege.
fn lower_priority() {
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), SIGNER_NICE) {
        tracing::debug!(error = %e, "cannot lower the signing thread's priority");
    }
}

impl SigningService {
    /// Wraps `signer` with `threads` signing threads (use the session pool size).
    pub fn new(signer: Arc<dyn Signer>, threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let (queue, signer) = (Arc::clone(&queue), Arc::clone(&signer));
            let spawned = std::thread::Builder::new().name(format!("privca-signer-{i}")).spawn(move || {
                lower_priority();
                loop {
                    let job = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(signer.as_ref()),
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a signing thread");
            }
        }
        Self { signer, jobs }
    }

    /// The underlying signer, for synchronous callers (TLS handshakes).
    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Signer) -> Result<T, SignerError> + Send + 'static,
    ) -> Result<T, SignerError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |signer| {
                let _ = tx.send(f(signer));
            }))
            .map_err(|_| SignerError::Cancelled)?;
        rx.await.map_err(|_| SignerError::Cancelled)?
    }

    /// Signs `message` with `key` on a signing thread.
    pub async fn sign(&self, key: &str, algorithm: SigningAlgorithm, message: Vec<u8>) -> Result<Vec<u8>, SignerError> {
        let key = key.to_owned();
        let out = self.run(move |s| s.sign(&key, algorithm, &message)).await;
        count("sign", out.is_ok());
        out
    }

    /// Decrypts `ciphertext` with `key` on a signing thread.
    pub async fn decrypt(&self, key: &str, ciphertext: Vec<u8>) -> Result<Vec<u8>, SignerError> {
        let key = key.to_owned();
        let out = self.run(move |s| s.decrypt(&key, &ciphertext)).await;
        count("decrypt", out.is_ok());
        out
    }

    /// AES-GCM-encrypts `plaintext` with secret key `key` on a signing thread.
    pub async fn encrypt_secret(
        &self,
        key: &str,
        iv: Vec<u8>,
        aad: Vec<u8>,
        plaintext: Zeroizing<Vec<u8>>,
    ) -> Result<Vec<u8>, SignerError> {
        let key = key.to_owned();
        let out = self.run(move |s| s.encrypt_secret(&key, &iv, &aad, &plaintext)).await;
        count("encrypt_secret", out.is_ok());
        out
    }

    /// AES-GCM-decrypts `ciphertext` with secret key `key` on a signing thread.
    pub async fn decrypt_secret(
        &self,
        key: &str,
        iv: Vec<u8>,
        aad: Vec<u8>,
        ciphertext: Vec<u8>,
    ) -> Result<Zeroizing<Vec<u8>>, SignerError> {
        let key = key.to_owned();
        let out = self.run(move |s| s.decrypt_secret(&key, &iv, &aad, &ciphertext)).await;
        count("decrypt_secret", out.is_ok());
        out
    }

    /// The key's algorithm and public key (cached by the signer; no token round trip).
    pub fn key_info(&self, key: &str) -> Result<KeyInfo, SignerError> {
        self.signer.key_info(key)
    }
}

fn count(op: &'static str, ok: bool) {
    metrics::counter!("privca_hsm_operations_total", "op" => op, "result" => if ok { "ok" } else { "error" })
        .increment(1);
}
