//! Challenge validation (§8, RFC 8737, RFC 8738), off the request path.
//!
//! Every lookup goes through one configured resolver (`hickory-resolver`; the dev config points
//! it at pebble-challtestsrv), and http-01/tls-alpn-01 connect only to the addresses it returned
//! or to IP literals (an IP identifier, a redirect to an IP address). Ports: tls-alpn-01 and
//! the first http-01 request use the configured ports (`http01_port`, `tlsalpn01_port`); http-01
//! then follows redirects (at most 10) only to `http:`/`https:` URLs on ports 80 and 443 (§8.3),
//! and a relative redirect keeps the port of the request it answers (see `http01`). No
//! outbound validation connection goes to an address in the configured deny list ([`deny`]):
//! it is applied to every resolved address, IP identifier and redirect target. dns-01 talks
//! only to the resolver and is exempt. A semaphore bounds how many validations run at once;
//! each attempt has a timeout, and failed attempts are retried a configured number of times.
//!
//! Validation must not turn the CA into a port scanner: whatever stopped an http-01 or
//! tls-alpn-01 request from completing (a refused or timed-out connection, a denied address, a
//! forbidden redirect, a broken connection), the client sees one `connection` problem whose
//! detail names only the challenge type and the identifier ([`unreachable`]); the cause is
//! logged at debug level. (A tls-alpn-01 handshake that fails is a `tls` problem, a response
//! that is not 200 `unauthorized`, a wrong answer `incorrectResponse`: none names an address.)

pub mod deny;
mod dns01;
mod http01;
mod tlsalpn01;

use std::{fmt::Display, net::IpAddr, sync::Arc, time::Duration};

use hickory_resolver::{
    config::{NameServerConfig, ResolverConfig, ResolverOpts},
    net::runtime::TokioRuntimeProvider,
    TokioResolver,
};
use tokio::sync::Semaphore;

use self::deny::DenyList;
pub use self::deny::IpRange;
use crate::{
    backend::{ChallengeType, Identifier},
    error::{AcmeError, ErrorType},
};

/// Validation settings.
#[derive(Debug, Clone)]
pub struct ValidationSettings {
    /// DNS server (`ip:port`); `None` uses the system resolver.
    pub resolver: Option<std::net::SocketAddr>,
    /// Port for http-01 (80 in production).
    pub http01_port: u16,
    /// Port for tls-alpn-01 (443 in production).
    pub tlsalpn01_port: u16,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Attempts per challenge (≥ 1).
    pub attempts: u32,
    /// Validations running at once.
    pub concurrency: usize,
    /// Pause between attempts.
    pub retry_delay: Duration,
    /// Address ranges never connected to (http-01, tls-alpn-01 and their redirects).
    pub deny_ranges: Vec<IpRange>,
}

/// Runs validations.
#[derive(Clone)]
pub struct Validator {
    resolver: Arc<TokioResolver>,
    settings: ValidationSettings,
    permits: Arc<Semaphore>,
    deny: DenyList,
    /// tls-alpn-01: ALPN `acme-tls/1` only.
    tls: Arc<rustls::ClientConfig>,
    /// http-01 redirects to `https:` (ALPN `http/1.1`; certificates not verified, as boulder).
    https: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Validator {
    /// A validator with `settings`.
    pub fn new(settings: ValidationSettings) -> Result<Self, String> {
        let mut opts = ResolverOpts::default();
        opts.timeout = settings.timeout;
        opts.attempts = 1;
        opts.cache_size = 0;
        opts.ndots = 0;
        let builder = match settings.resolver {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, vec![], vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio().map_err(|e| format!("system resolver: {e}"))?,
        };
        let resolver = builder.with_options(opts).build().map_err(|e| format!("resolver: {e}"))?;
        Ok(Self {
            resolver: Arc::new(resolver),
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            deny: DenyList::new(settings.deny_ranges.clone()),
            tls: Arc::new(tlsalpn01::client_config(tlsalpn01::ALPN)?),
            https: Arc::new(tlsalpn01::client_config(b"http/1.1")?),
            settings,
        })
    }

    /// Validates one challenge; `key_authorization` is `token.thumbprint` (§8.1). Returns the
    /// problem to record on failure (`dns`, `connection`, `tls`, `incorrectResponse`,
    /// `unauthorized`).
    pub async fn validate(
        &self,
        kind: ChallengeType,
        identifier: &Identifier,
        token: &str,
        key_authorization: &str,
    ) -> Result<(), AcmeError> {
        let Ok(_permit) = self.permits.acquire().await else {
            return Err(AcmeError::internal());
        };
        let mut last = AcmeError::internal();
        for attempt in 0..self.settings.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(self.settings.retry_delay).await;
            }
            let run = async {
                match kind {
                    ChallengeType::Http01 => http01::validate(self, identifier, token, key_authorization).await,
                    ChallengeType::Dns01 => dns01::validate(self, &identifier.value, key_authorization).await,
                    ChallengeType::TlsAlpn01 => tlsalpn01::validate(self, identifier, key_authorization).await,
                }
            };
            match tokio::time::timeout(self.settings.timeout, run).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => last = e,
                Err(_) => {
                    last = match kind {
                        ChallengeType::Dns01 => {
                            AcmeError::new(ErrorType::Dns, format!("dns-01: no answer for {}", identifier.value))
                        }
                        _ => unreachable(kind, identifier, &"the attempt timed out"),
                    }
                }
            }
            tracing::debug!(challenge = kind.as_str(), identifier = %identifier.value, attempt, error = %last.detail, "validation attempt failed");
        }
        Err(last)
    }

    /// Where to connect for the identifier being validated: an IP identifier is itself; a DNS
    /// name is resolved (A and AAAA) through the configured resolver, and nothing else is ever
    /// dialled. A name that does not resolve is a `dns` problem; addresses in the deny list are
    /// dropped, and if none is left the problem is the generic [`unreachable`] one.
    async fn addresses(&self, kind: ChallengeType, identifier: &Identifier) -> Result<Vec<IpAddr>, AcmeError> {
        if identifier.kind == "ip" && identifier.value.parse::<IpAddr>().is_err() {
            return Err(AcmeError::malformed("invalid IP identifier"));
        }
        let ips = self.lookup(identifier).await.map_err(|cause| {
            tracing::debug!(challenge = kind.as_str(), identifier = %identifier.value, %cause, "validation lookup failed");
            AcmeError::new(ErrorType::Dns, format!("{}: no A/AAAA record for {}", kind.as_str(), identifier.value))
        })?;
        self.permitted(&identifier.value, ips).map_err(|cause| unreachable(kind, identifier, &cause))
    }

    /// The addresses of `host` (an IP literal is itself), or why there are none (for the log).
    async fn lookup(&self, host: &Identifier) -> Result<Vec<IpAddr>, String> {
        if let Ok(ip) = host.value.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if host.kind == "ip" {
            return Err(format!("`{}` is not an IP address", host.value));
        }
        let name = format!("{}.", host.value);
        let lookup = self.resolver.lookup_ip(name.as_str()).await.map_err(|e| format!("{}: {e}", host.value))?;
        let ips: Vec<IpAddr> = lookup.iter().collect();
        if ips.is_empty() {
            return Err(format!("{}: no A/AAAA record", host.value));
        }
        Ok(ips)
    }

    /// `ips` less those in the deny list; an error (for the log) when none is left.
    fn permitted(&self, host: &str, ips: Vec<IpAddr>) -> Result<Vec<IpAddr>, String> {
        let mut denied = Vec::new();
        let allowed: Vec<IpAddr> = ips
            .into_iter()
            .filter(|ip| match self.deny.matching(*ip) {
                Some(range) => {
                    denied.push(format!("{ip} (in {range})"));
                    false
                }
                None => true,
            })
            .collect();
        if !denied.is_empty() {
            tracing::debug!(host, denied = %denied.join(", "), "validation skips denied addresses");
        }
        if allowed.is_empty() {
            return Err(format!("every address of {host} is in a denied range: {}", denied.join(", ")));
        }
        Ok(allowed)
    }

    fn resolver(&self) -> &TokioResolver {
        &self.resolver
    }
}

/// The one problem a client gets when an http-01 or tls-alpn-01 request could not be completed,
/// whatever the cause (refused, timed out, denied address, forbidden redirect, broken
/// connection): type `connection`, a detail naming only the challenge type and the identifier.
/// `cause` goes to the debug log.
pub(crate) fn unreachable(kind: ChallengeType, identifier: &Identifier, cause: &dyn Display) -> AcmeError {
    tracing::debug!(challenge = kind.as_str(), identifier = %identifier.value, %cause, "validation could not reach the client");
    AcmeError::new(
        ErrorType::Connection,
        format!("{}: could not fetch the challenge response from {}", kind.as_str(), identifier.value),
    )
}

/// base64url(SHA-256(key authorization)): the dns-01 TXT value (§8.4).
pub fn dns01_digest(key_authorization: &str) -> String {
    use base64ct::Encoding;
    base64ct::Base64UrlUnpadded::encode_string(
        ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes()).as_ref(),
    )
}
