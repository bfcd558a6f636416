//! What the router is configured with (built by the core from its `[acme]` section).

use std::time::Duration;

/// ACME server settings.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// Scheme, host and port clients use, e.g. `https://127.0.0.1:8443` (the `url` of every JWS
    /// is checked against it plus the request path).
    pub origin: String,
    /// Path the router is mounted at, e.g. `/acme`.
    pub prefix: String,
    /// `meta.termsOfService`; when set, newAccount must agree to it.
    pub terms_of_service: Option<String>,
    /// `meta.website`.
    pub website: Option<String>,
    /// `meta.caaIdentities`.
    pub caa_identities: Vec<String>,
    /// `meta.externalAccountRequired`.
    pub eab_required: bool,
    /// Profiles offered in `meta.profiles`: name and description.
    pub profiles: Vec<(String, String)>,
    /// How long an order stays usable.
    pub order_lifetime: Duration,
    /// How long an authorization stays usable (valid ones may be reused within it).
    pub authz_lifetime: Duration,
    /// Reuse a valid authorization of the same account for the same identifier.
    pub authz_reuse: bool,
    /// How long a nonce is accepted.
    pub nonce_lifetime: Duration,
    /// New orders per account and hour (0: no limit); counted per instance.
    pub orders_per_hour: u32,
    /// `Retry-After` seconds on processing orders and challenges.
    pub retry_after: u64,
    /// `Retry-After` seconds on ARI answers.
    pub ari_retry_after: u64,
    /// Dev mode only: challenges are marked valid without validation (for benchmarks against
    /// pebble's `PEBBLE_VA_ALWAYS_VALID`).
    pub skip_validation: bool,
}
