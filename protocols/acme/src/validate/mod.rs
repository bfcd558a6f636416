//! Challenge validation (§8, RFC 8737, RFC 8738), off the request path.
//!
//! Every lookup goes through one configured resolver (`hickory-resolver`; the dev config points
//! it at pebble-challtestsrv), and http-01/tls-alpn-01 connect only to the addresses it returned,
//! on the configured ports. A semaphore bounds how many validations run at once; each attempt
//! has a timeout, and failed attempts are retried a configured number of times.

mod dns01;
mod http01;
mod tlsalpn01;

use std::{net::IpAddr, sync::Arc, time::Duration};

use hickory_resolver::{
    config::{NameServerConfig, ResolverConfig, ResolverOpts},
    net::runtime::TokioRuntimeProvider,
    TokioResolver,
};
use tokio::sync::Semaphore;

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
}

/// Runs validations.
#[derive(Clone)]
pub struct Validator {
    resolver: Arc<TokioResolver>,
    settings: ValidationSettings,
    permits: Arc<Semaphore>,
    tls: Arc<rustls::ClientConfig>,
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
            tls: Arc::new(tlsalpn01::client_config()?),
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
                    last = AcmeError::new(ErrorType::Connection, format!("{} validation timed out", kind.as_str()))
                }
            }
            tracing::debug!(challenge = kind.as_str(), identifier = %identifier.value, attempt, error = %last.detail, "validation attempt failed");
        }
        Err(last)
    }

    /// The addresses of `identifier`: an IP identifier is itself; a DNS name is resolved (A and
    /// AAAA) through the configured resolver, and nothing else is ever dialled.
    async fn addresses(&self, identifier: &Identifier) -> Result<Vec<IpAddr>, AcmeError> {
        if identifier.kind == "ip" {
            return identifier
                .value
                .parse()
                .map(|ip| vec![ip])
                .map_err(|_| AcmeError::malformed("invalid IP identifier"));
        }
        let name = format!("{}.", identifier.value);
        let lookup =
            self.resolver.lookup_ip(name.as_str()).await.map_err(|e| {
                AcmeError::new(ErrorType::Dns, format!("no A/AAAA record for {}: {e}", identifier.value))
            })?;
        let ips: Vec<IpAddr> = lookup.iter().collect();
        if ips.is_empty() {
            return Err(AcmeError::new(ErrorType::Dns, format!("no A/AAAA record for {}", identifier.value)));
        }
        Ok(ips)
    }

    fn resolver(&self) -> &TokioResolver {
        &self.resolver
    }
}

/// base64url(SHA-256(key authorization)): the dns-01 TXT value (§8.4).
pub fn dns01_digest(key_authorization: &str) -> String {
    use base64ct::Encoding;
    base64ct::Base64UrlUnpadded::encode_string(
        ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes()).as_ref(),
    )
}
