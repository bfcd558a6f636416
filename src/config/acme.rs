//! `[acme]`: the ACME server (mounted on the HTTPS listener under `/acme`), its validation
//! settings and the ARI renewal-window policy per CLM tier.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use serde::Deserialize;

use super::{duration, ConfigError};
use crate::policy::{Profile, Tier};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawAcme {
    enabled: bool,
    profiles: Vec<String>,
    terms_of_service: Option<String>,
    website: Option<String>,
    caa_identities: Vec<String>,
    eab_required: bool,
    order_lifetime: String,
    authz_lifetime: String,
    authz_reuse: bool,
    nonce_lifetime: String,
    orders_per_hour: u32,
    retry_after: String,
    cleanup_interval: String,
    cleanup_retention: String,
    skip_validation: bool,
    validation: RawValidation,
}

impl Default for RawAcme {
    fn default() -> Self {
        Self {
            enabled: true,
            profiles: vec!["tls-server".into()],
            terms_of_service: None,
            website: None,
            caa_identities: vec![],
            eab_required: false,
            order_lifetime: "1d".into(),
            authz_lifetime: "7d".into(),
            authz_reuse: true,
            nonce_lifetime: "1h".into(),
            orders_per_hour: 300,
            retry_after: "1s".into(),
            cleanup_interval: "1h".into(),
            cleanup_retention: "7d".into(),
            skip_validation: false,
            validation: RawValidation::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawValidation {
    resolver: Option<String>,
    http01_port: u16,
    tlsalpn01_port: u16,
    timeout: String,
    attempts: u32,
    retry_delay: String,
    concurrency: usize,
    deny_ranges: Vec<String>,
}

impl Default for RawValidation {
    fn default() -> Self {
        Self {
            resolver: None,
            http01_port: 80,
            tlsalpn01_port: 443,
            timeout: "10s".into(),
            attempts: 2,
            retry_delay: "2s".into(),
            concurrency: 32,
            deny_ranges: vec![],
        }
    }
}

/// The ARI suggested window (RFC 9773 §4.2) as fractions of a certificate's lifetime: derived
/// from its CLM tier's `renewal_target` ([`super::clm::TierPolicy::ari_window`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AriWindow {
    /// Window start, fraction of the lifetime elapsed (0–1).
    pub start: f64,
    /// Window end.
    pub end: f64,
}

impl AriWindow {
    /// The window of a certificate valid from `not_before` to `not_after` (Unix seconds): at
    /// least one second long.
    pub fn over(&self, not_before: i64, not_after: i64) -> (i64, i64) {
        let life = (not_after - not_before) as f64;
        let start = not_before + (life * self.start) as i64;
        (start, (not_before + (life * self.end) as i64).max(start + 1))
    }
}

/// `[acme]`.
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    /// Serve ACME.
    pub enabled: bool,
    /// Profiles offered (`meta.profiles`); the first is the default.
    pub profiles: Vec<String>,
    /// `meta.termsOfService`.
    pub terms_of_service: Option<String>,
    /// `meta.website`.
    pub website: Option<String>,
    /// `meta.caaIdentities`.
    pub caa_identities: Vec<String>,
    /// Refuse accounts without external account binding.
    pub eab_required: bool,
    /// Order lifetime.
    pub order_lifetime: Duration,
    /// Authorization lifetime.
    pub authz_lifetime: Duration,
    /// Reuse valid authorizations.
    pub authz_reuse: bool,
    /// Nonce lifetime.
    pub nonce_lifetime: Duration,
    /// New orders per account and hour (0: unlimited).
    pub orders_per_hour: u32,
    /// `Retry-After` on processing objects.
    pub retry_after: Duration,
    /// How often expired ACME objects and used nonces are deleted.
    pub cleanup_interval: Duration,
    /// How long expired orders and authorizations are kept.
    pub cleanup_retention: Duration,
    /// Dev only: skip challenge validation.
    pub skip_validation: bool,
    /// DNS server for validation (`None`: the system resolver).
    pub resolver: Option<SocketAddr>,
    /// http-01 port.
    pub http01_port: u16,
    /// tls-alpn-01 port.
    pub tlsalpn01_port: u16,
    /// Per-attempt validation timeout.
    pub timeout: Duration,
    /// Attempts per validation.
    pub attempts: u32,
    /// Pause between attempts.
    pub retry_delay: Duration,
    /// Validations at once.
    pub concurrency: usize,
    /// Address ranges http-01 and tls-alpn-01 validation never connects to (nor follows a
    /// redirect to); empty by default.
    pub deny_ranges: Vec<privca_acme::validate::IpRange>,
    /// ARI windows per configured tier (from `[clm.tiers.<name>].renewal_target`).
    pub ari: BTreeMap<Tier, AriWindow>,
}

pub(crate) fn build(
    raw: RawAcme,
    dev: bool,
    profiles: &BTreeMap<String, Profile>,
    clm: &super::clm::ClmConfig,
) -> Result<AcmeConfig, ConfigError> {
    let d = |key: &str, v: &str| duration::parse(&format!("acme.{key}"), v);
    if raw.profiles.is_empty() && raw.enabled {
        return Err(ConfigError::invalid("acme.profiles", "name at least one profile"));
    }
    for p in &raw.profiles {
        if !profiles.contains_key(p) {
            return Err(ConfigError::invalid("acme.profiles", format!("unknown profile `{p}`")));
        }
    }
    if raw.skip_validation && !dev {
        return Err(ConfigError::invalid("acme.skip_validation", "is only allowed with dev = true"));
    }
    let v = &raw.validation;
    let resolver = v
        .resolver
        .as_deref()
        .map(|r| r.parse::<SocketAddr>())
        .transpose()
        .map_err(|_| ConfigError::invalid("acme.validation.resolver", "must be an address like 127.0.0.1:53"))?;
    if v.attempts == 0 {
        return Err(ConfigError::invalid("acme.validation.attempts", "must be at least 1"));
    }
    if v.concurrency == 0 {
        return Err(ConfigError::invalid("acme.validation.concurrency", "must be at least 1"));
    }
    let deny_ranges = v
        .deny_ranges
        .iter()
        .map(|r| r.parse().map_err(|e: String| ConfigError::invalid("acme.validation.deny_ranges", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let ari = clm.tiers.iter().map(|(t, p)| (t.clone(), p.ari_window())).collect();
    Ok(AcmeConfig {
        enabled: raw.enabled,
        profiles: raw.profiles,
        terms_of_service: raw.terms_of_service.filter(|s| !s.is_empty()),
        website: raw.website.filter(|s| !s.is_empty()),
        caa_identities: raw.caa_identities,
        eab_required: raw.eab_required,
        order_lifetime: d("order_lifetime", &raw.order_lifetime)?,
        authz_lifetime: d("authz_lifetime", &raw.authz_lifetime)?,
        authz_reuse: raw.authz_reuse,
        nonce_lifetime: d("nonce_lifetime", &raw.nonce_lifetime)?,
        orders_per_hour: raw.orders_per_hour,
        retry_after: d("retry_after", &raw.retry_after)?,
        cleanup_interval: d("cleanup_interval", &raw.cleanup_interval)?,
        cleanup_retention: d("cleanup_retention", &raw.cleanup_retention)?,
        skip_validation: raw.skip_validation,
        resolver,
        http01_port: v.http01_port,
        tlsalpn01_port: v.tlsalpn01_port,
        timeout: d("validation.timeout", &v.timeout)?,
        attempts: v.attempts,
        retry_delay: d("validation.retry_delay", &v.retry_delay)?,
        concurrency: v.concurrency,
        deny_ranges,
        ari,
    })
}
