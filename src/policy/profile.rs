//! `Profile`: what a certificate of a given kind looks like (issuer, validity, key usage, EKU,
//! allowed keys, SAN rules, subject template, URLs, CLM owner and tier). Loaded from
//! `conf/profiles/*.toml` and validated once; `ca::prepare` applies it.

use std::time::Duration;

use const_oid::ObjectIdentifier;
use x509_cert::ext::pkix::KeyUsages;

use super::Tier;
use crate::{
    config::{raw::RawProfile, ConfigError},
    signer::KeyAlgorithm,
};

/// A validated certificate profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Name used on the CLI and in protocols.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Issuer id.
    pub issuer: String,
    /// Certificate lifetime (capped at the issuer's remaining lifetime).
    pub validity: Duration,
    /// Key usage bits. `keyEncipherment`/`dataEncipherment` apply to RSA keys only and
    /// `keyAgreement` to EC keys only; the others are dropped for the other key types.
    pub key_usage: Vec<KeyUsages>,
    /// Extended key usages.
    pub extended_key_usage: Vec<ObjectIdentifier>,
    /// Acceptable subject key types.
    pub allowed_keys: Vec<KeyAlgorithm>,
    /// SAN rules.
    pub san: SanRules,
    /// Subject template.
    pub subject: SubjectTemplate,
    /// Whether a renewal may keep the old key.
    pub renewal_reuse_key: bool,
    /// Whether issuance waits for an operator's approval.
    pub approval: bool,
    /// How many distinct approvers a request needs (1 or 2; more than 1 implies `approval`).
    pub approvers: u8,
    /// Which of the issuer's URLs go into the certificate.
    pub urls: ProfileUrls,
    /// Default CLM owner.
    pub owner: String,
    /// CLM tier.
    pub tier: Tier,
    /// Certificate policy OIDs.
    pub policies: Vec<ObjectIdentifier>,
    /// Add id-pkix-ocsp-nocheck (delegated OCSP responders only; not settable in files).
    pub ocsp_nocheck: bool,
}

/// Name of the built-in profile of delegated OCSP responder certificates.
pub const OCSP_RESPONDER_PROFILE: &str = "ocsp-responder";

/// What a SCEP RA certificate is for (`scep.ra_keys`), and the name of its built-in profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaRole {
    /// One key decrypts request envelopes and signs CertReps (`ra_keys = "shared"`).
    Both,
    /// The decryption key of `ra_keys = "separate"`.
    Encryption,
    /// The signing key of `ra_keys = "separate"`.
    Signing,
}

impl RaRole {
    /// The built-in profile's name.
    pub fn profile_name(self) -> &'static str {
        match self {
            Self::Both => "scep-ra",
            Self::Encryption => "scep-ra-encryption",
            Self::Signing => "scep-ra-signing",
        }
    }
}

impl Profile {
    /// The built-in delegated OCSP responder profile (RFC 6960 §4.2.2.2): issued by `issuer`,
    /// EKU id-kp-OCSPSigning, id-pkix-ocsp-nocheck, short `validity`, no SAN, no revocation
    /// pointers.
    pub fn ocsp_responder(issuer: &str, validity: Duration) -> Profile {
        Profile {
            name: OCSP_RESPONDER_PROFILE.into(),
            description: "delegated OCSP responder".into(),
            issuer: issuer.into(),
            validity,
            key_usage: vec![KeyUsages::DigitalSignature],
            extended_key_usage: vec![const_oid::db::rfc5280::ID_KP_OCSP_SIGNING],
            allowed_keys: vec![KeyAlgorithm::EcdsaP256],
            san: SanRules {
                types: Vec::new(),
                required: false,
                max_names: 0,
                wildcards: false,
                dns_allow: Vec::new(),
                dns_deny: Vec::new(),
                from_cn: CnToSan::Never,
            },
            subject: SubjectTemplate {
                copy: Vec::new(),
                force: vec![
                    (SubjectAttribute::Organization, "privca".into()),
                    (SubjectAttribute::CommonName, format!("privca OCSP responder ({issuer})")),
                ],
                require: Vec::new(),
                cn_from_san: false,
            },
            renewal_reuse_key: true,
            approval: false,
            approvers: 1,
            urls: ProfileUrls { crl: false, ocsp: false, ca_issuers: true },
            owner: "privca".into(),
            tier: Tier::internal(),
            policies: Vec::new(),
            ocsp_nocheck: true,
        }
    }
}

impl Profile {
    /// The built-in SCEP RA profiles (RFC 8894 §2.2): issued by `issuer` for
    /// an RA RSA key, keyUsage digitalSignature (CertRep signatures), keyEncipherment (request
    /// envelopes) or both, as `role` says; not a CA, no SAN.
    pub fn scep_ra(issuer: &str, validity: Duration, role: RaRole) -> Profile {
        let mut profile = Profile::ocsp_responder(issuer, validity);
        profile.name = role.profile_name().into();
        let (usage, key_usage) = match role {
            RaRole::Both => ("", vec![KeyUsages::DigitalSignature, KeyUsages::KeyEncipherment]),
            RaRole::Encryption => (" encryption", vec![KeyUsages::KeyEncipherment]),
            RaRole::Signing => (" signing", vec![KeyUsages::DigitalSignature]),
        };
        profile.description = format!("SCEP registration authority{usage}");
        profile.key_usage = key_usage;
        profile.extended_key_usage = Vec::new();
        profile.allowed_keys = vec![KeyAlgorithm::Rsa2048];
        profile.subject.force = vec![
            (SubjectAttribute::Organization, "privca".into()),
            (SubjectAttribute::CommonName, format!("privca SCEP RA{usage} ({issuer})")),
        ];
        profile.ocsp_nocheck = false;
        profile
    }
}

/// SAN types a profile may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanType {
    /// dNSName.
    Dns,
    /// rfc822Name.
    Email,
    /// iPAddress.
    Ip,
    /// uniformResourceIdentifier.
    Uri,
}

impl SanType {
    /// Config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::Email => "email",
            Self::Ip => "ip",
            Self::Uri => "uri",
        }
    }
}

/// SAN rules.
#[derive(Debug, Clone)]
pub struct SanRules {
    /// Allowed SAN types.
    pub types: Vec<SanType>,
    /// At least one SAN is required.
    pub required: bool,
    /// Maximum number of SANs.
    pub max_names: usize,
    /// Wildcard DNS names allowed.
    pub wildcards: bool,
    /// DNS allow patterns.
    pub dns_allow: Vec<String>,
    /// DNS deny patterns.
    pub dns_deny: Vec<String>,
    /// Whether the request's subject CN also becomes a SAN.
    pub from_cn: CnToSan,
}

/// `san.from_cn`: whether a request's subject CN is copied into a SAN (so that a CN-only
/// request from a device still gets a certificate a TLS client matches by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CnToSan {
    /// `"never"` (the default): the CN stays in the subject only.
    Never,
    /// `"dns-if-hostname"`: a CN that is a host name (at least two labels, see
    /// [`crate::policy::identifiers::is_hostname`]) becomes a dNSName, one that is an IP address
    /// an iPAddress, when `san.types` allows that type; any other CN (a serial number, a MAC
    /// address) stays in the subject only. The copied name passes the same rules as a requested
    /// one (wildcards, dns_allow/dns_deny, max_names).
    DnsIfHostname,
}

impl CnToSan {
    /// Config spellings.
    pub const NAMES: [&'static str; 2] = ["never", "dns-if-hostname"];

    /// Config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::DnsIfHostname => "dns-if-hostname",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "never" => Some(Self::Never),
            "dns-if-hostname" => Some(Self::DnsIfHostname),
            _ => None,
        }
    }
}

/// Subject attributes a profile can copy, force or require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectAttribute {
    /// commonName.
    CommonName,
    /// countryName.
    Country,
    /// localityName.
    Locality,
    /// organizationName.
    Organization,
    /// organizationalUnitName.
    OrganizationalUnit,
    /// serialNumber.
    SerialNumber,
    /// stateOrProvinceName.
    State,
}

impl SubjectAttribute {
    /// Order in which attributes are written into the subject (most general first).
    pub const ENCODING_ORDER: [SubjectAttribute; 7] = [
        Self::Country,
        Self::State,
        Self::Locality,
        Self::Organization,
        Self::OrganizationalUnit,
        Self::SerialNumber,
        Self::CommonName,
    ];

    /// Attribute type OID.
    pub fn oid(self) -> ObjectIdentifier {
        use const_oid::db::rfc4519;
        match self {
            Self::CommonName => rfc4519::CN,
            Self::Country => rfc4519::C,
            Self::Locality => rfc4519::L,
            Self::Organization => rfc4519::O,
            Self::OrganizationalUnit => rfc4519::OU,
            Self::SerialNumber => rfc4519::SERIAL_NUMBER,
            Self::State => rfc4519::ST,
        }
    }

    /// RFC 4514 short name.
    pub fn short_name(self) -> &'static str {
        match self {
            Self::CommonName => "CN",
            Self::Country => "C",
            Self::Locality => "L",
            Self::Organization => "O",
            Self::OrganizationalUnit => "OU",
            Self::SerialNumber => "serialNumber",
            Self::State => "ST",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ENCODING_ORDER.into_iter().find(|a| a.short_name().eq_ignore_ascii_case(s))
    }

    /// Upper bound on the value length (RFC 5280 Appendix A `ub-*`).
    pub fn max_len(self) -> usize {
        match self {
            Self::CommonName | Self::Locality | Self::State => 128,
            Self::Country => 2,
            Self::Organization | Self::OrganizationalUnit => 64,
            Self::SerialNumber => 64,
        }
    }
}

/// Subject template.
#[derive(Debug, Clone, Default)]
pub struct SubjectTemplate {
    /// Attributes copied from the CSR (others are dropped).
    pub copy: Vec<SubjectAttribute>,
    /// Attributes the profile sets, overriding the CSR.
    pub force: Vec<(SubjectAttribute, String)>,
    /// Attributes that must be present after copy and force.
    pub require: Vec<SubjectAttribute>,
    /// Fill CN from the first SAN when the CSR has none.
    pub cn_from_san: bool,
}

/// Which issuer URLs a certificate carries.
#[derive(Debug, Clone, Copy)]
pub struct ProfileUrls {
    /// CRL distribution point.
    pub crl: bool,
    /// AIA OCSP.
    pub ocsp: bool,
    /// AIA caIssuers.
    pub ca_issuers: bool,
}

impl Profile {
    pub(crate) fn from_raw(raw: RawProfile, validity: Duration) -> Result<Profile, ConfigError> {
        let key = |k: &str| format!("profile `{}`.{k}", raw.name);
        let key_usage = raw
            .key_usage
            .iter()
            .map(|k| {
                key_usage(k).ok_or_else(|| ConfigError::invalid(key("key_usage"), format!("unknown key usage `{k}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if key_usage.iter().any(|k| matches!(k, KeyUsages::KeyCertSign | KeyUsages::CRLSign)) {
            return Err(ConfigError::invalid(key("key_usage"), "leaf profiles cannot have keyCertSign or cRLSign"));
        }
        if key_usage.is_empty() {
            return Err(ConfigError::invalid(key("key_usage"), "name at least one key usage"));
        }
        let extended_key_usage = raw
            .extended_key_usage
            .iter()
            .map(|e| {
                eku(e).ok_or_else(|| ConfigError::invalid(key("extended_key_usage"), format!("unknown EKU `{e}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let allowed_keys = raw
            .allowed_keys
            .iter()
            .map(|k| {
                k.parse::<KeyAlgorithm>().map_err(|_| {
                    ConfigError::invalid(key("allowed_keys"), format!("`{k}`: use {}", KeyAlgorithm::NAMES.join(", ")))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if allowed_keys.is_empty() {
            return Err(ConfigError::invalid(key("allowed_keys"), "name at least one key type"));
        }
        let types = raw
            .san
            .types
            .iter()
            .map(|t| match t.as_str() {
                "dns" => Ok(SanType::Dns),
                "email" => Ok(SanType::Email),
                "ip" => Ok(SanType::Ip),
                "uri" => Ok(SanType::Uri),
                other => Err(ConfigError::invalid(key("san.types"), format!("`{other}`: use dns, ip, email or uri"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if raw.san.required && types.is_empty() {
            return Err(ConfigError::invalid(key("san.required"), "SANs are required but no san.types are allowed"));
        }
        let from_cn = CnToSan::parse(&raw.san.from_cn).ok_or_else(|| {
            ConfigError::invalid(
                key("san.from_cn"),
                format!("`{}`: use {}", raw.san.from_cn, CnToSan::NAMES.join(" or ")),
            )
        })?;
        if from_cn != CnToSan::Never && !types.contains(&SanType::Dns) {
            return Err(ConfigError::invalid(
                key("san.from_cn"),
                "copying the CN to a dNSName needs \"dns\" in san.types",
            ));
        }
        let attr = |k: &str, s: &str| {
            SubjectAttribute::parse(s)
                .ok_or_else(|| ConfigError::invalid(key(k), format!("`{s}`: use CN, O, OU, C, ST, L or serialNumber")))
        };
        let subject = SubjectTemplate {
            copy: raw.subject.copy.iter().map(|s| attr("subject.copy", s)).collect::<Result<_, _>>()?,
            force: raw
                .subject
                .force
                .iter()
                .map(|(k, v)| Ok((attr("subject.force", k)?, v.clone())))
                .collect::<Result<_, ConfigError>>()?,
            require: raw.subject.require.iter().map(|s| attr("subject.require", s)).collect::<Result<_, _>>()?,
            cn_from_san: raw.subject.cn_from_san,
        };
        // Whether the tier is configured is checked with `[clm.tiers]`.
        let tier = Tier::parse(&raw.tier).ok_or_else(|| {
            ConfigError::invalid(
                key("tier"),
                format!("`{}` is not a tier name (lower-case letters, digits, `-`, `_`)", raw.tier),
            )
        })?;
        let policies = raw
            .policies
            .iter()
            .map(|p| p.parse().map_err(|_| ConfigError::invalid(key("policies"), format!("`{p}` is not an OID"))))
            .collect::<Result<Vec<_>, _>>()?;
        if raw.owner.is_empty() {
            return Err(ConfigError::invalid(key("owner"), "must not be empty"));
        }
        let approvers = raw.approvers.unwrap_or(1);
        if !(1..=2).contains(&approvers) {
            return Err(ConfigError::invalid(key("approvers"), format!("{approvers}: use 1 or 2")));
        }
        Ok(Profile {
            name: raw.name,
            description: raw.description.unwrap_or_default(),
            issuer: raw.issuer,
            validity,
            key_usage,
            extended_key_usage,
            allowed_keys,
            san: SanRules {
                types,
                required: raw.san.required,
                max_names: raw.san.max_names,
                wildcards: raw.san.wildcards,
                dns_allow: raw.san.dns_allow,
                dns_deny: raw.san.dns_deny,
                from_cn,
            },
            subject,
            renewal_reuse_key: raw.renewal_reuse_key,
            approval: raw.approval || approvers > 1,
            approvers,
            urls: ProfileUrls { crl: raw.urls.crl, ocsp: raw.urls.ocsp, ca_issuers: raw.urls.ca_issuers },
            owner: raw.owner,
            tier,
            policies,
            ocsp_nocheck: false,
        })
    }
}

fn key_usage(name: &str) -> Option<KeyUsages> {
    Some(match name {
        "digitalSignature" => KeyUsages::DigitalSignature,
        "nonRepudiation" | "contentCommitment" => KeyUsages::NonRepudiation,
        "keyEncipherment" => KeyUsages::KeyEncipherment,
        "dataEncipherment" => KeyUsages::DataEncipherment,
        "keyAgreement" => KeyUsages::KeyAgreement,
        "keyCertSign" => KeyUsages::KeyCertSign,
        "cRLSign" => KeyUsages::CRLSign,
        _ => return None,
    })
}

fn eku(name: &str) -> Option<ObjectIdentifier> {
    use const_oid::db::rfc5280;
    Some(match name {
        "serverAuth" => rfc5280::ID_KP_SERVER_AUTH,
        "clientAuth" => rfc5280::ID_KP_CLIENT_AUTH,
        "codeSigning" => rfc5280::ID_KP_CODE_SIGNING,
        "emailProtection" => rfc5280::ID_KP_EMAIL_PROTECTION,
        "timeStamping" => rfc5280::ID_KP_TIME_STAMPING,
        "OCSPSigning" => rfc5280::ID_KP_OCSP_SIGNING,
        "ipsecIKE" => ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.17"),
        other => return other.parse().ok(),
    })
}
