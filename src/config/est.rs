//! `[est]`: the EST server (mounted on the HTTPS listener under `/.well-known/est`), its labels
//! (each one a profile, the ways it authenticates and which client certificates it accepts for
//! what, an optional CLM owner and the key type `/serverkeygen` generates), the bootstrap CAs
//! whose client certificates may enroll where a label says so, and the budgets of failed
//! password checks.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

pub use privca_est::CertAuth;
use serde::Deserialize;

use super::{duration, ConfigError};
use crate::{policy::Profile, signer::KeyAlgorithm};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawEst {
    enabled: bool,
    realm: String,
    retry_after: String,
    password_cache: String,
    password_checks: usize,
    address_failures_per_minute: u32,
    user_failures_per_minute: u32,
    bootstrap_ca: Vec<PathBuf>,
    labels: BTreeMap<String, RawLabel>,
}

impl Default for RawEst {
    fn default() -> Self {
        Self {
            enabled: false,
            realm: "privca EST".into(),
            retry_after: "30s".into(),
            password_cache: "5m".into(),
            password_checks: 2,
            address_failures_per_minute: 20,
            user_failures_per_minute: 10,
            bootstrap_ca: Vec::new(),
            labels: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabel {
    profile: String,
    #[serde(default = "default_auth")]
    auth: Vec<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default = "default_keygen")]
    serverkeygen_key: String,
    #[serde(default)]
    cert_issuers: Option<Vec<String>>,
    #[serde(default)]
    cert_profiles: Option<Vec<String>>,
    #[serde(default)]
    cert_subjects: Option<Vec<String>>,
    #[serde(default)]
    cert_names: CertNames,
}

fn default_auth() -> Vec<String> {
    vec!["basic".into(), "reenroll".into()]
}

/// What a client certificate may ask for with `/simpleenroll` (and `/serverkeygen`,
/// `/fullcmc`) on a label that accepts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertNames {
    /// The certificate's own subject and subjectAltNames, nothing else (a new key).
    #[default]
    Own,
    /// CN = the certificate subject's serialNumber attribute and no subjectAltName: a device
    /// with a manufacturer's IDevID enrolls its own serial number.
    SerialNumber,
    /// Whatever the label's profile allows.
    Any,
}

/// Where a client certificate must come from to authenticate to a label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertRules {
    /// privca issuer ids whose certificates are accepted; `"bootstrap"` stands for the
    /// certificates of `est.bootstrap_ca`.
    pub issuers: Vec<String>,
    /// The profiles a privca-issued certificate must have been issued under.
    pub profiles: Vec<String>,
    /// Subject patterns (RFC 4514 text; `*` matches any run of characters); one must match.
    pub subjects: Vec<String>,
    /// What the certificate may enroll.
    pub names: CertNames,
}

/// The issuer id that stands for the bootstrap CAs in `cert_issuers`.
pub const BOOTSTRAP_ISSUER: &str = "bootstrap";

fn default_keygen() -> String {
    "ecdsa-p256".into()
}

/// `[est]`, validated.
#[derive(Debug, Clone, Default)]
pub struct EstConfig {
    /// Serve EST.
    pub enabled: bool,
    /// HTTP Basic realm.
    pub realm: String,
    /// Retry-After for requests awaiting approval.
    pub retry_after: Duration,
    /// How long a verified Basic password is remembered (argon2 is deliberately slow).
    pub password_cache: Duration,
    /// argon2 checks run at once (each takes ~19 MiB and a core for a few tens of ms); more
    /// wait, and past eight waiters per check a request gets 503.
    pub password_checks: usize,
    /// Failed Basic checks per client address and minute before the address gets 429 without
    /// any check (0: no limit).
    pub address_failures_per_minute: u32,
    /// Failed Basic checks per user and minute before that user's passwords are no longer
    /// checked with argon2 for the minute (429; a remembered password still works).
    pub user_failures_per_minute: u32,
    /// PEM files of CAs whose client certificates may enroll (e.g. a manufacturer's IDevID CA);
    /// relative paths are under the data directory.
    pub bootstrap_ca: Vec<PathBuf>,
    /// Labels by name (`default` serves paths without a label).
    pub labels: BTreeMap<String, EstLabel>,
}

/// `[est.labels.<name>]`.
#[derive(Debug, Clone)]
pub struct EstLabel {
    /// Profile its certificates are issued under.
    pub profile: String,
    /// HTTP Basic allowed.
    pub basic: bool,
    /// TLS client certificates accepted, and for what.
    pub client_cert: CertAuth,
    /// Which client certificates authenticate (with `client_cert = On`).
    pub cert_rules: CertRules,
    /// CLM owner of its certificates (else the enrolling identity).
    pub owner: Option<String>,
    /// Key `/serverkeygen` generates.
    pub serverkeygen_key: KeyAlgorithm,
}

/// Operation names, which a label must not take (RFC 7030 §3.2.2).
const OPERATIONS: [&str; 6] = ["cacerts", "simpleenroll", "simplereenroll", "csrattrs", "serverkeygen", "fullcmc"];

pub(crate) fn build(raw: RawEst, profiles: &BTreeMap<String, Profile>) -> Result<EstConfig, ConfigError> {
    let d = |key: &str, v: &str| duration::parse(&format!("est.{key}"), v);
    if raw.enabled && raw.labels.is_empty() {
        return Err(ConfigError::invalid("est.labels", "define at least one label (e.g. [est.labels.default])"));
    }
    let mut labels = BTreeMap::new();
    for (name, l) in raw.labels {
        let key = format!("est.labels.{name}");
        if OPERATIONS.contains(&name.as_str())
            || name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::invalid(
                key,
                "label names are letters, digits, - and _, and not an operation name",
            ));
        }
        let Some(profile) = profiles.get(&l.profile) else {
            return Err(ConfigError::invalid(format!("{key}.profile"), format!("unknown profile `{}`", l.profile)));
        };
        let (mut basic, mut client_cert) = (false, CertAuth::Off);
        for a in &l.auth {
            match a.as_str() {
                "basic" => basic = true,
                "cert" => client_cert = CertAuth::On,
                "reenroll" if client_cert == CertAuth::Off => client_cert = CertAuth::Reenroll,
                "reenroll" => {}
                other => {
                    return Err(ConfigError::invalid(
                        format!("{key}.auth"),
                        format!("`{other}`: use basic, reenroll and/or cert"),
                    ))
                }
            }
        }
        if !basic && client_cert == CertAuth::Off {
            return Err(ConfigError::invalid(format!("{key}.auth"), "name at least one of basic, reenroll, cert"));
        }
        let cert_rules = cert_rules(&key, &l, profile, profiles, &raw.bootstrap_ca, client_cert)?;
        let serverkeygen_key: KeyAlgorithm = l
            .serverkeygen_key
            .parse()
            .ok()
            .filter(|k| matches!(k, KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384))
            .ok_or_else(|| ConfigError::invalid(format!("{key}.serverkeygen_key"), "use ecdsa-p256 or ecdsa-p384"))?;
        if !profile.allowed_keys.contains(&serverkeygen_key) {
            return Err(ConfigError::invalid(
                format!("{key}.serverkeygen_key"),
                format!("profile `{}` does not allow {}", profile.name, serverkeygen_key.name()),
            ));
        }
        let owner = l.owner.filter(|o| !o.is_empty());
        labels.insert(name, EstLabel { profile: l.profile, basic, client_cert, cert_rules, owner, serverkeygen_key });
    }
    if raw.password_checks == 0 {
        return Err(ConfigError::invalid("est.password_checks", "at least 1"));
    }
    Ok(EstConfig {
        enabled: raw.enabled,
        realm: raw.realm,
        retry_after: d("retry_after", &raw.retry_after)?,
        password_cache: d("password_cache", &raw.password_cache)?,
        password_checks: raw.password_checks,
        address_failures_per_minute: raw.address_failures_per_minute,
        user_failures_per_minute: raw.user_failures_per_minute,
        bootstrap_ca: raw.bootstrap_ca,
        labels,
    })
}

/// The label's client-certificate rules: by default the issuer and the profile of the label's
/// own profile, any subject, the certificate's own names.
fn cert_rules(
    key: &str,
    l: &RawLabel,
    profile: &Profile,
    profiles: &BTreeMap<String, Profile>,
    bootstrap_ca: &[PathBuf],
    client_cert: CertAuth,
) -> Result<CertRules, ConfigError> {
    let given = l.cert_issuers.is_some() || l.cert_profiles.is_some() || l.cert_subjects.is_some();
    if given && client_cert != CertAuth::On {
        return Err(ConfigError::invalid(format!("{key}.auth"), "cert_* keys need \"cert\" in auth"));
    }
    let issuers = l.cert_issuers.clone().unwrap_or_else(|| vec![profile.issuer.clone()]);
    for i in &issuers {
        if i == BOOTSTRAP_ISSUER && bootstrap_ca.is_empty() {
            return Err(ConfigError::invalid(format!("{key}.cert_issuers"), "\"bootstrap\" needs est.bootstrap_ca"));
        }
    }
    let profile_names = l.cert_profiles.clone().unwrap_or_else(|| vec![profile.name.clone()]);
    if let Some(unknown) = profile_names.iter().find(|p| !profiles.contains_key(*p)) {
        return Err(ConfigError::invalid(format!("{key}.cert_profiles"), format!("unknown profile `{unknown}`")));
    }
    let subjects = l.cert_subjects.clone().unwrap_or_else(|| vec!["*".into()]);
    if subjects.is_empty() {
        return Err(ConfigError::invalid(format!("{key}.cert_subjects"), "name at least one pattern (\"*\": any)"));
    }
    Ok(CertRules { issuers, profiles: profile_names, subjects, names: l.cert_names })
}
