//! Discovery: finds the TLS certificates servers actually serve and merges them into the
//! inventory.
//!
//! * [`Target`]s come from a `host:port` list or a CIDR range times a port list (a range
//!   larger than the configured maximum is refused before anything is sent), each optionally
//!   with SNI names.
//! * [`scan`] connects with bounded concurrency and per-target timeouts, speaks
//!   [`starttls`] when asked, and captures the served chain and protocol version through
//!   rustls with a verifier that records instead of rejecting; servers rustls cannot talk to
//!   (TLS 1.0/1.1) are read by the hand-written ClientHello probe in [`legacy`].
//! * [`findings`] judges each endpoint (pure functions; paths to the roots in [`chain`]).
//! * [`record`] writes each endpoint in one ledger unit of work: its leaf as an external
//!   certificate unless privca issued it, and the endpoint row with its findings.
//! * [`command`] is `privca discover`: progress bar, summary table or JSON.
//!
//! A target that is unreachable, times out or speaks something else gets its own error;
//! the scan goes on with the others.

pub mod certinfo;
pub mod chain;
pub mod command;
pub mod findings;
pub mod legacy;
pub mod record;
pub mod scan;
pub mod starttls;

use std::net::IpAddr;

use serde::Serialize;

pub use self::command::DiscoverArgs;

/// Largest CIDR range scanned unless configured otherwise (a /20).
pub const DEFAULT_MAX_ADDRESSES: u64 = 4096;

/// One endpoint to scan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// SNI name to send instead of the host.
    pub sni: Option<String>,
}

impl Target {
    /// The SNI name sent: the explicit one, else the host when it is a DNS name.
    pub fn server_name(&self) -> Option<String> {
        match &self.sni {
            Some(s) => Some(s.clone()),
            None if self.host.parse::<IpAddr>().is_err() => Some(self.host.clone()),
            None => None,
        }
    }

    /// The name the certificate must cover: the SNI name, else the host.
    pub fn name(&self) -> &str {
        self.sni.as_deref().unwrap_or(&self.host)
    }

    /// `host:port`, with `[…]` around IPv6 addresses, plus ` (sni NAME)` when one is set.
    pub fn label(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match &self.sni {
            Some(s) => format!("{host}:{} (sni {s})", self.port),
            None => format!("{host}:{}", self.port),
        }
    }
}

/// Why a target (or the whole scan) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    /// A target, port or SNI name that cannot be parsed.
    #[error("bad target: {0}")]
    Target(String),
    /// A CIDR range above the configured maximum.
    #[error("CIDR {cidr} has {addresses} addresses, more than the maximum of {max} (raise it with --max-addresses)")]
    CidrTooLarge {
        /// The range as given.
        cidr: String,
        /// Its size.
        addresses: u128,
        /// The maximum.
        max: u64,
    },
    /// DNS resolution failed.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// TCP connect failed.
    #[error("cannot connect to {0}")]
    Connect(String),
    /// A stage took longer than its timeout.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// The STARTTLS opening failed.
    #[error(transparent)]
    Starttls(#[from] starttls::StarttlsError),
    /// The rustls handshake failed (the legacy probe follows).
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    /// The legacy probe failed.
    #[error(transparent)]
    Probe(#[from] legacy::ProbeError),
    /// Neither rustls nor the legacy probe read a certificate.
    #[error("no TLS certificate: handshake failed ({tls}); legacy probe: {probe}")]
    NoTls {
        /// The rustls error.
        tls: String,
        /// The probe's error.
        probe: String,
    },
    /// The handshake completed without a certificate.
    #[error("the server sent no certificate")]
    NoCertificate,
    /// The served leaf is not a parsable certificate.
    #[error("served certificate #{index} is malformed: {reason}")]
    BadCertificate {
        /// Position in the served chain (0 = leaf).
        index: usize,
        /// The parse error.
        reason: String,
    },
    /// The TLS client could not be set up.
    #[error("TLS client setup: {0}")]
    Setup(#[source] rustls::Error),
    /// A scan task failed.
    #[error("scan task: {0}")]
    Task(String),
    /// Recording in the ledger failed.
    #[error("ledger: {0}")]
    Ledger(#[from] crate::ledger::LedgerError),
}

impl DiscoverError {
    /// Nothing listens there (refused or no answer to the TCP connect): in a CIDR scan the
    /// common case, counted rather than listed.
    pub fn no_listener(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::Timeout("connect"))
    }
}

/// `host:port` (or `[v6]:port`; port 443 when absent) entries of a comma-separated list.
pub fn parse_targets(list: &[String]) -> Result<Vec<(String, u16)>, DiscoverError> {
    let mut out = Vec::new();
    for item in list.iter().flat_map(|l| l.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || DiscoverError::Target(format!("`{item}` (expected host:port)"));
        let (host, port) = if let Some(rest) = item.strip_prefix('[') {
            let (host, tail) = rest.split_once(']').ok_or_else(bad)?;
            (host, tail.strip_prefix(':').map(str::to_owned))
        } else if item.matches(':').count() > 1 {
            (item, None) // a bare IPv6 address
        } else {
            match item.split_once(':') {
                Some((h, p)) => (h, Some(p.to_owned())),
                None => (item, None),
            }
        };
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
            None => 443,
        };
        if host.is_empty() {
            return Err(bad());
        }
        out.push((host.to_owned(), port));
    }
    Ok(out)
}

/// Ports of a comma-separated list.
pub fn parse_ports(list: &[String]) -> Result<Vec<u16>, DiscoverError> {
    list.iter()
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|p| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| DiscoverError::Target(format!("port `{p}`"))))
        .collect()
}

/// The host addresses of `cidr` (network and broadcast addresses left out for IPv4 ranges
/// wider than /31) times `ports`; refused when the range holds more than `max_addresses`.
pub fn expand_cidr(cidr: &str, ports: &[u16], max_addresses: u64) -> Result<Vec<(String, u16)>, DiscoverError> {
    let net: ipnet::IpNet =
        cidr.trim().parse().map_err(|_| DiscoverError::Target(format!("`{cidr}` is not a CIDR range")))?;
    let bits = net.max_prefix_len() - net.prefix_len();
    let addresses: u128 = if bits >= 128 { u128::MAX } else { 1u128 << bits };
    if addresses > u128::from(max_addresses) {
        return Err(DiscoverError::CidrTooLarge { cidr: cidr.trim().to_owned(), addresses, max: max_addresses });
    }
    if ports.is_empty() {
        return Err(DiscoverError::Target(format!("--cidr {cidr} needs --ports")));
    }
    Ok(net.hosts().flat_map(|a| ports.iter().map(move |p| (a.to_string(), *p))).collect())
}

/// Each `(host, port)` once per SNI name (once without SNI when `sni` is empty).
pub fn with_sni(endpoints: Vec<(String, u16)>, sni: &[String]) -> Vec<Target> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (host, port) in endpoints {
        let names: Vec<Option<String>> =
            if sni.is_empty() { vec![None] } else { sni.iter().map(|s| Some(s.clone())).collect() };
        for sni in names {
            let t = Target { host: host.clone(), port, sni };
            if seen.insert(t.clone()) {
                out.push(t);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
