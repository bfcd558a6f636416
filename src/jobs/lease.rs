//! Leases of the cluster-wide background jobs: with several instances on one PostgreSQL, each
//! such job runs on the one instance that holds its lease in the ledger
//! ([`Ledger::take_lease`]). A [`Keeper`] per instance takes or renews every lease it wants each
//! third of `database.job_lease` and gives them up at shutdown; a job asks [`Lease::held`]
//! before each run.
//!
//! The ledger's lease lasts `job_lease` by the holder's clock. The holder trusts it for two
//! thirds of that, counted on its monotonic clock from before it asked, so a holder that cannot
//! renew (database down, process stalled) stops the job before another instance may take it,
//! with a third of the lease as the margin for clock differences between instances. Leases save
//! duplicate work; the ledger's constraints (one CRL per cRLNumber, one outbox row per
//! certificate × threshold × channel, the audit head's compare-and-set) are what make a job's
//! effects exactly-once even if two instances ever overlapped.
//!
//! An instance restarted after a crash or SIGKILL does not wait for its predecessor's leases
//! to run out: at start it takes over those held by a process of its own host that is no
//! longer running ([`Keeper::take_over_from_gone_processes`]). On SQLite, one process per
//! ledger file, that is every lease.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::watch;

use crate::ledger::{now, Ledger};

/// Names of the leased jobs.
pub mod job {
    /// Aborting interrupted reservations.
    pub const INTERRUPTED_RESERVATIONS: &str = "interrupted-reservations";
    /// ACME nonce, order and authorization cleanup.
    pub const ACME_CLEANUP: &str = "acme-cleanup";
    /// The audit sealer.
    pub const AUDIT_SEAL: &str = "audit-seal";
    /// CRL publication.
    pub const CRL_PUBLISH: &str = "crl-publish";
    /// The OCSP pre-signer's sweep and the responders' rotation.
    pub const OCSP_SWEEP: &str = "ocsp-sweep";
    /// The CLM expiry policy.
    pub const CLM_POLICY: &str = "clm-policy";
    /// CLM notification delivery.
    pub const CLM_DELIVERY: &str = "clm-delivery";
    /// Scheduled discovery scans.
    pub const DISCOVERY: &str = "discovery";
    /// Scheduled compliance reports.
    pub const REPORTS: &str = "reports";
}

/// This instance's view of one job's lease.
#[derive(Debug, Clone)]
pub struct Lease {
    job: &'static str,
    state: Arc<Mutex<Held>>,
    /// The fencing number of each lease taken (not renewed) by this instance.
    taken: Arc<watch::Sender<i64>>,
}

#[derive(Debug, Default)]
struct Held {
    /// Until when this instance may run the job (monotonic).
    until: Option<Instant>,
    /// The ledger's fencing number of the lease held.
    fence: i64,
}

impl Lease {
    /// Whether this instance may run the job now.
    pub fn held(&self) -> bool {
        self.state.lock().map(|h| h.until.is_some_and(|u| u > Instant::now())).unwrap_or(false)
    }

    /// The job's name.
    pub fn job(&self) -> &'static str {
        self.job
    }

    /// The fencing number of the lease held, if any.
    pub fn fence(&self) -> Option<i64> {
        let held = self.state.lock().ok()?;
        held.until.is_some_and(|u| u > Instant::now()).then_some(held.fence)
    }

    /// Waits for the next tick of `tick` at which this instance holds the lease, or for this
    /// instance to take the lease over (then at once, and `tick` starts again from there): a
    /// job with a long interval runs as soon as it moves here, not an interval later.
    pub async fn next(&self, tick: &mut tokio::time::Interval) {
        let mut taken = self.taken.subscribe();
        loop {
            tokio::select! {
                _ = tick.tick() => if self.held() { return },
                Ok(()) = taken.changed() => if self.held() {
                    tick.reset();
                    return;
                },
            }
        }
    }
}

/// Takes and renews this instance's leases.
#[derive(Debug, Clone)]
pub struct Keeper {
    ledger: Ledger,
    holder: String,
    ttl: Duration,
    leases: Vec<Lease>,
}

impl Keeper {
    /// A keeper for `ledger` with leases of `ttl`, holder name `host/pid/random`.
    pub fn new(ledger: Ledger, ttl: Duration) -> Self {
        Self { ledger, holder: holder_name(), ttl, leases: Vec::new() }
    }

    /// This instance's name in the ledger.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The lease of `job`, kept from now on.
    pub fn lease(&mut self, job: &'static str) -> Lease {
        if let Some(l) = self.leases.iter().find(|l| l.job == job) {
            return l.clone();
        }
        let lease = Lease { job, state: Arc::default(), taken: Arc::new(watch::channel(0).0) };
        self.leases.push(lease.clone());
        lease
    }

    /// At start: takes over at once every lease this keeper wants that is still held by an
    /// earlier process of this host which is gone (killed or crashed: the same host name, its
    /// process id no longer running), instead of waiting up to `job_lease` for it to run out.
    /// A holder on another host, or whose process id is running (perhaps reused), is left to run
    /// out. Then [`Keeper::renew`] finds the leases its own.
    pub async fn take_over_from_gone_processes(&self) {
        let leases = match self.ledger.job_leases().await {
            Ok(l) => l,
            Err(e) => return tracing::warn!(error = %e, "reading the job leases failed"),
        };
        let t = now();
        for lease in leases {
            if lease.expires_at <= t || !self.leases.iter().any(|l| l.job == lease.job) || !gone(&lease.holder) {
                continue;
            }
            let until = t + self.ttl.as_secs() as i64;
            match self.ledger.take_over_lease(&lease.job, &lease.holder, &self.holder, until).await {
                Ok(Some(fence)) => {
                    tracing::info!(job = %lease.job, from = %lease.holder, fence, "job lease of a process that is gone taken over")
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(job = %lease.job, error = %e, "taking over a job lease failed"),
            }
        }
    }

    /// Takes or renews every lease once.
    pub async fn renew(&self) {
        for lease in &self.leases {
            let asked = Instant::now();
            let t = now();
            let taken = self.ledger.take_lease(lease.job, &self.holder, t, t + self.ttl.as_secs() as i64).await;
            let Ok(mut held) = lease.state.lock() else { continue };
            let had = held.until.is_some_and(|u| u > asked);
            match taken {
                Ok(Some(fence)) => {
                    let new = !had || held.fence != fence;
                    held.until = Some(asked + self.ttl * 2 / 3);
                    held.fence = fence;
                    drop(held);
                    if new {
                        tracing::info!(job = lease.job, fence, holder = %self.holder, "job lease taken: this instance runs the job");
                        lease.taken.send_replace(fence);
                    }
                }
                Ok(None) => {
                    if had {
                        tracing::warn!(job = lease.job, "job lease lost to another instance");
                    }
                    held.until = None;
                }
                // Kept until it runs out: a renewal may succeed before then.
                Err(e) => tracing::warn!(job = lease.job, error = %e, "renewing a job lease failed"),
            }
        }
    }

    /// Renews every third of the lease until `stop` flips, then gives every lease up.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let every = self.ttl / 3;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.renew().await,
                _ = stop.changed() => break,
            }
        }
        for lease in &self.leases {
            if let Ok(mut held) = lease.state.lock() {
                held.until = None;
            }
            if let Err(e) = self.ledger.give_up_lease(lease.job, &self.holder).await {
                tracing::warn!(job = lease.job, error = %e, "giving up a job lease failed; it runs out by itself");
            }
        }
    }
}

/// `host/pid/random`: unique per process, readable in `job_leases`.
fn holder_name() -> String {
    let mut random = [0u8; 4];
    // A name that happens to repeat only merges two holders' renewals; it is never a secret.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
    format!("{}/{}/{}", this_host(), std::process::id(), hex::encode(random))
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_owned()
}

/// Whether `holder` ([`holder_name`]) names a process of this host that is no longer running.
/// False whenever that cannot be told (another host, no `/proc`, a name of another form).
fn gone(holder: &str) -> bool {
    let mut parts = holder.split('/');
    let (Some(host), Some(pid), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    let host_known = !host.is_empty() && host == this_host();
    host_known
        && pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_is_gone_only_when_its_process_of_this_host_is_not_running() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let host = this_host();
        assert!(gone(&format!("{host}/{dead}/00000000")));
        assert!(!gone(&format!("{host}/{}/00000000", std::process::id())), "this process");
        assert!(!gone(&format!("{host}/1/00000000")), "a running process");
        assert!(!gone(&format!("another-{host}/{dead}/00000000")), "another host");
        assert!(!gone("garbage"));
        assert!(!gone(&format!("{host}/x/00000000")));
    }

    /// A lease of a killed process of this host is taken over at start, not after it runs out.
    #[tokio::test]
    async fn a_restarted_instance_takes_over_the_leases_of_its_killed_predecessor() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::connect(&format!("sqlite://{}/l.db?mode=rwc", dir.path().display()), 2).await.unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = format!("{}/{}/00000000", this_host(), child.id());
        child.wait().unwrap();
        let t = now();
        assert_eq!(ledger.take_lease(job::CRL_PUBLISH, &dead, t, t + 30).await.unwrap(), Some(1));
        assert_eq!(ledger.take_lease(job::AUDIT_SEAL, "elsewhere/1/00000000", t, t + 30).await.unwrap(), Some(1));
        let mut keeper = Keeper::new(ledger.clone(), Duration::from_secs(30));
        let crl = keeper.lease(job::CRL_PUBLISH);
        let seal = keeper.lease(job::AUDIT_SEAL);
        keeper.take_over_from_gone_processes().await;
        keeper.renew().await;
        assert!(crl.held(), "the killed predecessor's lease");
        assert_eq!(crl.fence(), Some(2));
        assert!(!seal.held(), "another host's lease runs out first");
    }

    #[tokio::test]
    async fn one_of_two_keepers_holds_each_job_and_the_other_takes_over_when_it_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::connect(&format!("sqlite://{}/l.db?mode=rwc", dir.path().display()), 2).await.unwrap();
        let mut a = Keeper::new(ledger.clone(), Duration::from_secs(30));
        let mut b = Keeper::new(ledger.clone(), Duration::from_secs(30));
        assert_ne!(a.holder(), b.holder());
        let (la, lb) = (a.lease(job::CRL_PUBLISH), b.lease(job::CRL_PUBLISH));
        assert!(!la.held() && la.fence().is_none());
        a.renew().await;
        b.renew().await;
        assert!(la.held() && !lb.held());
        assert_eq!(la.fence(), Some(1));
        let (stop_tx, stop_rx) = watch::channel(false);
        let run = tokio::spawn(a.run(stop_rx));
        stop_tx.send(true).unwrap();
        run.await.unwrap();
        assert!(!la.held(), "given up at shutdown");
        b.renew().await;
        assert!(lb.held());
        assert_eq!(lb.fence(), Some(2));
        assert_eq!(ledger.job_leases().await.unwrap()[0].holder, b.holder());
    }

    #[tokio::test]
    async fn a_job_waiting_for_its_lease_runs_once_it_is_taken_not_an_interval_later() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::connect(&format!("sqlite://{}/l.db?mode=rwc", dir.path().display()), 2).await.unwrap();
        let mut keeper = Keeper::new(ledger, Duration::from_secs(30));
        let lease = keeper.lease(job::CLM_POLICY);
        let mut hourly = tokio::time::interval(Duration::from_secs(3600));
        let waiting = tokio::spawn({
            let lease = lease.clone();
            async move {
                let started = Instant::now();
                lease.next(&mut hourly).await;
                started.elapsed()
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "the first tick passes while the lease is not held");
        keeper.renew().await;
        let waited = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }
}
