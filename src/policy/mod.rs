//! Policy: certificate profiles, identifier rules, key rules and what an EST client
//! certificate may do. Pure functions over data
//! loaded from `conf/profiles/*.toml`; `ca::prepare` applies them. Every refusal names the
//! rule that failed.

pub mod client_cert;
pub mod identifiers;
pub mod keys;
pub mod profile;

use serde::Serialize;

pub use self::profile::{CnToSan, Profile, RaRole, SanType, SubjectAttribute, OCSP_RESPONDER_PROFILE};

/// CLM tier of a certificate: drives its expiry policy, escalation and ARI window. A name from
/// `[clm.tiers.<name>]`; `customer-facing`, `network-critical` and `internal` always exist.
/// Any name read from the ledger is accepted (a tier dropped from the configuration keeps the
/// policy of an unconfigured tier); names in configuration and on the command line are checked
/// against the configured tiers where they are read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Tier(String);

impl Tier {
    /// Customer-facing services.
    pub const CUSTOMER_FACING: &'static str = "customer-facing";
    /// Internal services (the tier of unclassified certificates).
    pub const INTERNAL: &'static str = "internal";
    /// Network-critical devices (VPN gateways, routers).
    pub const NETWORK_CRITICAL: &'static str = "network-critical";

    /// `customer-facing`.
    pub fn customer_facing() -> Self {
        Self(Self::CUSTOMER_FACING.to_owned())
    }

    /// `internal`.
    pub fn internal() -> Self {
        Self(Self::INTERNAL.to_owned())
    }

    /// `network-critical`.
    pub fn network_critical() -> Self {
        Self(Self::NETWORK_CRITICAL.to_owned())
    }

    /// The tiers that exist without configuration.
    pub fn builtin() -> [Self; 3] {
        [Self::customer_facing(), Self::internal(), Self::network_critical()]
    }

    /// Stored / config spelling.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A well-formed tier name (1 to 64 lower-case letters, digits, `-` and `_`, starting with
    /// a letter); whether it is configured is the caller's question.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        ok.then(|| Self(s.to_owned()))
    }

    /// A name read from the ledger, as it is.
    pub fn stored(s: String) -> Self {
        Self(s)
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
