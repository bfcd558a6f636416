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

/// CLM tier of a certificate: drives expiry policy and escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// Customer-facing services.
    CustomerFacing,
    /// Internal services.
    Internal,
    /// Network-critical devices (VPN gateways, routers).
    NetworkCritical,
}

impl Tier {
    /// Stored / config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CustomerFacing => "customer-facing",
            Self::Internal => "internal",
            Self::NetworkCritical => "network-critical",
        }
    }

    /// Parses the config spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer-facing" => Some(Self::CustomerFacing),
            "internal" => Some(Self::Internal),
            "network-critical" => Some(Self::NetworkCritical),
            _ => None,
        }
    }
}
