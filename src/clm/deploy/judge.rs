//! The verdict on one endpoint after a renewal: pure, from what the endpoint served (its leaf
//! and the discovery findings about it), what was expected, and the OCSP answer.

use crate::{clm::discover::findings::Finding, ledger::DeploymentFailure};

use super::ocsp::Status;

/// What the scan of an endpoint read.
#[derive(Debug, Clone, Copy)]
pub enum Seen<'a> {
    /// Nothing: the scan failed (the error).
    Error(&'a str),
    /// A leaf (SHA-256 fingerprint) and the findings about the served chain.
    Served {
        /// The leaf's fingerprint.
        leaf: &'a str,
        /// The discovery findings.
        findings: &'a [Finding],
    },
}

/// The OCSP question about the successor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OcspOutcome {
    /// The responder's answer.
    Status(Status),
    /// No usable answer (why).
    Error(String),
    /// Not asked: the successor is not served.
    NotAsked,
}

/// What the endpoint should serve.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The successor's fingerprint.
    pub successor: &'a str,
    /// The predecessor's fingerprint and serial, when known.
    pub predecessor: Option<(&'a str, &'a str)>,
    /// The name a client asks for there (SNI name, else host).
    pub name: &'a str,
}

fn failure(check: &str, detail: String) -> DeploymentFailure {
    DeploymentFailure { check: check.to_owned(), detail }
}

/// The failed checks (none: deployed): the served leaf is the successor, the chain leads to a
/// trusted root with nothing left out, the leaf covers the name, and OCSP answers `good`.
pub fn judge(expected: &Expected<'_>, seen: Seen<'_>, ocsp: &OcspOutcome) -> Vec<DeploymentFailure> {
    let (leaf, findings) = match seen {
        Seen::Error(e) => return vec![failure("scan", format!("cannot read the served certificate: {e}"))],
        Seen::Served { leaf, findings } => (leaf, findings),
    };
    let mut out = Vec::new();
    if leaf != expected.successor {
        out.push(match expected.predecessor {
            Some((fp, serial)) if fp == leaf => {
                failure("served-leaf", format!("old certificate still served (serial {serial})"))
            }
            _ => failure("served-leaf", format!("another certificate is served (SHA-256 {leaf})")),
        });
    }
    if findings.contains(&Finding::IncompleteChain) {
        out.push(failure("chain", "incomplete chain: the server leaves out an intermediate certificate".into()));
    } else if findings.contains(&Finding::UnknownIssuer) || findings.contains(&Finding::SelfSigned) {
        out.push(failure("chain", "no path from the served chain to a trusted root".into()));
    }
    if findings.contains(&Finding::HostnameMismatch) {
        out.push(failure("name", format!("the served certificate does not cover {}", expected.name)));
    }
    match ocsp {
        OcspOutcome::Status(Status::Good) | OcspOutcome::NotAsked => {}
        OcspOutcome::Status(s) => out.push(failure("ocsp", format!("OCSP answers {}", s.as_str()))),
        OcspOutcome::Error(e) => out.push(failure("ocsp", format!("no OCSP answer: {e}"))),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "11";
    const OLD: &str = "22";

    fn expected() -> Expected<'static> {
        Expected { successor: NEW, predecessor: Some((OLD, "0a")), name: "www.example.test" }
    }

    fn checks(f: &[DeploymentFailure]) -> Vec<&str> {
        f.iter().map(|f| f.check.as_str()).collect()
    }

    #[test]
    fn the_successor_served_with_its_chain_and_ocsp_good_is_deployed() {
        let seen = Seen::Served { leaf: NEW, findings: &[] };
        assert!(judge(&expected(), seen, &OcspOutcome::Status(Status::Good)).is_empty());
        // Findings that say nothing about deployment do not fail it.
        let seen = Seen::Served { leaf: NEW, findings: &[Finding::Expiring] };
        assert!(judge(&expected(), seen, &OcspOutcome::Status(Status::Good)).is_empty());
    }

    #[test]
    fn the_old_certificate_still_served_is_named() {
        let f = judge(&expected(), Seen::Served { leaf: OLD, findings: &[] }, &OcspOutcome::NotAsked);
        assert_eq!(f, [failure("served-leaf", "old certificate still served (serial 0a)".into())]);
        let f = judge(&expected(), Seen::Served { leaf: "33", findings: &[] }, &OcspOutcome::NotAsked);
        assert_eq!(checks(&f), ["served-leaf"]);
        assert!(f[0].detail.contains("another certificate"), "{f:?}");
    }

    #[test]
    fn chain_name_and_ocsp_failures_each_count() {
        let findings = [Finding::HostnameMismatch, Finding::IncompleteChain, Finding::UnknownIssuer];
        let f =
            judge(&expected(), Seen::Served { leaf: NEW, findings: &findings }, &OcspOutcome::Status(Status::Revoked));
        assert_eq!(checks(&f), ["chain", "name", "ocsp"]);
        assert!(f[0].detail.starts_with("incomplete chain"), "{f:?}");
        assert!(f[1].detail.ends_with("www.example.test"), "{f:?}");
        assert_eq!(f[2].detail, "OCSP answers revoked");
        let f = judge(
            &expected(),
            Seen::Served { leaf: NEW, findings: &[Finding::SelfSigned] },
            &OcspOutcome::Error("HTTP 500".into()),
        );
        assert_eq!(checks(&f), ["chain", "ocsp"]);
    }

    #[test]
    fn an_endpoint_that_cannot_be_scanned_fails_once() {
        let f = judge(&expected(), Seen::Error("cannot connect"), &OcspOutcome::NotAsked);
        assert_eq!(checks(&f), ["scan"]);
    }
}
