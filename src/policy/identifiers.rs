//! Identifier rules: DNS name syntax (RFC 1034 LDH labels, RFC 5280 §4.2.1.6 preferred name
//! syntax), wildcards, allow/deny patterns, IP addresses and email addresses, and which subject
//! CNs are host names (`san.from_cn`).

use crate::error::CaError;

/// Checks DNS name syntax; `wildcards` permits a leftmost `*` label.
pub fn check_dns_syntax(name: &str, wildcards: bool) -> Result<(), CaError> {
    let bad = |why: &str| CaError::bad_request(format!("identifier `{name}`: {why}"));
    if name.is_empty() || name.len() > 253 {
        return Err(bad("DNS name must be 1 to 253 characters"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        if *label == "*" && i == 0 {
            if !wildcards {
                return Err(CaError::policy(format!("identifier `{name}`: wildcards are not allowed by this profile")));
            }
            if labels.len() < 3 {
                return Err(bad("a wildcard needs at least two labels after it"));
            }
            continue;
        }
        if label.is_empty() || label.len() > 63 {
            return Err(bad("each DNS label must be 1 to 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(bad("DNS labels may contain only letters, digits and '-'"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("DNS labels must not start or end with '-'"));
        }
    }
    if labels.last().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return Err(bad("the top-level label must not be all digits"));
    }
    Ok(())
}

/// Whether a subject CN is a host name that `san.from_cn = "dns-if-hostname"` copies into a
/// dNSName: DNS syntax (a leftmost `*` label included, so that the profile's wildcard rule
/// decides), at least two labels, and a top-level label of letters (RFC 3696 §2) or an IDNA
/// `xn--` label. Device identities that are not host names fail this: a serial number
/// (`FTX1234W0AB`, one label), a MAC address (`00:1a:2b:3c:4d:5e`, `00-1A-…`, and Cisco's
/// dotted `001a.2b3c.4d5e`, refused by name), a bare device name (`router1`).
pub fn is_hostname(cn: &str) -> bool {
    let labels: Vec<&str> = cn.split('.').collect();
    let Some(top) = labels.last() else { return false };
    let alphabetic_top =
        top.bytes().all(|b| b.is_ascii_alphabetic()) || (top.len() > 4 && top[..4].eq_ignore_ascii_case("xn--"));
    labels.len() >= 2 && alphabetic_top && !is_dotted_mac(&labels) && check_dns_syntax(cn, true).is_ok()
}

/// Cisco's MAC address notation: three groups of four hex digits.
fn is_dotted_mac(labels: &[&str]) -> bool {
    labels.len() == 3 && labels.iter().all(|l| l.len() == 4 && l.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// True when `name` matches `pattern`: `*` (anything), `example.com` (exactly) or
/// `*.example.com` (any name below example.com).
pub fn matches(pattern: &str, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let pattern = pattern.to_ascii_lowercase();
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => name.len() > suffix.len() + 1 && name.ends_with(&format!(".{suffix}")),
        None => name == pattern,
    }
}

/// Checks `name` against allow and deny lists; the message names the rule.
pub fn check_dns_policy(name: &str, allow: &[String], deny: &[String], profile: &str) -> Result<(), CaError> {
    if let Some(p) = deny.iter().find(|p| matches(p, name)) {
        return Err(CaError::policy(format!(
            "identifier `{name}`: denied by profile {profile} rule san.dns_deny `{p}`"
        )));
    }
    if !allow.iter().any(|p| matches(p, name)) {
        return Err(CaError::policy(format!("identifier `{name}`: not in profile {profile} san.dns_allow")));
    }
    Ok(())
}

/// Checks an RFC 5322 addr-spec well enough for a certificate (`local@domain`).
pub fn check_email(addr: &str) -> Result<(), CaError> {
    let bad = || CaError::bad_request(format!("identifier `{addr}`: not an email address"));
    let (local, domain) = addr.rsplit_once('@').ok_or_else(bad)?;
    if local.is_empty() || local.len() > 64 || !local.is_ascii() || local.contains(char::is_whitespace) {
        return Err(bad());
    }
    check_dns_syntax(domain, false).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_syntax() {
        assert!(check_dns_syntax("www.example.test", false).is_ok());
        assert!(check_dns_syntax("*.example.test", true).is_ok());
        assert!(check_dns_syntax("*.example.test", false).is_err());
        assert!(check_dns_syntax("a..b", false).is_err());
        assert!(check_dns_syntax("-a.b", false).is_err());
        assert!(check_dns_syntax("a_b.c", false).is_err());
        assert!(check_dns_syntax("1.2.3.4", false).is_err());
        assert!(check_dns_syntax("*.com", true).is_err());
    }

    #[test]
    fn host_names_among_device_cns() {
        for cn in ["router1.example.test", "R1.Example.Test", "a.b", "*.example.test", "host.xn--p1ai", "vpn-1.corp"] {
            assert!(is_hostname(cn), "{cn}");
        }
        let not = [
            "FTX1234W0AB",
            "router1",
            "SN-4711",
            "00:1a:2b:3c:4d:5e",
            "00-1A-2B-3C-4D-5E",
            "001a.2b3c.4d5e",
            "DEAD.BEEF.CAFE",
            "10.0.0.1",
            "host.example.123",
            "Acme router",
            "host.example.test.",
            "a..b",
            "",
        ];
        for cn in not {
            assert!(!is_hostname(cn), "{cn}");
        }
    }

    #[test]
    fn patterns() {
        assert!(matches("*", "anything.test"));
        assert!(matches("*.example.com", "a.b.example.com"));
        assert!(!matches("*.example.com", "example.com"));
        assert!(!matches("*.example.com", "badexample.com"));
        assert!(matches("Example.com", "example.COM"));
    }

    #[test]
    fn deny_wins() {
        let allow = vec!["*".to_owned()];
        let deny = vec!["*.internal.test".to_owned()];
        let e = check_dns_policy("db.internal.test", &allow, &deny, "p").unwrap_err();
        assert!(e.detail().contains("san.dns_deny"));
        assert!(check_dns_policy("www.test", &allow, &deny, "p").is_ok());
    }

    #[test]
    fn email() {
        assert!(check_email("alice@example.test").is_ok());
        assert!(check_email("alice").is_err());
        assert!(check_email("@example.test").is_err());
    }
}
