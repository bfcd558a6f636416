//! Signing: the only module that touches key material.
//!
//! [`Signer`] is a small synchronous trait (PKCS#11 calls block): sign, read a public key,
//! decrypt. [`SigningService`] is the only caller: it runs each call on one of its signing
//! threads (as many as the PKCS#11 session pool has sessions, so no more operations are in
//! flight than the token has sessions for), fed by a bounded queue with priority classes
//! ([`JobClass`]; see the `queue` module) that refuses work beyond its capacity at once
//! ([`SignerError::Busy`]) and skips jobs whose caller has gone. Production keys live in a PKCS#11 token
//! ([`pkcs11::Pkcs11Signer`]); nothing here ever reads a private key's value or wraps it out.
//! The same front seals and opens small secrets with an AES-256-GCM key that stays in the
//! token ([`crate::sealing`]).

mod algorithm;
pub mod pkcs11;
mod queue;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::oneshot;
use zeroize::Zeroizing;

pub use self::algorithm::{rsa_modulus_bits, verify_spki, KeyAlgorithm, SigningAlgorithm, VerifyError};
pub use self::pkcs11::Pkcs11Error;
use self::queue::{Job, Queue};
pub use self::queue::{JobClass, QueueCapacity};

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
    /// The class's queue is full: refused at once, retrying later may succeed.
    #[error("the HSM queue for {} work is full", .0.name())]
    Busy(JobClass),
}

impl SignerError {
    /// Whether the token itself failed (device error, token gone, session or login lost, the
    /// signing thread gone), as opposed to an answer about the input (a ciphertext that does
    /// not decrypt, a key or algorithm that does not fit). Never depends on the input's
    /// content, so a SCEP envelope's implicit rejection stays uniform.
    pub fn is_device_failure(&self) -> bool {
        match self {
            SignerError::Pkcs11(e) => e.is_device_failure(),
            SignerError::Cancelled => true,
            SignerError::KeyNotFound(_) | SignerError::AlgorithmMismatch { .. } | SignerError::Busy(_) => false,
        }
    }
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
/// fed by the bounded priority [`queue`](self::queue). A worker that finishes a job takes the
/// next queued one without a thread hand-off, so under load the token runs back to back; the
/// caller is woken through a oneshot channel, and a job whose caller dropped that channel's
/// receiver (a timed-out request) is skipped. Dropping the last clone of the service stops the
/// threads.
#[derive(Clone)]
pub struct SigningService {
    signer: Arc<dyn Signer>,
    queue: Arc<Closer>,
    /// The last [`SigningService::probe`]: when, and whether the token signed.
    probe: Arc<tokio::sync::Mutex<Option<(Instant, bool)>>>,
}

/// A probe's answer is reused this long (so `/healthz`, which anyone may call, costs the
/// token at most one signature a second).
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// A probe that has not answered by then finds the token down (a hung module).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Closes the queue when the last [`SigningService`] clone goes (the threads hold the queue,
/// not this).
struct Closer(Arc<Queue>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.close();
    }
}

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

/// A job answered through a tokio oneshot channel (async callers).
struct AsyncJob<T, F> {
    reply: oneshot::Sender<Result<T, SignerError>>,
    work: F,
}

impl<T, F> Job for AsyncJob<T, F>
where
    T: Send,
    F: FnOnce(&dyn Signer) -> Result<T, SignerError> + Send,
{
    fn caller_gone(&self) -> bool {
        self.reply.is_closed()
    }

    fn run(self: Box<Self>, signer: &dyn Signer) {
        let _ = self.reply.send((self.work)(signer));
    }
}

/// A job answered through a std channel (a synchronous caller, blocked until it is done).
struct BlockingJob<T, F> {
    reply: std::sync::mpsc::SyncSender<Result<T, SignerError>>,
    work: F,
}

impl<T, F> Job for BlockingJob<T, F>
where
    T: Send,
    F: FnOnce(&dyn Signer) -> Result<T, SignerError> + Send,
{
    fn caller_gone(&self) -> bool {
        false
    }

    fn run(self: Box<Self>, signer: &dyn Signer) {
        let _ = self.reply.send((self.work)(signer));
    }
}

impl SigningService {
    /// Wraps `signer` with `threads` signing threads (use the session pool size) and the
    /// default queue capacities for that many.
    pub fn new(signer: Arc<dyn Signer>, threads: usize) -> Self {
        Self::with_capacity(signer, threads, QueueCapacity::derived(threads))
    }

    /// Wraps `signer` with `threads` signing threads and a queue of `capacity`.
    pub fn with_capacity(signer: Arc<dyn Signer>, threads: usize, capacity: QueueCapacity) -> Self {
        let queue = Arc::new(Queue::new(capacity));
        for i in 0..threads.max(1) {
            let (queue, signer) = (Arc::clone(&queue), Arc::clone(&signer));
            let spawned = std::thread::Builder::new().name(format!("privca-signer-{i}")).spawn(move || {
                lower_priority();
                while let Some(job) = queue.next() {
                    job.run(signer.as_ref());
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a signing thread");
            }
        }
        Self { signer, queue: Arc::new(Closer(queue)), probe: Arc::new(tokio::sync::Mutex::new(None)) }
    }

    /// Whether the token signs now: a signature of a fixed message with `key` (queued as
    /// protocol work), at most once per [`PROBE_INTERVAL`] (callers within it, or waiting
    /// while one runs, share its answer) and bounded by [`PROBE_TIMEOUT`]. A full queue is
    /// a token at work, so it counts as up.
    pub async fn probe(&self, key: &str, algorithm: SigningAlgorithm) -> bool {
        let mut last = self.probe.lock().await;
        if let Some((at, up)) = *last {
            if at.elapsed() < PROBE_INTERVAL {
                return up;
            }
        }
        let signed = self.sign(JobClass::Protocol, key, algorithm, b"privca health probe".to_vec());
        let up = match tokio::time::timeout(PROBE_TIMEOUT, signed).await {
            Ok(Ok(_) | Err(SignerError::Busy(_))) => true,
            Ok(Err(e)) => {
                tracing::error!(error = %e, key, "health probe: the HSM does not sign");
                false
            }
            Err(_) => {
                tracing::error!(key, "health probe: the HSM did not answer within {PROBE_TIMEOUT:?}");
                false
            }
        };
        *last = Some((Instant::now(), up));
        up
    }

    async fn run<T: Send + 'static>(
        &self,
        class: JobClass,
        work: impl FnOnce(&dyn Signer) -> Result<T, SignerError> + Send + 'static,
    ) -> Result<T, SignerError> {
        let (reply, rx) = oneshot::channel();
        self.queue.0.push(class, Box::new(AsyncJob { reply, work }))?;
        rx.await.map_err(|_| SignerError::Cancelled)?
    }

    /// Signs `message` with `key` on a signing thread, queued as `class`.
    pub async fn sign(
        &self,
        class: JobClass,
        key: &str,
        algorithm: SigningAlgorithm,
        message: Vec<u8>,
    ) -> Result<Vec<u8>, SignerError> {
        let key = key.to_owned();
        let out = self.run(class, move |s| s.sign(&key, algorithm, &message)).await;
        count("sign", &out);
        out
    }

    /// Signs from synchronous code (rustls' `Signer::sign` in a TLS handshake), queued as
    /// `class` like any other job, and blocks until it is done. On a worker of a multi-thread
    /// tokio runtime the wait runs in [`tokio::task::block_in_place`], so the worker's other
    /// tasks move to another thread meanwhile; elsewhere (no runtime, a current-thread
    /// runtime) it blocks the calling thread, as any synchronous call there does.
    pub fn sign_blocking(
        &self,
        class: JobClass,
        key: &str,
        algorithm: SigningAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, SignerError> {
        let (key, message) = (key.to_owned(), message.to_vec());
        let (reply, rx) = std::sync::mpsc::sync_channel(1);
        let work = move |s: &dyn Signer| s.sign(&key, algorithm, &message);
        self.queue.0.push(class, Box::new(BlockingJob { reply, work }))?;
        let wait = || rx.recv().map_err(|_| SignerError::Cancelled).and_then(|r| r);
        let on_multi_thread_runtime = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let out = if on_multi_thread_runtime { tokio::task::block_in_place(wait) } else { wait() };
        count("sign", &out);
        out
    }

    /// Decrypts `ciphertext` with `key` on a signing thread, queued as `class`.
    pub async fn decrypt(&self, class: JobClass, key: &str, ciphertext: Vec<u8>) -> Result<Vec<u8>, SignerError> {
        let key = key.to_owned();
        let out = self.run(class, move |s| s.decrypt(&key, &ciphertext)).await;
        count("decrypt", &out);
        out
    }

    /// Publishes the queue's gauges (depth and capacity per class) to the metrics recorder
    /// installed now.
    pub fn publish_metrics(&self) {
        self.queue.0.publish_metrics();
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
        // Sealing happens when an operator adds a secret or at start-up: issuance class.
        let out = self.run(JobClass::Issuance, move |s| s.encrypt_secret(&key, &iv, &aad, &plaintext)).await;
        count("encrypt_secret", &out);
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
        // Opening serves protocol requests (an ACME newAccount with EAB): protocol class.
        let out = self.run(JobClass::Protocol, move |s| s.decrypt_secret(&key, &iv, &aad, &ciphertext)).await;
        count("decrypt_secret", &out);
        out
    }

    /// The key's algorithm and public key (cached by the signer; no token round trip).
    pub fn key_info(&self, key: &str) -> Result<KeyInfo, SignerError> {
        self.signer.key_info(key)
    }
}

/// Counts operations that reached the token (a refusal by the queue or a skipped job did not).
fn count<T>(op: &'static str, out: &Result<T, SignerError>) {
    let result = match out {
        Ok(_) => "ok",
        Err(SignerError::Busy(_) | SignerError::Cancelled) => return,
        Err(_) => "error",
    };
    metrics::counter!("privca_hsm_operations_total", "op" => op, "result" => result).increment(1);
}

#[cfg(test)]
mod tests;
