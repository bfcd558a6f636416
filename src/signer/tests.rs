//! The signing queue with a fake [`Signer`] that blocks on demand: priority order, per-class
//! capacity, jobs whose caller has gone, and synchronous callers.

use std::{
    sync::{Arc, Condvar, Mutex},
    time::Duration,
};

use super::*;

/// Records every message it signs; a message `block` holds its signing thread until
/// [`Gate::open`].
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    started: Mutex<bool>,
    signed: Mutex<Vec<String>>,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    fn signed(&self) -> Vec<String> {
        self.signed.lock().unwrap().clone()
    }
}

struct FakeSigner(Arc<Gate>);

impl Signer for FakeSigner {
    fn sign(&self, _key: &str, _algorithm: SigningAlgorithm, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let text = String::from_utf8_lossy(message).into_owned();
        if text == "block" {
            *self.0.started.lock().unwrap() = true;
            let mut open = self.0.open.lock().unwrap();
            while !*open {
                open = self.0.opened.wait(open).unwrap();
            }
        }
        self.0.signed.lock().unwrap().push(text);
        Ok(message.to_vec())
    }

    fn key_info(&self, key: &str) -> Result<KeyInfo, SignerError> {
        Err(SignerError::KeyNotFound(key.to_owned()))
    }

    fn decrypt(&self, key: &str, _ciphertext: &[u8]) -> Result<Vec<u8>, SignerError> {
        Err(SignerError::KeyNotFound(key.to_owned()))
    }

    fn encrypt_secret(&self, key: &str, _iv: &[u8], _aad: &[u8], _plaintext: &[u8]) -> Result<Vec<u8>, SignerError> {
        Err(SignerError::KeyNotFound(key.to_owned()))
    }

    fn decrypt_secret(
        &self,
        key: &str,
        _iv: &[u8],
        _aad: &[u8],
        _ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SignerError> {
        Err(SignerError::KeyNotFound(key.to_owned()))
    }
}

const ALG: SigningAlgorithm = SigningAlgorithm::EcdsaSha256;

/// One signing thread, busy with `block` until the gate opens.
async fn blocked_service(capacity: QueueCapacity) -> (SigningService, Arc<Gate>, tokio::task::JoinHandle<()>) {
    let gate = Arc::new(Gate::default());
    let service = SigningService::with_capacity(Arc::new(FakeSigner(gate.clone())), 1, capacity);
    let blocker = {
        let service = service.clone();
        tokio::spawn(async move {
            service.sign(JobClass::Nonce, "k", ALG, b"block".to_vec()).await.unwrap();
        })
    };
    wait_until(|| *gate.started.lock().unwrap()).await;
    (service, gate, blocker)
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("condition not reached in 2 s");
}

/// Starts signing `message` as `class` and returns once the job is in the queue.
async fn queue(service: &SigningService, class: JobClass, message: &str) -> tokio::task::JoinHandle<Vec<u8>> {
    let before = service.queue.0.waiting(class);
    let task = {
        let (service, message) = (service.clone(), message.as_bytes().to_vec());
        tokio::spawn(async move { service.sign(class, "k", ALG, message).await.unwrap() })
    };
    wait_until(|| service.queue.0.waiting(class) == before + 1).await;
    task
}

#[tokio::test]
async fn higher_classes_run_first_whatever_the_arrival_order() {
    let (service, gate, blocker) = blocked_service(QueueCapacity::derived(1)).await;
    let mut tasks = Vec::new();
    for (class, message) in [
        (JobClass::Nonce, "nonce-1"),
        (JobClass::Nonce, "nonce-2"),
        (JobClass::Protocol, "protocol-1"),
        (JobClass::Nonce, "nonce-3"),
        (JobClass::Handshake, "handshake-1"),
        (JobClass::Issuance, "issuance-1"),
        (JobClass::Protocol, "protocol-2"),
        (JobClass::Issuance, "issuance-2"),
    ] {
        tasks.push(queue(&service, class, message).await);
    }
    gate.open();
    blocker.await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        gate.signed(),
        [
            "block",
            "issuance-1",
            "issuance-2",
            "handshake-1",
            "protocol-1",
            "protocol-2",
            "nonce-1",
            "nonce-2",
            "nonce-3"
        ]
    );
}

#[tokio::test]
async fn a_job_past_its_class_capacity_is_refused_at_once() {
    let capacity = QueueCapacity { issuance: 4, handshake: 1, protocol: 1, nonce: 2 };
    let (service, gate, blocker) = blocked_service(capacity).await;
    let n1 = queue(&service, JobClass::Nonce, "nonce-1").await;
    let n2 = queue(&service, JobClass::Nonce, "nonce-2").await;
    // The signing thread is still blocked: an answer within the timeout is the queue's refusal.
    let refused = tokio::time::timeout(Duration::from_secs(1), service.sign(JobClass::Nonce, "k", ALG, b"n3".to_vec()))
        .await
        .expect("a full class answers at once");
    assert!(matches!(refused, Err(SignerError::Busy(JobClass::Nonce))), "{refused:?}");
    assert_eq!(service.queue.0.waiting(JobClass::Nonce), 2, "the refused job was not queued");
    // Each class has its own capacity: a full Nonce class does not refuse other work.
    let p1 = queue(&service, JobClass::Protocol, "protocol-1").await;
    let busy = service.sign_blocking(JobClass::Protocol, "k", ALG, b"p2");
    assert!(matches!(busy, Err(SignerError::Busy(JobClass::Protocol))), "{busy:?}");
    gate.open();
    blocker.await.unwrap();
    for t in [n1, n2, p1] {
        t.await.unwrap();
    }
    assert_eq!(gate.signed(), ["block", "protocol-1", "nonce-1", "nonce-2"]);
    // Drained: the class takes jobs again.
    assert_eq!(service.sign(JobClass::Nonce, "k", ALG, b"again".to_vec()).await.unwrap(), b"again");
}

#[tokio::test]
async fn a_job_whose_caller_has_gone_never_reaches_the_signer() {
    let (service, gate, blocker) = blocked_service(QueueCapacity::derived(1)).await;
    let gone = queue(&service, JobClass::Protocol, "gone").await;
    let kept = queue(&service, JobClass::Protocol, "kept").await;
    // A request timing out drops the future that waits for the signature.
    gone.abort();
    assert!(gone.await.unwrap_err().is_cancelled());
    gate.open();
    blocker.await.unwrap();
    assert_eq!(kept.await.unwrap(), b"kept");
    assert_eq!(gate.signed(), ["block", "kept"]);
    assert_eq!(service.queue.0.waiting(JobClass::Protocol), 0);
}

#[tokio::test]
async fn a_full_class_is_swept_of_jobs_whose_caller_has_gone() {
    let capacity = QueueCapacity { issuance: 1, handshake: 1, protocol: 1, nonce: 1 };
    let (service, gate, blocker) = blocked_service(capacity).await;
    let gone = queue(&service, JobClass::Nonce, "gone").await;
    gone.abort();
    let _ = gone.await;
    assert_eq!(service.queue.0.waiting(JobClass::Nonce), 1, "a gone job waits until swept");
    let fresh = service.sign(JobClass::Nonce, "k", ALG, b"fresh".to_vec());
    tokio::pin!(fresh);
    // Polled until it waits for the blocked signing thread: queued in the swept slot.
    let early = tokio::time::timeout(Duration::from_millis(100), &mut fresh).await;
    assert!(early.is_err(), "not refused: {early:?}");
    assert_eq!(service.queue.0.waiting(JobClass::Nonce), 1);
    gate.open();
    blocker.await.unwrap();
    assert_eq!(fresh.await.unwrap(), b"fresh");
    assert_eq!(gate.signed(), ["block", "fresh"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronous_caller_on_a_runtime_worker_waits_in_place() {
    let gate = Arc::new(Gate::default());
    let service = SigningService::new(Arc::new(FakeSigner(gate.clone())), 1);
    // As rustls calls it: synchronously, inside a task on a worker thread.
    let signed = tokio::spawn(async move { service.sign_blocking(JobClass::Handshake, "k", ALG, b"hello") })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(signed, b"hello");
}

#[test]
fn a_synchronous_caller_on_a_current_thread_runtime_blocks_without_panicking() {
    let gate = Arc::new(Gate::default());
    let service = SigningService::new(Arc::new(FakeSigner(gate.clone())), 1);
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let signed = runtime.block_on(async { service.sign_blocking(JobClass::Handshake, "k", ALG, b"hi") }).unwrap();
    assert_eq!(signed, b"hi");
    assert_eq!(gate.signed(), ["hi"]);
}
