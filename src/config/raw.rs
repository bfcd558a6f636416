//! Serde mirror of the TOML configuration. Every struct denies unknown fields so that a typo is
//! an error that names the key, not a silently ignored setting. Nothing here is validated: see
//! `config::Config::load` for the typed, checked form.

use std::path::PathBuf;

use serde::Deserialize;

use super::secrets::SecretSource;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) dev: bool,
    pub(crate) data_dir: Option<PathBuf>,
    #[serde(default)]
    pub(crate) server: RawServer,
    pub(crate) urls: RawUrls,
    pub(crate) database: RawDatabase,
    pub(crate) hsm: RawHsm,
    pub(crate) root: RawCaKey,
    #[serde(rename = "issuer")]
    pub(crate) issuers: Vec<RawIssuer>,
    pub(crate) profiles: RawProfiles,
    #[serde(default)]
    pub(crate) audit: RawAudit,
    #[serde(default)]
    pub(crate) crl: RawCrl,
    #[serde(default)]
    pub(crate) ocsp: RawOcsp,
    #[serde(default)]
    pub(crate) acme: super::acme::RawAcme,
    #[serde(default)]
    pub(crate) est: super::est::RawEst,
    #[serde(default)]
    pub(crate) scep: super::scep::RawScep,
    #[serde(default)]
    pub(crate) clm: super::clm::RawClm,
    #[serde(default)]
    pub(crate) reports: super::reports::RawReports,
    #[serde(default)]
    pub(crate) admin: super::admin::RawAdmin,
    #[serde(default)]
    pub(crate) log: RawLog,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    #[serde(default = "default_https")]
    pub(crate) https_listen: String,
    #[serde(default = "default_http")]
    pub(crate) http_listen: String,
    #[serde(default = "default_admin")]
    pub(crate) admin_listen: String,
    #[serde(default = "default_tls_names")]
    pub(crate) tls_names: Vec<String>,
    #[serde(default = "default_tls_profile")]
    pub(crate) tls_profile: String,
    #[serde(default = "default_grace")]
    pub(crate) shutdown_grace: String,
    #[serde(default = "default_request_timeout")]
    pub(crate) request_timeout: String,
    #[serde(default = "default_header_read_timeout")]
    pub(crate) header_read_timeout: String,
    #[serde(default = "default_idle_timeout")]
    pub(crate) idle_timeout: String,
    #[serde(default = "default_tls_handshake_timeout")]
    pub(crate) tls_handshake_timeout: String,
    /// Absent: derived from the open-file limit at start-up.
    #[serde(default)]
    pub(crate) max_connections: Option<u64>,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            https_listen: default_https(),
            http_listen: default_http(),
            admin_listen: default_admin(),
            tls_names: default_tls_names(),
            tls_profile: default_tls_profile(),
            shutdown_grace: default_grace(),
            request_timeout: default_request_timeout(),
            header_read_timeout: default_header_read_timeout(),
            idle_timeout: default_idle_timeout(),
            tls_handshake_timeout: default_tls_handshake_timeout(),
            max_connections: None,
        }
    }
}

fn default_https() -> String {
    "127.0.0.1:8443".into()
}
fn default_http() -> String {
    "127.0.0.1:8080".into()
}
fn default_admin() -> String {
    "127.0.0.1:9443".into()
}
fn default_tls_names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into()]
}
fn default_tls_profile() -> String {
    "tls-server".into()
}
fn default_grace() -> String {
    "10s".into()
}
fn default_request_timeout() -> String {
    "30s".into()
}
fn default_header_read_timeout() -> String {
    "10s".into()
}
fn default_idle_timeout() -> String {
    "30s".into()
}
fn default_tls_handshake_timeout() -> String {
    "10s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUrls {
    pub(crate) http_base: String,
    pub(crate) https_base: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDatabase {
    pub(crate) url: String,
    pub(crate) password: Option<SecretSource>,
    pub(crate) ca_file: Option<PathBuf>,
    #[serde(default = "default_max_connections")]
    pub(crate) max_connections: u32,
    #[serde(default = "default_job_lease")]
    pub(crate) job_lease: String,
}

fn default_max_connections() -> u32 {
    8
}

fn default_job_lease() -> String {
    "30s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHsm {
    #[serde(default = "default_module")]
    pub(crate) module: PathBuf,
    pub(crate) token_label: String,
    pub(crate) user_pin: SecretSource,
    pub(crate) so_pin: Option<SecretSource>,
    #[serde(default)]
    pub(crate) auto_init: bool,
    #[serde(default)]
    pub(crate) sessions: usize,
    #[serde(default)]
    pub(crate) queue_capacity: RawQueueCapacity,
}

/// `[hsm] queue_capacity`: jobs waiting per class; 0 = derived from the session count.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawQueueCapacity {
    pub(crate) issuance: usize,
    pub(crate) handshake: usize,
    pub(crate) protocol: usize,
    pub(crate) nonce: usize,
}

fn default_module() -> PathBuf {
    PathBuf::from(super::SOFTHSM2_MODULE)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCaKey {
    pub(crate) key: String,
    pub(crate) subject: String,
    pub(crate) validity: String,
    #[serde(default)]
    pub(crate) rsa_signature: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIssuer {
    pub(crate) id: String,
    pub(crate) key: String,
    pub(crate) subject: String,
    pub(crate) validity: String,
    #[serde(default)]
    pub(crate) rsa_signature: Option<String>,
    #[serde(default)]
    pub(crate) external: bool,
    #[serde(default)]
    pub(crate) name_constraints: Option<RawNameConstraints>,
    #[serde(default)]
    pub(crate) replaces: Option<String>,
    #[serde(default)]
    pub(crate) active_from: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNameConstraints {
    #[serde(default)]
    pub(crate) permitted_dns: Vec<String>,
    #[serde(default)]
    pub(crate) excluded_dns: Vec<String>,
    #[serde(default)]
    pub(crate) permitted_ip: Vec<String>,
    #[serde(default)]
    pub(crate) excluded_ip: Vec<String>,
    #[serde(default)]
    pub(crate) permitted_email: Vec<String>,
    #[serde(default)]
    pub(crate) excluded_email: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProfiles {
    pub(crate) dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudit {
    #[serde(default = "default_seal_interval")]
    pub(crate) seal_interval: String,
    #[serde(default = "default_checkpoint_key")]
    pub(crate) checkpoint_key: String,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self { seal_interval: default_seal_interval(), checkpoint_key: default_checkpoint_key() }
    }
}

fn default_seal_interval() -> String {
    "5s".into()
}
fn default_checkpoint_key() -> String {
    "ecdsa-p256".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawCrl {
    pub(crate) full_validity: String,
    pub(crate) full_interval: String,
    pub(crate) delta_validity: String,
    pub(crate) delta_interval: String,
    pub(crate) check_interval: String,
    pub(crate) full_after_revocation: String,
    pub(crate) keep_expired: bool,
}

impl Default for RawCrl {
    fn default() -> Self {
        Self {
            full_validity: "7d".into(),
            full_interval: "1d".into(),
            delta_validity: "1d".into(),
            delta_interval: "1h".into(),
            check_interval: "2s".into(),
            full_after_revocation: "5s".into(),
            keep_expired: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawOcsp {
    pub(crate) validity: String,
    pub(crate) refresh_before: String,
    pub(crate) responder_validity: String,
    pub(crate) check_interval: String,
    pub(crate) presign_per_second: u32,
    pub(crate) sign_nonce: bool,
    pub(crate) nonce_signatures_per_second: u32,
    pub(crate) malformed_delay: String,
}

impl Default for RawOcsp {
    fn default() -> Self {
        Self {
            validity: "1d".into(),
            refresh_before: "12h".into(),
            responder_validity: "7d".into(),
            check_interval: "1s".into(),
            presign_per_second: 500,
            sign_nonce: true,
            nonce_signatures_per_second: 200,
            malformed_delay: "20ms".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    #[serde(default)]
    pub(crate) format: Option<String>,
    #[serde(default)]
    pub(crate) filter: Option<String>,
}

/// A profile file (`conf/profiles/<name>.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProfile {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) issuer: String,
    pub(crate) validity: String,
    pub(crate) key_usage: Vec<String>,
    #[serde(default)]
    pub(crate) extended_key_usage: Vec<String>,
    pub(crate) allowed_keys: Vec<String>,
    #[serde(default)]
    pub(crate) san: RawSanRules,
    #[serde(default)]
    pub(crate) subject: RawSubjectTemplate,
    #[serde(default)]
    pub(crate) renewal_reuse_key: bool,
    #[serde(default)]
    pub(crate) approval: bool,
    #[serde(default)]
    pub(crate) approvers: Option<u8>,
    #[serde(default)]
    pub(crate) urls: RawProfileUrls,
    pub(crate) owner: String,
    pub(crate) tier: String,
    #[serde(default)]
    pub(crate) policies: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSanRules {
    #[serde(default)]
    pub(crate) types: Vec<String>,
    #[serde(default)]
    pub(crate) required: bool,
    #[serde(default = "default_max_names")]
    pub(crate) max_names: usize,
    #[serde(default)]
    pub(crate) wildcards: bool,
    #[serde(default = "default_allow_all")]
    pub(crate) dns_allow: Vec<String>,
    #[serde(default)]
    pub(crate) dns_deny: Vec<String>,
    #[serde(default = "default_from_cn")]
    pub(crate) from_cn: String,
}

fn default_from_cn() -> String {
    "never".into()
}

impl Default for RawSanRules {
    fn default() -> Self {
        Self {
            types: Vec::new(),
            required: false,
            max_names: default_max_names(),
            wildcards: false,
            dns_allow: default_allow_all(),
            dns_deny: Vec::new(),
            from_cn: default_from_cn(),
        }
    }
}

fn default_max_names() -> usize {
    100
}
fn default_allow_all() -> Vec<String> {
    vec!["*".into()]
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSubjectTemplate {
    #[serde(default)]
    pub(crate) copy: Vec<String>,
    #[serde(default)]
    pub(crate) force: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) require: Vec<String>,
    #[serde(default)]
    pub(crate) cn_from_san: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProfileUrls {
    #[serde(default = "yes")]
    pub(crate) crl: bool,
    #[serde(default = "yes")]
    pub(crate) ocsp: bool,
    #[serde(default = "yes")]
    pub(crate) ca_issuers: bool,
}

impl Default for RawProfileUrls {
    fn default() -> Self {
        Self { crl: true, ocsp: true, ca_issuers: true }
    }
}

fn yes() -> bool {
    true
}
