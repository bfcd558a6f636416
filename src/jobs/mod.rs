//! Background jobs of `privca serve`, each stopped by the shutdown signal: ACME cleanup, the audit sealer
//! (links new audit rows into the hash chain and signs a checkpoint every
//! `audit.seal_interval`), the CRL publisher ([`crl_publish`]) and the OCSP pre-signer
//! ([`ocsp_presign`]).

pub mod crl_publish;
pub mod ocsp_presign;

use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use crate::{
    app::App,
    ca::{changes::LedgerChange, ocsp::OcspService, CertificateAuthority},
};

/// Starts every job; the handles finish after `stop` flips to `true`.
pub fn spawn(
    app: &App,
    ca: &CertificateAuthority,
    ocsp: &OcspService,
    changes: mpsc::Receiver<LedgerChange>,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(acme_cleanup(app.clone(), stop.clone())),
        tokio::spawn(audit_sealer(app.clone(), stop.clone())),
        tokio::spawn(crl_publish::run(ca.clone(), stop.clone())),
        tokio::spawn(ocsp_presign::run(ocsp.clone(), app.ledger.clone(), app.config.ocsp.clone(), changes, stop)),
    ]
}

/// Deletes used ACME nonces past expiry and orders/authorizations expired longer than
/// `acme.cleanup_retention`.
async fn acme_cleanup(app: App, mut stop: watch::Receiver<bool>) {
    let cfg = &app.config.acme;
    if !cfg.enabled {
        return;
    }
    let mut tick = tokio::time::interval(cfg.cleanup_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let retention = cfg.cleanup_retention.as_secs() as i64;
    loop {
        tokio::select! {
            _ = tick.tick() => match app.ledger.acme_cleanup(retention).await {
                Ok(done) => tracing::debug!(nonces = done.nonces, orders = done.orders, authzs = done.authzs, "ACME cleanup"),
                Err(e) => tracing::warn!(error = %e, "ACME cleanup failed"),
            },
            _ = stop.changed() => return,
        }
    }
}

async fn audit_sealer(app: App, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(app.config.audit.seal_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => app.seal().await,
            _ = stop.changed() => return,
        }
    }
}
