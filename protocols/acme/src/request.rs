//! The shared state of the ACME router and authentication of JWS POSTs (§6.2–§6.5): content
//! type, JWS shape, `url` binding, key or account, signature, then the nonce.
//!
//! The account of a `kid` request may come from a copy kept in memory, which another instance
//! sharing the ledger can make stale. A signature that fails against the copy's key is checked
//! again against the ledger's key before it is refused (a key rollover answered elsewhere),
//! and the nonce redemption reports a copy whose key, status or contact differ from the
//! ledger's (then read again: a deactivation elsewhere is refused on the next request).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::http::{header, HeaderMap, Uri};
use serde_json::Value;

use crate::{
    backend::{Account, AccountStatus, AcmeBackend, Redeemed},
    error::{AcmeError, ErrorType},
    jws::{self, Jws, KeyRef},
    links::Links,
    nonce::Nonces,
    settings::AcmeSettings,
    validate::Validator,
};

/// Everything a handler needs.
pub struct AcmeState<B> {
    /// The core.
    pub backend: B,
    /// Settings.
    pub settings: AcmeSettings,
    /// URL scheme.
    pub links: Links,
    /// Nonces.
    pub nonces: Nonces,
    /// Challenge validation.
    pub validator: Validator,
    orders_seen: Mutex<HashMap<String, Vec<i64>>>,
}

/// Which key a request must be signed with (§6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// `jwk` only (newAccount).
    Jwk,
    /// `kid` only (everything else).
    Kid,
    /// Either (revokeCert, §7.6).
    Either,
}

/// An authenticated request.
#[derive(Debug)]
pub struct Signed {
    /// The verified JWS.
    pub jws: Jws,
    /// The signing key (reduced public JWK).
    pub jwk: Value,
    /// The account, for `kid` requests.
    pub account: Option<Account>,
}

impl Signed {
    /// The account of a `kid` request.
    pub fn account(&self) -> Result<&Account, AcmeError> {
        self.account.as_ref().ok_or_else(|| AcmeError::malformed("this request must be signed with `kid`"))
    }

    /// True for POST-as-GET (§6.3).
    pub fn is_post_as_get(&self) -> bool {
        self.jws.payload.is_empty()
    }

    /// The payload as a JSON object.
    pub fn payload(&self) -> Result<Value, AcmeError> {
        let v: Value =
            serde_json::from_slice(&self.jws.payload).map_err(|_| AcmeError::malformed("payload is not JSON"))?;
        if !v.is_object() {
            return Err(AcmeError::malformed("payload is not a JSON object"));
        }
        Ok(v)
    }
}

impl<B: AcmeBackend> AcmeState<B> {
    /// The state for a router.
    pub fn new(backend: B, settings: AcmeSettings, nonce_key: &[u8], validator: Validator) -> Self {
        let links = Links::new(&format!("{}{}", settings.origin, settings.prefix));
        let nonces = Nonces::new(nonce_key, settings.nonce_lifetime);
        Self { backend, settings, links, nonces, validator, orders_seen: Mutex::new(HashMap::new()) }
    }

    /// Authenticates a POST to `uri`.
    pub async fn authenticate(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        signer: Signer,
    ) -> Result<Signed, AcmeError> {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if content_type.split(';').next().map(str::trim) != Some("application/jose+json") {
            return Err(AcmeError::new(ErrorType::UnsupportedMediaType, "Content-Type must be application/jose+json"));
        }
        let jws = Jws::parse(body)?;
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or(uri.path());
        let expected = format!("{}{path}", self.settings.origin);
        if jws.url != expected {
            return Err(AcmeError::unauthorized(format!("JWS `url` does not match the request URL {expected}")));
        }
        let Some(nonce) = jws.nonce.clone() else {
            return Err(AcmeError::new(ErrorType::BadNonce, "JWS has no nonce"));
        };
        let expires =
            self.nonces.check(&nonce).ok_or_else(|| AcmeError::new(ErrorType::BadNonce, "unknown or expired nonce"))?;
        let (jwk, account) = match (&jws.key, signer) {
            (KeyRef::Jwk(jwk), Signer::Jwk | Signer::Either) => (jwk.clone(), None),
            (KeyRef::Kid(kid), Signer::Kid | Signer::Either) => {
                let account = self.account_for_kid(kid).await?;
                (account.jwk.clone(), Some(account))
            }
            (KeyRef::Jwk(_), Signer::Kid) => {
                return Err(AcmeError::malformed("this request must be signed with `kid`"))
            }
            (KeyRef::Kid(_), Signer::Jwk) => {
                return Err(AcmeError::malformed("this request must be signed with `jwk`"))
            }
        };
        let (jwk, mut account) = match jws.verify(&jwk) {
            Ok(()) => (jwk, account),
            Err(e) => self.verify_with_ledger_key(&jws, account, e).await?,
        };
        match self.backend.redeem_nonce(&nonce, expires, account.as_ref()).await? {
            Redeemed::Fresh => {}
            Redeemed::Used => return Err(AcmeError::new(ErrorType::BadNonce, "nonce already used")),
            Redeemed::AccountChanged => {
                if let (KeyRef::Kid(kid), Some(seen)) = (&jws.key, &account) {
                    let current = self.account_for_kid(kid).await?;
                    if current.thumbprint != seen.thumbprint {
                        return Err(AcmeError::unauthorized("the account's key has changed"));
                    }
                    account = Some(current);
                }
            }
        }
        Ok(Signed { jws, jwk, account })
    }

    /// A `kid` request whose signature does not verify against the account's key as this
    /// instance had it (`refused`): another instance sharing the ledger may have rolled the
    /// key over (§7.3.5) since that copy was made. The signature is checked once more
    /// against the key the ledger holds now before the request is refused; an account the
    /// ledger shows deactivated is then refused as such. Returns the key and account the
    /// request verified against.
    async fn verify_with_ledger_key(
        &self,
        jws: &Jws,
        seen: Option<Account>,
        refused: AcmeError,
    ) -> Result<(Value, Option<Account>), AcmeError> {
        let (KeyRef::Kid(kid), Some(seen)) = (&jws.key, seen) else {
            return Err(refused);
        };
        let Some(current) = self.backend.account_from_ledger(&seen.id).await? else {
            return Err(refused);
        };
        if current.thumbprint == seen.thumbprint {
            return Err(refused);
        }
        jws.verify(&current.jwk)?;
        // Only the holder of the account's key learns its status.
        let current = Self::usable(Some(current))?;
        tracing::debug!(kid = %kid, "JWS verified against the account key the ledger holds (rolled over elsewhere)");
        Ok((current.jwk.clone(), Some(current)))
    }

    async fn account_for_kid(&self, kid: &str) -> Result<Account, AcmeError> {
        let missing = || AcmeError::new(ErrorType::AccountDoesNotExist, "no account with this `kid`");
        let id = self.links.account_id(kid).ok_or_else(missing)?;
        Self::usable(self.backend.account(id).await?)
    }

    /// The account if it exists and is valid; `accountDoesNotExist`, or the deactivated
    /// account problem (deactivated or revoked), otherwise.
    fn usable(account: Option<Account>) -> Result<Account, AcmeError> {
        let account =
            account.ok_or_else(|| AcmeError::new(ErrorType::AccountDoesNotExist, "no account with this `kid`"))?;
        if account.status != AccountStatus::Valid {
            return Err(AcmeError::new(
                ErrorType::AccountDeactivated,
                format!("account is {}", account.status.as_str()),
            ));
        }
        Ok(account)
    }

    /// Counts a new order against the account's hourly limit.
    pub fn rate_limit(&self, account_id: &str, now: i64) -> Result<(), AcmeError> {
        let limit = self.settings.orders_per_hour as usize;
        if limit == 0 {
            return Ok(());
        }
        let Ok(mut seen) = self.orders_seen.lock() else { return Ok(()) };
        if seen.len() > 100_000 {
            seen.retain(|_, times| times.last().is_some_and(|t| *t > now - 3600));
        }
        let times = seen.entry(account_id.to_owned()).or_default();
        times.retain(|t| *t > now - 3600);
        if times.len() >= limit {
            return Err(AcmeError::new(ErrorType::RateLimited, format!("at most {limit} new orders per hour")));
        }
        times.push(now);
        Ok(())
    }
}

/// The key authorization for `token` and an account key (§8.1).
pub fn key_authorization(token: &str, jwk: &Value) -> String {
    format!("{token}.{}", jws::thumbprint(jwk))
}

/// 128 bits of randomness, base64url: ids and challenge tokens (256 bits for tokens).
pub fn random_id(octets: usize) -> String {
    use base64ct::Encoding;
    use ring::rand::SecureRandom;
    let mut buf = vec![0u8; octets];
    let _ = ring::rand::SystemRandom::new().fill(&mut buf);
    base64ct::Base64UrlUnpadded::encode_string(&buf)
}

/// Shared state handle.
pub type State<B> = Arc<AcmeState<B>>;
