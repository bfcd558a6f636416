//! Prepare: profile + request → `TBSCertificate`. Pure policy and encoding; nothing here signs
//! or writes. The result is a single-use [`PreparedCertificate`] that the sign step consumes by
//! move (boulder's prepare/issue token).

use std::{
    collections::BTreeSet,
    time::{Duration, SystemTime},
};

use der::{
    asn1::{Any, Ia5String, OctetString, SetOfVec},
    Decode, Encode, Tag,
};
use x509_cert::{
    attr::AttributeTypeAndValue,
    certificate::{TbsCertificate, Version},
    ext::pkix::{
        certpolicy::PolicyInformation, name::GeneralName, BasicConstraints, CertificatePolicies, ExtendedKeyUsage,
        KeyUsage, KeyUsages, SubjectAltName,
    },
    name::{Name, RdnSequence, RelativeDistinguishedName},
    serial_number::SerialNumber,
    time::Validity,
};

use super::{
    request::{IssuanceRequest, San},
    x509, Issuer,
};
use crate::{
    config::Urls,
    error::CaError,
    policy::{identifiers, keys, Profile, SanType, SubjectAttribute},
    signer::KeyAlgorithm,
};

/// Backdating of notBefore, to tolerate relying parties with slightly slow clocks.
const BACKDATE: Duration = Duration::from_secs(60);

/// A to-be-signed certificate with everything the ledger needs to know about it.
#[derive(Debug)]
pub struct PreparedCertificate {
    /// The TBSCertificate.
    pub tbs: TbsCertificate,
    /// Its DER encoding (what the HSM signs).
    pub tbs_der: Vec<u8>,
    /// Serial, lowercase hex.
    pub serial: String,
    /// Subject (RFC 4514).
    pub subject: String,
    /// SANs as `type:value`.
    pub sans: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
}

/// Builds the TBSCertificate for `request` under `profile`, issued by `issuer`.
pub fn prepare(
    request: &IssuanceRequest,
    profile: &Profile,
    issuer: &Issuer,
    urls: &Urls,
) -> Result<PreparedCertificate, CaError> {
    let key = keys::check(&request.spki_der, &profile.allowed_keys, &profile.name)?;
    let sans = check_sans(&request.sans, profile)?;
    let subject = build_subject(request, profile, &sans)?;
    let spki = spki::SubjectPublicKeyInfoOwned::from_der(&request.spki_der)
        .map_err(|e| CaError::bad_request("malformed public key").with_source(e))?;
    let now = SystemTime::now();
    let not_before = now.checked_sub(BACKDATE).unwrap_or(now);
    let not_after = (now + profile.validity).min(issuer.not_after);
    if not_after <= now {
        return Err(CaError::policy(format!("issuer {} has expired", issuer.id)));
    }
    let serial_bytes = random_serial()?;
    let mut extensions = vec![
        x509::extension(&BasicConstraints { ca: false, path_len_constraint: None }, true)?,
        x509::extension(&key_usage(profile, key), true)?,
    ];
    if !profile.extended_key_usage.is_empty() {
        extensions.push(x509::extension(&ExtendedKeyUsage(profile.extended_key_usage.clone()), false)?);
    }
    if !sans.is_empty() {
        let names = sans.iter().map(general_name).collect::<Result<Vec<_>, _>>()?;
        extensions.push(x509::extension(&SubjectAltName(names), subject.0.is_empty())?);
    }
    extensions.push(x509::ski_extension(&x509::key_identifier(&request.spki_der)?)?);
    extensions.push(x509::aki_extension(&issuer.ski)?);
    if profile.urls.crl {
        extensions.push(x509::cdp_extension(&super::chain::crl_url(urls, &issuer.id))?);
    }
    let ocsp = profile.urls.ocsp.then(|| super::chain::ocsp_url(urls));
    let ca_issuers = profile.urls.ca_issuers.then(|| super::chain::ca_issuers_url(urls, &issuer.id));
    if let Some(aia) = x509::aia_extension(ocsp.as_deref(), ca_issuers.as_deref())? {
        extensions.push(aia);
    }
    if profile.ocsp_nocheck {
        // id-pkix-ocsp-nocheck, value NULL (RFC 6960 §4.2.2.2.1).
        extensions.push(x509_cert::ext::Extension {
            extn_id: const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5"),
            critical: false,
            extn_value: OctetString::new(vec![0x05, 0x00]).map_err(|e| CaError::internal("nocheck").with_source(e))?,
        });
    }
    if !profile.policies.is_empty() {
        let policies = profile
            .policies
            .iter()
            .map(|oid| PolicyInformation { policy_identifier: *oid, policy_qualifiers: None })
            .collect();
        extensions.push(x509::extension(&CertificatePolicies(policies), false)?);
    }
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&serial_bytes).map_err(|e| CaError::internal("serial").with_source(e))?,
        signature: issuer.signature.algorithm_identifier(),
        issuer: issuer.cert.tbs_certificate.subject.clone(),
        validity: Validity { not_before: x509::x509_time(not_before)?, not_after: x509::x509_time(not_after)? },
        subject: subject.clone(),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let tbs_der = tbs.to_der().map_err(|e| CaError::internal("TBSCertificate encoding").with_source(e))?;
    Ok(PreparedCertificate {
        not_before: x509::unix(&tbs.validity.not_before),
        not_after: x509::unix(&tbs.validity.not_after),
        tbs,
        tbs_der,
        serial: hex::encode(serial_bytes),
        subject: subject.to_string(),
        sans: sans.iter().map(San::to_string).collect(),
    })
}

/// 128 random bits, positive, with a non-zero first octet (RFC 5280 §4.1.2.2, CABF ≥ 64 bits).
pub fn random_serial() -> Result<[u8; 16], CaError> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| CaError::internal("no system randomness"))?;
    bytes[0] &= 0x7f;
    if bytes[0] == 0 {
        bytes[0] = 0x01;
    }
    Ok(bytes)
}

fn key_usage(profile: &Profile, key: KeyAlgorithm) -> KeyUsage {
    let mut flags = flagset::FlagSet::<KeyUsages>::default();
    for usage in &profile.key_usage {
        let fits = match usage {
            KeyUsages::KeyEncipherment | KeyUsages::DataEncipherment => key.is_rsa(),
            KeyUsages::KeyAgreement => key.curve_oid().is_some(),
            _ => true,
        };
        if fits {
            flags |= *usage;
        }
    }
    if flags.is_empty() {
        flags |= KeyUsages::DigitalSignature;
    }
    KeyUsage(flags)
}

fn check_sans(requested: &[San], profile: &Profile) -> Result<Vec<San>, CaError> {
    let p = &profile.name;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for san in requested {
        if !seen.insert(san.to_string()) {
            continue;
        }
        let kind = match san {
            San::Dns(_) => SanType::Dns,
            San::Email(_) => SanType::Email,
            San::Ip(_) => SanType::Ip,
            San::Uri(_) => SanType::Uri,
        };
        if !profile.san.types.contains(&kind) {
            return Err(CaError::policy(format!(
                "identifier `{san}`: SAN type {} is not allowed by profile {p} (san.types)",
                kind.as_str()
            )));
        }
        match san {
            San::Dns(name) => {
                identifiers::check_dns_syntax(name, profile.san.wildcards)?;
                identifiers::check_dns_policy(name, &profile.san.dns_allow, &profile.san.dns_deny, p)?;
            }
            San::Email(addr) => identifiers::check_email(addr)?,
            San::Uri(u) => {
                if !u.contains(':') || !u.is_ascii() {
                    return Err(CaError::bad_request(format!("identifier `{u}`: not an absolute URI")));
                }
            }
            San::Ip(_) => {}
        }
        out.push(san.clone());
    }
    if out.len() > profile.san.max_names {
        return Err(CaError::policy(format!(
            "{} SANs requested; profile {p} allows at most {} (san.max_names)",
            out.len(),
            profile.san.max_names
        )));
    }
    if profile.san.required && out.is_empty() {
        return Err(CaError::policy(format!("profile {p} requires at least one SAN (san.required)")));
    }
    Ok(out)
}

fn build_subject(request: &IssuanceRequest, profile: &Profile, sans: &[San]) -> Result<Name, CaError> {
    let t = &profile.subject;
    let mut values: Vec<(SubjectAttribute, String)> = Vec::new();
    for attr in &t.copy {
        if let Some((_, v)) = request.subject.iter().find(|(oid, _)| *oid == attr.oid()) {
            values.push((*attr, v.clone()));
        }
    }
    for (attr, v) in &t.force {
        values.retain(|(a, _)| a != attr);
        values.push((*attr, v.clone()));
    }
    if t.cn_from_san && !values.iter().any(|(a, _)| *a == SubjectAttribute::CommonName) {
        let first = sans.iter().find_map(|s| match s {
            San::Dns(n) if n.len() <= 64 => Some(n.clone()),
            San::Email(n) if n.len() <= 64 => Some(n.clone()),
            _ => None,
        });
        if let Some(cn) = first {
            values.push((SubjectAttribute::CommonName, cn));
        }
    }
    for attr in &t.require {
        if !values.iter().any(|(a, _)| a == attr) {
            return Err(CaError::policy(format!(
                "profile {} requires subject attribute {} (subject.require)",
                profile.name,
                attr.short_name()
            )));
        }
    }
    let mut rdns = Vec::new();
    for attr in SubjectAttribute::ENCODING_ORDER {
        let Some((_, value)) = values.iter().find(|(a, _)| *a == attr) else { continue };
        rdns.push(rdn(attr, value)?);
    }
    Ok(RdnSequence(rdns))
}

fn rdn(attr: SubjectAttribute, value: &str) -> Result<RelativeDistinguishedName, CaError> {
    let bad = |why: &str| CaError::bad_request(format!("subject {}=`{value}`: {why}", attr.short_name()));
    if value.is_empty() || value.chars().count() > attr.max_len() {
        return Err(bad(&format!("must be 1 to {} characters", attr.max_len())));
    }
    let tag = match attr {
        SubjectAttribute::Country => {
            if !value.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(bad("country must be two upper-case letters"));
            }
            Tag::PrintableString
        }
        SubjectAttribute::SerialNumber => Tag::PrintableString,
        _ => Tag::Utf8String,
    };
    if tag == Tag::PrintableString && !value.bytes().all(printable) {
        return Err(bad("not a PrintableString"));
    }
    let atv = AttributeTypeAndValue {
        oid: attr.oid(),
        value: Any::new(tag, value.as_bytes()).map_err(|e| CaError::internal("subject encoding").with_source(e))?,
    };
    let set = SetOfVec::try_from(vec![atv]).map_err(|e| CaError::internal("subject encoding").with_source(e))?;
    Ok(RelativeDistinguishedName(set))
}

fn printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b)
}

fn general_name(san: &San) -> Result<GeneralName, CaError> {
    let ia5 = |s: &str| Ia5String::new(s).map_err(|_| CaError::bad_request(format!("identifier `{s}` is not ASCII")));
    Ok(match san {
        San::Dns(n) => GeneralName::DnsName(ia5(n)?),
        San::Email(n) => GeneralName::Rfc822Name(ia5(n)?),
        San::Uri(n) => GeneralName::UniformResourceIdentifier(ia5(n)?),
        San::Ip(ip) => {
            let bytes = match ip {
                std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            GeneralName::IpAddress(OctetString::new(bytes).map_err(|e| CaError::internal("IP SAN").with_source(e))?)
        }
    })
}
