//! Findings about one endpoint, from what it served: pure functions of the chain, the
//! negotiated protocol version, the name the client asked for and the time.

use std::net::IpAddr;

use serde::Serialize;

use super::{
    certinfo::{weak_hash, CertInfo},
    chain::{analyse, TrustStore},
};

/// One finding. Alphabetical; `as_str` is the stored name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finding {
    /// The leaf's notAfter has passed.
    Expired,
    /// The leaf expires within the warning window.
    Expiring,
    /// The leaf names neither the SNI name nor the target host.
    HostnameMismatch,
    /// The server left out a certificate the path to the root needs.
    IncompleteChain,
    /// The protocol negotiated is older than TLS 1.2.
    LegacyTls,
    /// The leaf signs itself.
    SelfSigned,
    /// A served certificate (the root aside) is signed with SHA-1 or older.
    Sha1Signature,
    /// No path to privca's CAs or the public webpki roots.
    UnknownIssuer,
    /// A served key is too small (RSA below 2048 bits).
    WeakKey,
}

impl Finding {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Expiring => "expiring",
            Self::HostnameMismatch => "hostname-mismatch",
            Self::IncompleteChain => "incomplete-chain",
            Self::LegacyTls => "legacy-tls",
            Self::SelfSigned => "self-signed",
            Self::Sha1Signature => "sha1-signature",
            Self::UnknownIssuer => "unknown-issuer",
            Self::WeakKey => "weak-key",
        }
    }
}

/// Smallest acceptable RSA modulus.
pub const MIN_RSA_BITS: usize = 2048;

/// What the findings are judged against.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// Now, Unix seconds.
    pub now: i64,
    /// A leaf expiring within this many seconds is `expiring`.
    pub expiring_within: i64,
    /// The name the client asked for (SNI name, or the target host or address).
    pub name: &'a str,
    /// Roots and known intermediates.
    pub trust: &'a TrustStore,
}

/// Every finding about an endpoint that served `chain` (leaf first) over `tls_version`
/// (`TLSv1.3`, `TLSv1.2`, `TLSv1.1`, `TLSv1.0`, `SSLv3`), sorted.
pub fn evaluate(chain: &[CertInfo], tls_version: &str, ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    if legacy_tls(tls_version) {
        out.push(Finding::LegacyTls);
    }
    let Some(leaf) = chain.first() else {
        return out;
    };
    if leaf.not_after < ctx.now {
        out.push(Finding::Expired);
    } else if leaf.not_after - ctx.now <= ctx.expiring_within {
        out.push(Finding::Expiring);
    }
    let verdict = analyse(chain, ctx.trust);
    if verdict.self_signed {
        out.push(Finding::SelfSigned);
    }
    if verdict.unknown_issuer {
        out.push(Finding::UnknownIssuer);
    }
    if verdict.incomplete {
        out.push(Finding::IncompleteChain);
    }
    if !name_matches(&leaf.sans, ctx.name) {
        out.push(Finding::HostnameMismatch);
    }
    if chain.iter().any(|c| c.rsa_bits.is_some_and(|b| b < MIN_RSA_BITS)) {
        out.push(Finding::WeakKey);
    }
    // A root's own signature is never checked by clients; every other one is.
    if chain.iter().enumerate().any(|(i, c)| weak_hash(c.signature_oid) && (i == 0 || !c.self_issued())) {
        out.push(Finding::Sha1Signature);
    }
    out.sort();
    out
}

/// True below TLS 1.2.
pub fn legacy_tls(version: &str) -> bool {
    matches!(version, "TLSv1.0" | "TLSv1.1" | "SSLv3" | "SSLv2")
}

/// Whether the names `sans` (`dns:…`, `ip:…`) cover `name`: an address against the IP
/// addresses, a host name against the DNS names with RFC 6125 wildcards (a `*` that is the
/// whole left-most label matches exactly one label). The subject's CN is not consulted.
pub fn name_matches(sans: &[String], name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if let Ok(ip) = name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return sans.iter().filter_map(|s| s.strip_prefix("ip:")).any(|s| s.parse::<IpAddr>().ok() == Some(ip));
    }
    sans.iter().filter_map(|s| s.strip_prefix("dns:")).any(|pattern| {
        let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(rest) => name.split_once('.').is_some_and(|(label, tail)| !label.is_empty() && tail == rest),
            None => pattern == name,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sans(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn names_match_exactly_by_wildcard_and_by_address() {
        let s = sans(&["dns:www.example.test", "dns:*.api.example.test", "ip:127.0.0.1", "ip:2001:db8::1"]);
        assert!(name_matches(&s, "www.example.test"));
        assert!(name_matches(&s, "WWW.Example.Test."));
        assert!(name_matches(&s, "v1.api.example.test"));
        assert!(!name_matches(&s, "api.example.test"), "a wildcard needs one label");
        assert!(!name_matches(&s, "a.b.api.example.test"), "and only one");
        assert!(!name_matches(&s, "example.test"));
        assert!(name_matches(&s, "127.0.0.1"));
        assert!(name_matches(&s, "[2001:db8::1]"));
        assert!(!name_matches(&s, "127.0.0.2"));
        assert!(!name_matches(&sans(&["dns:127.0.0.1"]), "127.0.0.1"), "an address only matches an IP SAN");
        assert!(!name_matches(&[], "www.example.test"));
    }

    #[test]
    fn protocol_versions_below_1_2_are_legacy() {
        assert!(legacy_tls("TLSv1.0") && legacy_tls("TLSv1.1") && legacy_tls("SSLv3"));
        assert!(!legacy_tls("TLSv1.2") && !legacy_tls("TLSv1.3"));
    }

    #[test]
    fn finding_names_are_kebab_case() {
        assert_eq!(Finding::IncompleteChain.as_str(), "incomplete-chain");
        assert_eq!(serde_json::to_string(&Finding::Sha1Signature).unwrap(), "\"sha1-signature\"");
    }
}
