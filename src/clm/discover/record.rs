//! From a served chain to the inventory: parse the chain, judge it, and record the endpoint
//! (one ledger unit of work per endpoint).

use std::sync::Arc;

use serde::Serialize;

use super::{
    certinfo::CertInfo,
    chain::TrustStore,
    findings::{evaluate, Context, Finding},
    scan::{scan_all, ScanOptions, Served},
    DiscoverError, Target,
};
use crate::{
    audit::{AuditEvent, AuditKind},
    ledger::{EndpointRecorded, EndpointScan, ExternalSource, Ledger, LedgerError},
};

/// One endpoint's outcome: what it served and how the inventory took it, or its error.
#[derive(Debug, Serialize)]
pub struct EndpointReport {
    /// The endpoint.
    #[serde(flatten)]
    pub target: Target,
    /// What it served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observation: Option<Observation>,
    /// What the ledger made of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<EndpointRecorded>,
    /// Why it could not be scanned or recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Nothing listens there (connect refused or timed out).
    #[serde(skip)]
    pub no_listener: bool,
}

/// Scans `targets` and records every endpoint that served a certificate (one unit of work
/// each, as soon as its scan is done); `done` is called with each report as it is made.
/// Endpoints that fail keep their error in the report and the others go on.
pub async fn scan_and_record(
    ledger: &Ledger,
    targets: Vec<Target>,
    options: &ScanOptions,
    judge: &Judge,
    done: impl FnMut(&EndpointReport),
) -> Result<Vec<EndpointReport>, DiscoverError> {
    let (ledger, judge) = (ledger.clone(), judge.clone());
    let then = move |target: Target, result: Result<Served, DiscoverError>| {
        let (ledger, judge) = (ledger.clone(), judge.clone());
        async move { report(&ledger, &judge, target, result).await }
    };
    Ok(scan_all(targets, options, then, done).await?.into_iter().map(|(_, r)| r).collect())
}

/// Judges and records one scan result.
async fn report(
    ledger: &Ledger,
    judge: &Judge,
    target: Target,
    result: Result<Served, DiscoverError>,
) -> EndpointReport {
    let mut report =
        EndpointReport { target: target.clone(), observation: None, recorded: None, error: None, no_listener: false };
    match result.and_then(|served| observe(&target, &served, judge)) {
        Ok((observation, leaf)) => {
            match record(ledger, &target, &observation, &leaf, &judge.actor).await {
                Ok(r) => report.recorded = Some(r),
                Err(e) => report.error = Some(e.to_string()),
            }
            for f in &observation.findings {
                metrics::counter!("privca_discovery_findings_total", "finding" => f.as_str()).increment(1);
            }
            report.observation = Some(observation);
        }
        Err(e) => {
            report.no_listener = e.no_listener();
            report.error = Some(e.to_string());
        }
    }
    let result = if report.observation.is_some() {
        "certificate"
    } else if report.no_listener {
        "closed"
    } else {
        "error"
    };
    metrics::counter!("privca_discovery_endpoints_total", "result" => result).increment(1);
    report
}

/// The owner of certificates nobody has claimed yet.
pub const UNOWNED: &str = "unowned";

/// The tier of certificates nobody has classified yet.
pub const DEFAULT_TIER: &str = "internal";

/// Seconds before expiry from which a leaf is `expiring`: `days` when given, else the first
/// notice threshold of the tier discovered certificates get ([`DEFAULT_TIER`]), so that a scan
/// and the inventory call the same certificates expiring.
pub fn expiring_within(clm: &crate::config::clm::ClmConfig, days: Option<u32>) -> i64 {
    match days {
        Some(d) => i64::from(d) * 86_400,
        None => crate::clm::first_threshold(clm).of(DEFAULT_TIER),
    }
}

/// privca's own CA certificates (and the chains above them) plus the public webpki roots.
pub async fn trust_store(ledger: &Ledger) -> Result<TrustStore, LedgerError> {
    let mut trust = TrustStore::webpki();
    let mut own = Vec::new();
    for (der, chain_pem) in ledger.ca_certificate_chains().await? {
        own.extend(CertInfo::from_der(&der).ok());
        for block in crate::clm::import::pem_blocks(&chain_pem) {
            if let Ok(("CERTIFICATE", der)) = der::pem::decode_vec(block.as_bytes()).as_ref().map(|(l, d)| (*l, d)) {
                own.extend(CertInfo::from_der(der).ok());
            }
        }
    }
    trust.add_own(own);
    Ok(trust)
}

/// The leaf, as the summary shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Leaf {
    /// SHA-256 fingerprint.
    pub fingerprint_sha256: String,
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial, hex.
    pub serial: String,
    /// Subject alternative names.
    pub sans: Vec<String>,
    /// Key type and size.
    pub key_type: String,
    /// Signature algorithm.
    pub signature_algorithm: String,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
}

/// What one endpoint served and what was made of it.
#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    /// The address connected to.
    pub address: String,
    /// Negotiated protocol version.
    pub tls_version: String,
    /// Read by the legacy probe.
    pub legacy_probe: bool,
    /// The leaf.
    pub leaf: Leaf,
    /// Chain fingerprints, leaf first.
    pub chain: Vec<String>,
    /// Findings, sorted.
    pub findings: Vec<Finding>,
}

/// What to judge against and who records.
#[derive(Debug, Clone)]
pub struct Judge {
    /// Roots and known intermediates.
    pub trust: Arc<TrustStore>,
    /// A leaf expiring within this many seconds is `expiring`.
    pub expiring_within: i64,
    /// Audit actor (`cli:…`, `system`).
    pub actor: String,
}

/// Parses and judges what `target` served (pure but for the clock).
pub fn observe(target: &Target, served: &Served, judge: &Judge) -> Result<(Observation, CertInfo), DiscoverError> {
    let chain = served
        .chain
        .iter()
        .enumerate()
        .map(|(index, der)| {
            CertInfo::from_der(der).map_err(|e| DiscoverError::BadCertificate { index, reason: e.to_string() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let Some(leaf) = chain.first().cloned() else {
        return Err(DiscoverError::NoCertificate);
    };
    let ctx = Context {
        now: crate::ledger::now(),
        expiring_within: judge.expiring_within,
        name: target.name(),
        trust: &judge.trust,
    };
    let findings = evaluate(&chain, &served.tls_version, &ctx);
    let observation = Observation {
        address: served.address.to_string(),
        tls_version: served.tls_version.clone(),
        legacy_probe: served.legacy,
        leaf: Leaf {
            fingerprint_sha256: leaf.fingerprint_sha256.clone(),
            subject: leaf.subject.clone(),
            issuer: leaf.issuer.clone(),
            serial: leaf.serial.clone(),
            sans: leaf.sans.clone(),
            key_type: leaf.key_type.clone(),
            signature_algorithm: leaf.signature_algorithm.clone(),
            not_before: leaf.not_before,
            not_after: leaf.not_after,
        },
        chain: chain.iter().map(|c| c.fingerprint_sha256.clone()).collect(),
        findings,
    };
    Ok((observation, leaf))
}

/// Records one observed endpoint in the ledger (one unit of work).
pub async fn record(
    ledger: &Ledger,
    target: &Target,
    observation: &Observation,
    leaf: &CertInfo,
    actor: &str,
) -> Result<EndpointRecorded, DiscoverError> {
    let scan = EndpointScan {
        host: target.host.clone(),
        port: target.port,
        sni: target.sni.clone().unwrap_or_default(),
        chain: observation.chain.clone(),
        tls_version: Some(observation.tls_version.clone()),
        findings: observation.findings.iter().map(|f| f.as_str().to_owned()).collect(),
    };
    let event = AuditEvent::new(AuditKind::EndpointSeen, actor).detail(serde_json::json!({
        "endpoint": target.label(),
        "fingerprint_sha256": observation.leaf.fingerprint_sha256,
        "subject": observation.leaf.subject,
        "tls_version": observation.tls_version,
        "findings": scan.findings,
    }));
    let external = leaf.external(ExternalSource::Discovery, UNOWNED, DEFAULT_TIER);
    Ok(ledger.record_endpoint(&scan, &external, &event).await?)
}
