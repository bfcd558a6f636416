//! Background jobs of `privca serve`, each stopped by the shutdown signal: ACME cleanup, the audit sealer
//! (links new audit rows into the hash chain and signs a checkpoint every
//! `audit.seal_interval`), the CRL publisher ([`crl_publish`]), the OCSP pre-signer
//! ([`ocsp_presign`]), with SCEP enabled the RA certificate's renewal, and (started by
//! `server::serve` with the listeners) the renewal of privca's own TLS certificate
//! ([`tls_refresh`]), with `clm.enabled` the CLM expiry policy and notification delivery
//! ([`clm`]), with `clm.discovery.enabled` scheduled discovery scans ([`discovery`]), and with
//! `reports.schedule` the monthly or quarterly compliance report
//! ([`crate::admin::reports::schedule`]). With several instances on one ledger each of these
//! runs on the one instance holding its lease ([`lease`]), except the OCSP signing of the
//! instance's own commits and the checks of privca's own certificates, which every instance
//! makes: its TLS certificate is its own, while the SCEP RA and OCSP responder certificates are
//! the ledger's newest, a due one reissued once across the cluster ([`crate::ca::own_cert`]).

pub mod clm;
pub mod crl_publish;
pub mod discovery;
pub mod lease;
pub mod ocsp_presign;

use std::time::Duration;

use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use self::lease::job;
use crate::{
    adapters::scep::ScepAdapter,
    app::App,
    ca::{changes::LedgerChange, ocsp::OcspService, CertificateAuthority},
    server::tls::ServerCert,
};

/// How often the SCEP RA certificate is checked. It is reissued once a third of its lifetime is
/// left (four months of the default 365 days), and after an issuer rollover the replaced CA
/// stays in the GetCACert chain until the reissued one is served, so an hour is never late.
const SCEP_RA_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// How often privca's own TLS certificate is checked. It is reissued once a third of its
/// lifetime is left (30 days of the default 90), so an hour is never late.
const TLS_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// Keeps the server's TLS certificate current ([`ServerCert::refresh`]): new handshakes get a
/// reissued certificate at once.
pub async fn tls_refresh(cert: ServerCert, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TLS_CHECK_INTERVAL, TLS_CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => match cert.refresh().await {
                Ok(true) => tracing::info!(serial = ?cert.serial(), "the server's TLS certificate was reissued"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "checking the server's TLS certificate failed"),
            },
            _ = stop.changed() => return,
        }
    }
}

/// Starts every job; the handles finish after `stop` flips to `true`. The cluster-wide jobs
/// run only while this instance holds their lease ([`lease`]); the leases are asked for once
/// before the jobs start, so a single instance runs them from its first tick.
pub async fn spawn(
    app: &App,
    ca: &CertificateAuthority,
    ocsp: &OcspService,
    scep: Option<ScepAdapter>,
    changes: mpsc::Receiver<LedgerChange>,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut keeper = lease::Keeper::new(app.ledger.clone(), app.config.database.job_lease);
    let mut jobs = vec![
        tokio::spawn(interrupted_reservations(app.clone(), keeper.lease(job::INTERRUPTED_RESERVATIONS), stop.clone())),
        tokio::spawn(acme_cleanup(app.clone(), keeper.lease(job::ACME_CLEANUP), stop.clone())),
        tokio::spawn(audit_sealer(app.clone(), keeper.lease(job::AUDIT_SEAL), stop.clone())),
        tokio::spawn(crl_publish::run(ca.clone(), keeper.lease(job::CRL_PUBLISH), stop.clone())),
        tokio::spawn(discovery::run(app.clone(), keeper.lease(job::DISCOVERY), stop.clone())),
        tokio::spawn(crate::admin::reports::schedule::run(app.clone(), keeper.lease(job::REPORTS), stop.clone())),
    ];
    if let Some(scep) = scep {
        jobs.push(tokio::spawn(scep_ra_refresh(scep, stop.clone())));
    }
    if app.config.clm.enabled {
        match crate::clm::templates::Templates::load(app.config.clm.templates_dir.as_deref()) {
            Ok(templates) => {
                let policy = keeper.lease(job::CLM_POLICY);
                jobs.push(tokio::spawn(clm::policy(app.clone(), templates.clone(), policy, stop.clone())));
                match crate::clm::notify::Notifier::new(&app.config.clm) {
                    Ok(notifier) => {
                        let delivery = keeper.lease(job::CLM_DELIVERY);
                        jobs.push(tokio::spawn(clm::delivery(app.clone(), notifier, templates, delivery, stop.clone())))
                    }
                    Err(e) => tracing::error!(error = %e, "CLM: notifications are not delivered"),
                }
            }
            Err(e) => tracing::error!(
                error = %e,
                "CLM: cannot read clm.templates_dir; the policy job is not running and notifications are not delivered"
            ),
        }
    }
    jobs.push(tokio::spawn(ocsp_presign::run(
        ocsp.clone(),
        app.ledger.clone(),
        app.config.ocsp.clone(),
        changes,
        keeper.lease(job::OCSP_SWEEP),
        stop.clone(),
    )));
    keeper.take_over_from_gone_processes().await;
    keeper.renew().await;
    jobs.push(tokio::spawn(keeper.run(stop)));
    jobs
}

/// Keeps the SCEP RA certificate current ([`ScepAdapter::refresh_ra_certificate`]).
async fn scep_ra_refresh(scep: ScepAdapter, mut stop: watch::Receiver<bool>) {
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + SCEP_RA_CHECK_INTERVAL, SCEP_RA_CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => match scep.refresh_ra_certificate().await {
                Ok(true) => tracing::info!("the SCEP RA certificate was reissued"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "checking the SCEP RA certificate failed"),
            },
            _ = stop.changed() => return,
        }
    }
}

/// How old a reservation still `reserved` must be to count as interrupted: twice
/// `server.request_timeout`, at least ten seconds. Signing and committing take milliseconds and
/// a request ends at its timeout; a reservation aborted while its issuance is somehow still
/// running only fails that issuance, since a commit needs its reservation open. The same holds
/// for a CRL's reservation: a complete CRL of a million entries is built and signed in about
/// a second, and one aborted while still being built fails that publication (the next tick
/// makes another, under a new cRLNumber).
pub fn interrupted_after(config: &crate::config::Config) -> Duration {
    (config.server.request_timeout * 2).max(Duration::from_secs(10))
}

/// Aborts interrupted reservations, of certificates and of CRLs, at start and every half of
/// [`interrupted_after`] (a crashed process, on this instance or another, leaves them; until
/// then a SCEP transaction cannot be retried, and a CRL stays `reserved`).
async fn interrupted_reservations(app: App, lease: lease::Lease, mut stop: watch::Receiver<bool>) {
    let after = interrupted_after(&app.config);
    let mut tick = tokio::time::interval(after / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = lease.next(&mut tick) => {
                let event = crate::audit::AuditEvent::new(crate::audit::AuditKind::Failed, crate::ca::Requester::system().to_string());
                let before = crate::ledger::now() - after.as_secs() as i64;
                match app.ledger.abort_interrupted_reservations(before, &event).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(aborted = n, "interrupted reservations aborted"),
                    Err(e) => tracing::warn!(error = %e, "aborting interrupted reservations failed"),
                }
                match app.ledger.abort_interrupted_crls(before, &event).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(aborted = n, "interrupted CRL reservations aborted"),
                    Err(e) => tracing::warn!(error = %e, "aborting interrupted CRL reservations failed"),
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Deletes used ACME nonces past expiry and orders/authorizations expired longer than
/// `acme.cleanup_retention`.
async fn acme_cleanup(app: App, lease: lease::Lease, mut stop: watch::Receiver<bool>) {
    let cfg = &app.config.acme;
    if !cfg.enabled {
        return;
    }
    let mut tick = tokio::time::interval(cfg.cleanup_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let retention = cfg.cleanup_retention.as_secs() as i64;
    loop {
        tokio::select! {
            _ = lease.next(&mut tick) => {
                match app.ledger.acme_cleanup(retention).await {
                    Ok(done) => tracing::debug!(nonces = done.nonces, orders = done.orders, authzs = done.authzs, "ACME cleanup"),
                    Err(e) => tracing::warn!(error = %e, "ACME cleanup failed"),
                }
            }
            _ = stop.changed() => return,
        }
    }
}

async fn audit_sealer(app: App, lease: lease::Lease, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(app.config.audit.seal_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = lease.next(&mut tick) => app.seal().await,
            _ = stop.changed() => return,
        }
    }
}
