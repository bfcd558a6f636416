//! Background jobs of `privca serve`, each stopped by the shutdown signal: the audit sealer
//! (links new audit rows into the hash chain and signs a checkpoint every
//! `audit.seal_interval`) and the CRL publisher ([`crl_publish`]).

pub mod crl_publish;

use tokio::{sync::watch, task::JoinHandle};

use crate::{app::App, ca::CertificateAuthority};

/// Starts every job; the handles finish after `stop` flips to `true`.
pub fn spawn(app: &App, ca: &CertificateAuthority, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    vec![tokio::spawn(audit_sealer(app.clone(), stop.clone())), tokio::spawn(crl_publish::run(ca.clone(), stop))]
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
