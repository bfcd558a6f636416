//! `[est]`: the EST server (mounted on the HTTPS listener under `/.well-known/est`), its labels
//! (each one a profile, the ways it authenticates, an optional CLM owner and the key type
//! `/serverkeygen` generates) and the bootstrap CAs whose client certificates may enroll.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

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
}

fn default_auth() -> Vec<String> {
    vec!["basic".into(), "cert".into()]
}

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
    /// TLS client certificates allowed.
    pub client_cert: bool,
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
        let (mut basic, mut client_cert) = (false, false);
        for a in &l.auth {
            match a.as_str() {
                "basic" => basic = true,
                "cert" => client_cert = true,
                other => {
                    return Err(ConfigError::invalid(
                        format!("{key}.auth"),
                        format!("`{other}`: use basic and/or cert"),
                    ))
                }
            }
        }
        if !basic && !client_cert {
            return Err(ConfigError::invalid(format!("{key}.auth"), "name at least one of basic, cert"));
        }
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
        labels.insert(name, EstLabel { profile: l.profile, basic, client_cert, owner, serverkeygen_key });
    }
    Ok(EstConfig {
        enabled: raw.enabled,
        realm: raw.realm,
        retry_after: d("retry_after", &raw.retry_after)?,
        password_cache: d("password_cache", &raw.password_cache)?,
        bootstrap_ca: raw.bootstrap_ca,
        labels,
    })
}
