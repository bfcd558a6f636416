//! `[clm.discovery]`: discovery scans `privca serve` runs on a schedule (`jobs::discovery`),
//! with the same targets and options as `privca discover`. The targets are parsed, and CIDR
//! ranges expanded and held to `max_addresses`, when the config loads.

use std::time::Duration;

use serde::Deserialize;

use super::{duration, ConfigError};
use crate::clm::discover::{
    expand_cidr, parse_targets, scan::ScanOptions, starttls::Starttls, with_sni, Target, DEFAULT_MAX_ADDRESSES,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawDiscovery {
    enabled: bool,
    interval: String,
    targets: Vec<String>,
    cidrs: Vec<String>,
    ports: Vec<u16>,
    sni: Vec<String>,
    starttls: Option<String>,
    concurrency: usize,
    connect_timeout: String,
    handshake_timeout: String,
    max_addresses: u64,
    expiring_days: Option<u32>,
}

impl Default for RawDiscovery {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: "24h".into(),
            targets: Vec::new(),
            cidrs: Vec::new(),
            ports: vec![443],
            sni: Vec::new(),
            starttls: None,
            concurrency: 64,
            connect_timeout: "3s".into(),
            handshake_timeout: "5s".into(),
            max_addresses: DEFAULT_MAX_ADDRESSES,
            expiring_days: None,
        }
    }
}

/// Scheduled discovery.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Whether `privca serve` scans at all.
    pub enabled: bool,
    /// Time between the starts of two scans (the first one runs at start-up).
    pub interval: Duration,
    /// Every endpoint scanned.
    pub targets: Vec<Target>,
    /// Concurrency, timeouts, STARTTLS.
    pub options: ScanOptions,
    /// A leaf expiring within this many days is reported as expiring (default: the first
    /// notice threshold of the `internal` tier, the tier discovered certificates get).
    pub expiring_days: Option<u32>,
}

impl Default for DiscoveryConfig {
    /// Off, as without a `[clm.discovery]` section.
    fn default() -> Self {
        Self {
            enabled: false,
            interval: Duration::from_secs(86_400),
            targets: Vec::new(),
            options: ScanOptions::default(),
            expiring_days: None,
        }
    }
}

/// Validates `[clm.discovery]`.
pub(crate) fn build(raw: &RawDiscovery) -> Result<DiscoveryConfig, ConfigError> {
    let key = |k: &str| format!("clm.discovery.{k}");
    let mut endpoints = parse_targets(&raw.targets).map_err(|e| ConfigError::invalid(key("targets"), e.to_string()))?;
    if raw.ports.contains(&0) {
        return Err(ConfigError::invalid(key("ports"), "port 0"));
    }
    for cidr in &raw.cidrs {
        endpoints.extend(
            expand_cidr(cidr, &raw.ports, raw.max_addresses)
                .map_err(|e| ConfigError::invalid(key("cidrs"), e.to_string()))?,
        );
    }
    let starttls = match raw.starttls.as_deref() {
        None => None,
        Some("smtp") => Some(Starttls::Smtp),
        Some("imap") => Some(Starttls::Imap),
        Some("ldap") => Some(Starttls::Ldap),
        Some(other) => return Err(ConfigError::invalid(key("starttls"), format!("`{other}`: use smtp, imap or ldap"))),
    };
    if raw.concurrency == 0 {
        return Err(ConfigError::invalid(key("concurrency"), "must be at least 1"));
    }
    let config = DiscoveryConfig {
        enabled: raw.enabled,
        interval: duration::parse(&key("interval"), &raw.interval)?,
        targets: with_sni(endpoints, &raw.sni),
        options: ScanOptions {
            concurrency: raw.concurrency,
            connect_timeout: duration::parse(&key("connect_timeout"), &raw.connect_timeout)?,
            handshake_timeout: duration::parse(&key("handshake_timeout"), &raw.handshake_timeout)?,
            starttls,
        },
        expiring_days: raw.expiring_days,
    };
    if config.enabled && config.targets.is_empty() {
        return Err(ConfigError::invalid(key("targets"), "discovery is enabled but no targets or cidrs are given"));
    }
    if config.interval < Duration::from_secs(60) {
        return Err(ConfigError::invalid(key("interval"), "at least 1m"));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml_text: &str) -> RawDiscovery {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn targets_ranges_and_refusals() {
        let c = build(&raw(
            "enabled = true\ntargets = [\"mail.example.test:25\"]\ncidrs = [\"192.0.2.0/30\"]\nports = [443, 8443]\nstarttls = \"smtp\"",
        ))
        .unwrap();
        assert_eq!(c.targets.len(), 1 + 2 * 2);
        assert_eq!(c.options.starttls, Some(Starttls::Smtp));
        assert_eq!(c.interval, Duration::from_secs(86_400));
        assert!(!build(&RawDiscovery::default()).unwrap().enabled);

        let e = build(&raw("cidrs = [\"10.0.0.0/8\"]")).unwrap_err().to_string();
        assert!(e.contains("clm.discovery.cidrs") && e.contains("CIDR 10.0.0.0/8 has 16777216 addresses"), "{e}");
        let e = build(&raw("enabled = true")).unwrap_err().to_string();
        assert!(e.contains("no targets"), "{e}");
        assert!(build(&raw("starttls = \"pop3\"")).is_err());
        assert!(build(&raw("targets = [\"host:99999\"]")).is_err());
        assert!(toml::from_str::<RawDiscovery>("target = []").is_err(), "unknown keys are refused");
    }
}
