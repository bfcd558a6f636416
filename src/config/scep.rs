//! `[scep]`: the SCEP server (mounted on the plain HTTP listener under `/scep`), the RA
//! certificate's lifetime, the RenewalReq window, and the path names that select a profile
//! (`/scep/<name>/…`; `default` serves `/scep` itself and unknown device suffixes such as
//! `/scep/pkiclient.exe`).

use std::{collections::BTreeMap, path::Path, time::Duration};

use serde::Deserialize;

use super::{
    duration,
    secrets::{SecretRef, SecretSource},
    ConfigError,
};
use crate::policy::Profile;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawScep {
    enabled: bool,
    ra_validity: String,
    renewal_window: String,
    names: BTreeMap<String, RawName>,
}

impl Default for RawScep {
    fn default() -> Self {
        Self { enabled: false, ra_validity: "365d".into(), renewal_window: "30d".into(), names: BTreeMap::new() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawName {
    profile: String,
    #[serde(default)]
    challenge: Option<SecretSource>,
    #[serde(default)]
    owner: Option<String>,
}

/// `[scep]`, validated.
#[derive(Debug, Clone, Default)]
pub struct ScepConfig {
    /// Serve SCEP.
    pub enabled: bool,
    /// Lifetime of the RA certificate (renewed at start-up when a third of it is left).
    pub ra_validity: Duration,
    /// A RenewalReq is accepted when the certificate that signs it expires within this window.
    pub renewal_window: Duration,
    /// Path names.
    pub names: BTreeMap<String, ScepName>,
}

/// `[scep.names.<name>]`.
#[derive(Debug, Clone)]
pub struct ScepName {
    /// Profile of the certificates.
    pub profile: String,
    /// A static challenge password (labs); one-time challenges from `privca scep challenge new`
    /// are accepted besides it.
    pub challenge: Option<SecretRef>,
    /// CLM owner when the challenge names none (else the profile's owner).
    pub owner: Option<String>,
}

pub(crate) fn build(
    raw: RawScep,
    profiles: &BTreeMap<String, Profile>,
    data_dir: &Path,
) -> Result<ScepConfig, ConfigError> {
    let d = |key: &str, v: &str| duration::parse(&format!("scep.{key}"), v);
    if raw.enabled && raw.names.is_empty() {
        return Err(ConfigError::invalid("scep.names", "define at least one name (e.g. [scep.names.default])"));
    }
    let mut names = BTreeMap::new();
    for (name, n) in raw.names {
        let key = format!("scep.names.{name}");
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(ConfigError::invalid(key, "names are letters, digits, - and _"));
        }
        if !profiles.contains_key(&n.profile) {
            return Err(ConfigError::invalid(format!("{key}.profile"), format!("unknown profile `{}`", n.profile)));
        }
        let challenge = n.challenge.map(|c| c.resolve(&format!("{key}.challenge"), data_dir)).transpose()?;
        names.insert(name, ScepName { profile: n.profile, challenge, owner: n.owner.filter(|o| !o.is_empty()) });
    }
    Ok(ScepConfig {
        enabled: raw.enabled,
        ra_validity: d("ra_validity", &raw.ra_validity)?,
        renewal_window: d("renewal_window", &raw.renewal_window)?,
        names,
    })
}
