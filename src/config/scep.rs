//! `[scep]`: the SCEP server (mounted on the plain HTTP listener under `/scep`), the RA keys
//! (one key per job by default, or one shared key) and their certificates' lifetime, the limit
//! on envelopes that do not open, the RenewalReq window, and the path names that select a profile
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
    ra_keys: RaKeys,
    ra_validity: String,
    renewal_window: String,
    envelope_failures_per_minute: u32,
    names: BTreeMap<String, RawName>,
}

impl Default for RawScep {
    fn default() -> Self {
        Self {
            enabled: false,
            ra_keys: RaKeys::Separate,
            ra_validity: "365d".into(),
            renewal_window: "30d".into(),
            envelope_failures_per_minute: 20,
            names: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawName {
    profile: String,
    #[serde(default)]
    ca_certs: CaCertsContent,
    #[serde(default)]
    allow_single_des: bool,
    #[serde(default)]
    challenge: Option<SecretSource>,
    #[serde(default)]
    owner: Option<String>,
}

/// How many RSA keys the RA uses (`scep.ra_keys`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RaKeys {
    /// One key signs CertReps, another decrypts request envelopes; GetCACert returns both
    /// certificates, the encryption one first. A padding oracle on the decryption key then
    /// cannot forge RA signatures.
    #[default]
    Separate,
    /// One key does both (keyEncipherment and digitalSignature), for devices that expect a
    /// single RA certificate.
    Shared,
}

/// `[scep]`, validated.
#[derive(Debug, Clone, Default)]
pub struct ScepConfig {
    /// Serve SCEP.
    pub enabled: bool,
    /// One RA key for each job, or one for both.
    pub ra_keys: RaKeys,
    /// Lifetime of the RA certificates (renewed when a third of it is left).
    pub ra_validity: Duration,
    /// A RenewalReq is accepted when the certificate that signs it expires within this window.
    pub renewal_window: Duration,
    /// Envelopes that do not open, per client address and minute, before the address gets
    /// HTTP 429 (0: no limit).
    pub envelope_failures_per_minute: u32,
    /// Path names.
    pub names: BTreeMap<String, ScepName>,
}

/// What GetCACert returns besides the RA certificates (`ca_certs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum CaCertsContent {
    /// The issuing CA and the root.
    #[default]
    IssuerAndRoot,
    /// The issuing CA only (clients that encrypt to every certificate they get and cannot use
    /// the root's key type).
    Issuer,
}

/// `[scep.names.<name>]`.
#[derive(Debug, Clone)]
pub struct ScepName {
    /// Profile of the certificates; its issuer issues them and certifies the RA keys this name
    /// presents.
    pub profile: String,
    /// GetCACert carries the root after the issuing CA.
    pub include_root: bool,
    /// Requests encrypted with single DES (56-bit keys) are accepted (replies use AES-128).
    pub allow_single_des: bool,
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
        let Some(profile) = profiles.get(&n.profile) else {
            return Err(ConfigError::invalid(format!("{key}.profile"), format!("unknown profile `{}`", n.profile)));
        };
        if profile.approval && n.challenge.is_some() {
            // The approval queue keeps the whole request, challengePassword included, until an
            // operator decides: a static challenge would sit in the ledger in the clear.
            return Err(ConfigError::invalid(
                format!("{key}.challenge"),
                format!("profile `{}` needs approval; use one-time challenges there", n.profile),
            ));
        }
        let challenge = n.challenge.map(|c| c.resolve(&format!("{key}.challenge"), data_dir)).transpose()?;
        names.insert(
            name,
            ScepName {
                profile: n.profile,
                include_root: n.ca_certs == CaCertsContent::IssuerAndRoot,
                allow_single_des: n.allow_single_des,
                challenge,
                owner: n.owner.filter(|o| !o.is_empty()),
            },
        );
    }
    Ok(ScepConfig {
        enabled: raw.enabled,
        ra_keys: raw.ra_keys,
        envelope_failures_per_minute: raw.envelope_failures_per_minute,
        ra_validity: d("ra_validity", &raw.ra_validity)?,
        renewal_window: d("renewal_window", &raw.renewal_window)?,
        names,
    })
}
