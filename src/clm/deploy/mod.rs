//! Deployment verification: after a renewal, are the endpoints where the predecessor was seen
//! serving the successor properly? Each endpoint recorded (by discovery) for a certificate
//! that has a successor, or for a successor itself, is scanned again with the discovery
//! scanner (so its endpoint row is updated too) and [`judge`]d: the served leaf is the newest
//! successor, the chain is complete, the name matches, and the successor's OCSP responder
//! (the AIA URL, asked over HTTP as a relying party would, [`ocsp`]) answers `good`. Each
//! check is stored with its time; a failed one queues a `deployment-failed` notice to the
//! owner, once per successor, endpoint and day. `privca clm verify-deployment` runs it on
//! demand; the policy job of `privca serve` runs it for the endpoints not verified yet whose
//! successor is at least [`GRACE`] old (time for its owner to deploy it).

pub mod judge;
pub mod ocsp;

use std::{collections::HashMap, sync::Arc, time::Duration};

use self::{
    judge::{judge, Expected, OcspOutcome, Seen},
    ocsp::OcspCheckError,
};
use super::{
    discover::{
        certinfo::CertInfo,
        chain::{signed_by, Signature},
        record::{expiring_within, scan_and_record, trust_store, EndpointReport, Judge},
        scan::ScanOptions,
        DiscoverError, Target,
    },
    events::candidate,
    notify::{http_client, NotifyError},
    policy::{owner_record, route, Message},
    templates::{Templates, Vars},
};
use crate::{
    config::clm::ClmConfig,
    ledger::{CertRecord, CertStatus, DeploymentCheck, DeploymentFailure, Ledger, LedgerError, NewMessage},
};

/// Time allowed for one OCSP request.
const OCSP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long after a successor's notBefore the scheduled run starts checking its deployment.
pub const GRACE: i64 = 86_400;

/// Renewals followed from a certificate to its newest successor.
const MAX_RENEWALS: usize = 16;

/// Why verification could not run (a single endpoint's problems are failed checks instead).
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The scanner could not be set up.
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    /// The HTTP client could not be set up.
    #[error(transparent)]
    Http(#[from] NotifyError),
}

/// Which endpoints to verify.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only endpoints of this certificate (predecessor or successor serial).
    pub serial: Option<String>,
    /// Skip endpoints already verified for their successor (the scheduled run).
    pub pending_only: bool,
    /// Only successors valid from before this time (the scheduled run leaves owners
    /// [`GRACE`] to deploy a new certificate before it checks).
    pub issued_before: Option<i64>,
    /// Audit actor of the endpoint records.
    pub actor: String,
}

/// One endpoint to verify.
struct Plan {
    target: Target,
    successor: CertRecord,
    predecessor: Option<CertRecord>,
    predecessor_serial: String,
}

/// What a verification run did.
#[derive(Debug, Default)]
pub struct Verification {
    /// The checks, as stored.
    pub checks: Vec<DeploymentCheck>,
    /// Notices queued for the owners.
    pub queued: u64,
}

/// Verifies the selected endpoints at `now` and records each check.
pub async fn verify(
    ledger: &Ledger,
    config: &ClmConfig,
    templates: &Templates,
    selection: &Selection,
    now: i64,
) -> Result<Verification, DeployError> {
    let plans = plans(ledger, selection).await?;
    let mut run = Verification::default();
    if plans.is_empty() {
        return Ok(run);
    }
    let judge_cfg = Judge {
        trust: Arc::new(trust_store(ledger).await?),
        expiring_within: expiring_within(config, None),
        actor: selection.actor.clone(),
    };
    let targets = plans.iter().map(|p| p.target.clone()).collect();
    let reports = scan_and_record(ledger, targets, &ScanOptions::default(), &judge_cfg, |_| {}).await?;
    let issuers = issuers(ledger).await?;
    let http = http_client(OCSP_TIMEOUT)?;
    let owners: HashMap<_, _> = ledger.owners().await?.into_iter().map(|o| (o.name.clone(), o)).collect();
    for (plan, report) in plans.iter().zip(&reports) {
        let s = &plan.successor;
        let served = report.observation.as_ref().map(|o| o.leaf.fingerprint_sha256.as_str());
        let ocsp = if served == Some(s.fingerprint_sha256.as_str()) {
            match ocsp_status(&http, s, &issuers, now).await {
                Ok(status) => OcspOutcome::Status(status),
                Err(e) => OcspOutcome::Error(e.to_string()),
            }
        } else {
            OcspOutcome::NotAsked
        };
        let failures = judge(&expected(plan), seen(report), &ocsp);
        let check = DeploymentCheck {
            id: 0,
            fingerprint: s.fingerprint_sha256.clone(),
            serial: s.serial.clone(),
            predecessor_serial: plan.predecessor_serial.clone(),
            host: plan.target.host.clone(),
            port: plan.target.port,
            sni: plan.target.sni.clone().unwrap_or_default(),
            checked_at: now,
            ok: failures.is_empty(),
            served_fingerprint: served.map(str::to_owned),
            failures,
        };
        let messages = if check.ok { Vec::new() } else { notice(config, templates, &owners, plan, &check, now) };
        ledger.record_deployment_check(&check, &messages).await?;
        run.queued += messages.iter().filter(|m| m.state == "pending").count() as u64;
        metrics::counter!("privca_clm_deployment_checks_total", "result" => if check.ok { "ok" } else { "failed" })
            .increment(1);
        run.checks.push(check);
    }
    Ok(run)
}

fn expected(plan: &Plan) -> Expected<'_> {
    Expected {
        successor: &plan.successor.fingerprint_sha256,
        predecessor: plan.predecessor.as_ref().map(|p| (p.fingerprint_sha256.as_str(), p.serial.as_str())),
        name: plan.target.name(),
    }
}

fn seen(report: &EndpointReport) -> Seen<'_> {
    match (&report.observation, &report.error) {
        (Some(o), _) => Seen::Served { leaf: &o.leaf.fingerprint_sha256, findings: &o.findings },
        (None, e) => Seen::Error(e.as_deref().unwrap_or("no certificate")),
    }
}

/// The endpoints to verify: each one serving a certificate with a successor (expecting its
/// newest successor), or serving a successor (expecting it still).
async fn plans(ledger: &Ledger, selection: &Selection) -> Result<Vec<Plan>, LedgerError> {
    let wanted = selection.serial.as_deref().map(str::to_ascii_lowercase);
    let mut certs: HashMap<String, Option<CertRecord>> = HashMap::new();
    let mut out = Vec::new();
    for t in ledger.deployment_targets().await? {
        let (successor, predecessor) = match (&t.successor, &t.predecessor) {
            (Some(s), _) => (newest(ledger, s).await?, t.served_serial.clone()),
            (None, Some(p)) => (t.served_serial.clone(), p.clone()),
            (None, None) => continue,
        };
        if wanted.as_ref().is_some_and(|w| ![&successor, &predecessor, &t.served_serial].contains(&w)) {
            continue;
        }
        let Some(successor) = cached(ledger, &mut certs, &successor).await? else { continue };
        if selection.issued_before.is_some_and(|t| successor.not_before > t) {
            continue;
        }
        // A successor revoked since it was recorded replaces nothing; served, it is checked
        // (and its OCSP answer says revoked).
        if successor.status == CertStatus::Revoked && successor.serial != t.served_serial {
            continue;
        }
        if selection.pending_only
            && ledger.deployment_verified(&successor.fingerprint_sha256, &t.host, t.port, &t.sni).await?
        {
            continue;
        }
        out.push(Plan {
            target: Target { host: t.host, port: t.port, sni: (!t.sni.is_empty()).then_some(t.sni) },
            successor,
            predecessor: cached(ledger, &mut certs, &predecessor).await?,
            predecessor_serial: predecessor,
        });
    }
    Ok(out)
}

/// The newest certificate down the renewal chain from `serial`.
async fn newest(ledger: &Ledger, serial: &str) -> Result<String, LedgerError> {
    let mut current = serial.to_owned();
    for _ in 0..MAX_RENEWALS {
        match ledger.successor(&current).await? {
            Some(next) if next != current => current = next,
            _ => break,
        }
    }
    Ok(current)
}

async fn cached(
    ledger: &Ledger,
    certs: &mut HashMap<String, Option<CertRecord>>,
    serial: &str,
) -> Result<Option<CertRecord>, LedgerError> {
    if let Some(c) = certs.get(serial) {
        return Ok(c.clone());
    }
    let c = ledger.certificate(serial).await?;
    certs.insert(serial.to_owned(), c.clone());
    Ok(c)
}

/// privca's CA certificates (and the chains above them), parsed.
async fn issuers(ledger: &Ledger) -> Result<Vec<CertInfo>, LedgerError> {
    let mut out = Vec::new();
    for (der, chain_pem) in ledger.ca_certificate_chains().await? {
        out.extend(CertInfo::from_der(&der).ok());
        for block in super::import::pem_blocks(&chain_pem) {
            if let Ok(("CERTIFICATE", der)) = der::pem::decode_vec(block.as_bytes()).as_ref().map(|(l, d)| (*l, d)) {
                out.extend(CertInfo::from_der(der).ok());
            }
        }
    }
    Ok(out)
}

/// The OCSP status of `cert` from the responder its AIA names.
async fn ocsp_status(
    http: &reqwest::Client,
    cert: &CertRecord,
    issuers: &[CertInfo],
    now: i64,
) -> Result<ocsp::Status, OcspCheckError> {
    let leaf = CertInfo::from_der(&cert.der).map_err(|e| OcspCheckError::Certificate(e.to_string()))?;
    let issuer = issuers
        .iter()
        .find(|i| i.subject_der == leaf.issuer_der && signed_by(&leaf, &i.spki_der) == Signature::Valid)
        .ok_or_else(|| OcspCheckError::Certificate(format!("issuer `{}` not found", leaf.issuer)))?;
    ocsp::check(http, &cert.der, &issuer.der, now).await
}

/// The owner's `deployment-failed` notice about `check` (one per successor, endpoint and day).
fn notice(
    config: &ClmConfig,
    templates: &Templates,
    owners: &HashMap<String, crate::ledger::Owner>,
    plan: &Plan,
    check: &DeploymentCheck,
    now: i64,
) -> Vec<NewMessage> {
    let c = candidate(&plan.successor);
    let lines: Vec<String> =
        check.failures.iter().map(|f: &DeploymentFailure| format!("  - {}: {}", f.check, f.detail)).collect();
    let vars = Vars::of(&c, now, None, None)
        .with("endpoint", plan.target.label())
        .with("failures", lines.join("\n"))
        .with("predecessor", plan.predecessor_serial.clone());
    let (subject, body) = templates.render("deployment-failed", &vars);
    let key = format!(
        "deployment-failed:{}:{}:{}:{}:{}",
        c.fingerprint,
        check.host,
        check.port,
        check.sni,
        now.div_euclid(86_400)
    );
    let m = Message {
        event: "deployment-failed",
        key: &key,
        fingerprint: Some(&c.fingerprint),
        owner: &c.owner,
        subject,
        body,
    };
    let recipient = owner_record(owners, &c.owner, &config.security_lead);
    let mut out = Vec::new();
    route(&m, true, recipient, &config.security_lead, &config.tier(&c.tier).channels, &mut out);
    out
}
