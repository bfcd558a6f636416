//! The HSM job queue: bounded, by priority class, and blind to callers that have gone.
//!
//! Every signature and decryption waits here for one of the signing threads. Jobs come in
//! [`JobClass`]es; a thread always takes the oldest job of the highest class that has one, so
//! issuance and CRL signing are never stuck behind a flood of unauthenticated work. Each class
//! holds at most its [`QueueCapacity`] waiting jobs: a job that does not fit is refused at once
//! with [`SignerError::Busy`], which each protocol answers with its own "try later". A job whose
//! caller has gone (its request timed out or was cancelled: the oneshot receiver is dropped) is
//! skipped, never sent to the token; full classes are swept of such jobs before a refusal.
//!
//! Metrics: `privca_hsm_queue_depth{class}` (jobs waiting; never above the class's capacity,
//! `privca_hsm_queue_capacity{class}`),
//! `privca_hsm_queue_rejected_total{class}` and `privca_hsm_jobs_skipped_total`.
//! This module owns no key and makes no PKCS#11 call: the job closures do.

use std::{
    collections::VecDeque,
    sync::{Condvar, Mutex, MutexGuard, PoisonError},
};

use super::{Signer, SignerError};

/// Priority classes of HSM work, highest first: a signing thread takes a job of a lower class
/// only when no higher class has one waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobClass {
    /// Certificates (any requester, including privca's own RA, responder and TLS
    /// certificates), CRLs, audit checkpoints, OCSP responses pre-signed at commit or by the
    /// pre-signer.
    Issuance,
    /// TLS handshakes of privca's listeners (the server key signs each full handshake). Above
    /// `Protocol`: a refused handshake closes a connection that may carry authenticated ACME,
    /// EST or admin work.
    Handshake,
    /// Unauthenticated protocol work: SCEP CertRep signatures and RA decryption, OCSP
    /// responses signed on demand (no usable pre-signed one, several CertIDs).
    Protocol,
    /// OCSP responses that echo a request nonce (RFC 9654): the first work to shed.
    Nonce,
}

impl JobClass {
    /// Every class, highest priority first.
    pub const ALL: [JobClass; 4] = [Self::Issuance, Self::Handshake, Self::Protocol, Self::Nonce];

    /// The metric label.
    pub fn name(self) -> &'static str {
        match self {
            Self::Issuance => "issuance",
            Self::Handshake => "handshake",
            Self::Protocol => "protocol",
            Self::Nonce => "nonce",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How many jobs of each class may wait (jobs being signed are not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCapacity {
    /// [`JobClass::Issuance`].
    pub issuance: usize,
    /// [`JobClass::Handshake`].
    pub handshake: usize,
    /// [`JobClass::Protocol`].
    pub protocol: usize,
    /// [`JobClass::Nonce`].
    pub nonce: usize,
}

impl QueueCapacity {
    /// Defaults for `sessions` signing threads: issuance 256 per session (the pre-signer and a
    /// burst of finalizes must not be refused), handshake 16, protocol 16 and nonce 8 per
    /// session (about 5–20 ms of waiting with a software token, where a refusal is cheaper
    /// than a queue the caller's timeout would outrun).
    pub fn derived(sessions: usize) -> Self {
        let s = sessions.max(1);
        Self { issuance: 256 * s, handshake: 16 * s, protocol: 16 * s, nonce: 8 * s }
    }

    /// The capacity of `class`.
    pub fn of(&self, class: JobClass) -> usize {
        match class {
            JobClass::Issuance => self.issuance,
            JobClass::Handshake => self.handshake,
            JobClass::Protocol => self.protocol,
            JobClass::Nonce => self.nonce,
        }
    }
}

/// A queued job: runs on a signing thread unless its caller has gone.
pub(super) trait Job: Send {
    /// True when nobody waits for the result any more.
    fn caller_gone(&self) -> bool;
    /// Runs the job and hands the result to the caller.
    fn run(self: Box<Self>, signer: &dyn Signer);
}

struct State {
    waiting: [VecDeque<Box<dyn Job>>; 4],
    closed: bool,
}

/// The shared queue between callers and signing threads.
pub(super) struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    capacity: QueueCapacity,
}

impl Queue {
    pub(super) fn new(capacity: QueueCapacity) -> Self {
        let queue = Self {
            state: Mutex::new(State { waiting: Default::default(), closed: false }),
            ready: Condvar::new(),
            capacity,
        };
        queue.publish_metrics();
        queue
    }

    /// Sets every class's depth and capacity gauges (again: for a recorder installed after
    /// the queue was built).
    pub(super) fn publish_metrics(&self) {
        let state = self.lock();
        for class in JobClass::ALL {
            depth(class, state.waiting[class.index()].len());
            metrics::gauge!("privca_hsm_queue_capacity", "class" => class.name()).set(self.capacity.of(class) as f64);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A job never runs under the lock, so a poisoned lock holds consistent queues.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job` in `class`, or refuses it at once when the class is full.
    pub(super) fn push(&self, class: JobClass, job: Box<dyn Job>) -> Result<(), SignerError> {
        let cap = self.capacity.of(class);
        let mut state = self.lock();
        if state.closed {
            return Err(SignerError::Cancelled);
        }
        let queue = &mut state.waiting[class.index()];
        if queue.len() >= cap {
            let before = queue.len();
            queue.retain(|j| !j.caller_gone());
            skipped((before - queue.len()) as u64);
        }
        if queue.len() >= cap {
            drop(state);
            metrics::counter!("privca_hsm_queue_rejected_total", "class" => class.name()).increment(1);
            return Err(SignerError::Busy(class));
        }
        queue.push_back(job);
        depth(class, queue.len());
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job to run (highest class first, callers gone skipped), waiting for one; `None`
    /// once the queue is closed.
    pub(super) fn next(&self) -> Option<Box<dyn Job>> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            for class in JobClass::ALL {
                let queue = &mut state.waiting[class.index()];
                while let Some(job) = queue.pop_front() {
                    depth(class, queue.len());
                    if job.caller_gone() {
                        skipped(1);
                        continue;
                    }
                    return Some(job);
                }
            }
            state = self.ready.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Stops the signing threads; queued jobs are dropped (their callers get `Cancelled`).
    pub(super) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        for queue in &mut state.waiting {
            queue.clear();
        }
        drop(state);
        self.ready.notify_all();
    }
}

fn depth(class: JobClass, len: usize) {
    metrics::gauge!("privca_hsm_queue_depth", "class" => class.name()).set(len as f64);
}

fn skipped(n: u64) {
    if n > 0 {
        metrics::counter!("privca_hsm_jobs_skipped_total").increment(n);
    }
}

#[cfg(test)]
impl Queue {
    /// Jobs of `class` waiting now.
    pub(super) fn waiting(&self, class: JobClass) -> usize {
        self.lock().waiting[class.index()].len()
    }
}
