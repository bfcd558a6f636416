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
    policy::{identifiers, keys, CnToSan, Profile, SanType, SubjectAttribute},
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
    let (sans, subject) = names(request, profile)?;
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

/// The certificate's SANs and subject under `profile`; refused when it would name nothing.
fn names(request: &IssuanceRequest, profile: &Profile) -> Result<(Vec<San>, Name), CaError> {
    let sans = check_sans(request, profile)?;
    let subject = build_subject(request, profile, &sans)?;
    if subject.0.is_empty() && sans.is_empty() {
        return Err(CaError::policy(format!(
            "profile {} would issue a certificate that names nothing: add a subject CN or a subjectAltName to the request",
            profile.name
        )));
    }
    Ok((sans, subject))
}

/// The requested SANs, and the subject CN when `san.from_cn` copies it (first, unless it is
/// requested too), each checked against the profile's SAN rules.
fn check_sans(request: &IssuanceRequest, profile: &Profile) -> Result<Vec<San>, CaError> {
    let p = &profile.name;
    let from_cn = san_from_cn(request, profile);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let candidates = from_cn.iter().map(|s| (s, true)).chain(request.sans.iter().map(|s| (s, false)));
    for (san, copied) in candidates {
        if !seen.insert(san.to_string()) {
            continue;
        }
        check_san(san, profile).map_err(|e| {
            if copied {
                CaError::new(
                    e.kind(),
                    format!(
                        "{} (the subject CN, which profile {p} copies to a subjectAltName: san.from_cn)",
                        e.detail()
                    ),
                )
            } else {
                e
            }
        })?;
        out.push(san.clone());
    }
    if out.len() > profile.san.max_names {
        let copied = if from_cn.is_some() { ", counting the subject CN copied by san.from_cn" } else { "" };
        return Err(CaError::policy(format!(
            "{} SANs requested{copied}; profile {p} allows at most {} (san.max_names)",
            out.len(),
            profile.san.max_names
        )));
    }
    if profile.san.required && out.is_empty() {
        return Err(san_required(profile));
    }
    Ok(out)
}

/// The refusal of a request without a SAN on a profile that requires one: the rule, and how
/// to satisfy it.
fn san_required(profile: &Profile) -> CaError {
    let types: Vec<&str> = profile.san.types.iter().map(|t| t.as_str()).collect();
    let or_cn = match profile.san.from_cn {
        CnToSan::Never => "",
        CnToSan::DnsIfHostname => ", or make the subject CN a host name or an IP address (san.from_cn)",
    };
    CaError::policy(format!(
        "profile {} requires at least one subjectAltName ({}) (san.required): add one to the request{or_cn}",
        profile.name,
        types.join(" or ")
    ))
}

/// The SAN that `san.from_cn` makes of the request's subject CN, if any: a host name becomes a
/// dNSName (lowercased), an IP address an iPAddress, each only where `san.types` allows it.
fn san_from_cn(request: &IssuanceRequest, profile: &Profile) -> Option<San> {
    if profile.san.from_cn == CnToSan::Never {
        return None;
    }
    let cn = request.subject.iter().find(|(oid, _)| *oid == SubjectAttribute::CommonName.oid())?.1.trim();
    if let Ok(ip) = cn.parse::<std::net::IpAddr>() {
        return profile.san.types.contains(&SanType::Ip).then_some(San::Ip(ip));
    }
    (identifiers::is_hostname(cn) && profile.san.types.contains(&SanType::Dns))
        .then(|| San::Dns(cn.to_ascii_lowercase()))
}

fn check_san(san: &San, profile: &Profile) -> Result<(), CaError> {
    let p = &profile.name;
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
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::{net::IpAddr, time::Duration};

    use super::*;
    use crate::{ca::Requester, config::raw::RawProfile, error::ErrorKind};

    fn profile(file: &str, edit: impl Fn(String) -> String) -> Profile {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/profiles").join(file);
        let raw: RawProfile = toml::from_str(&edit(std::fs::read_to_string(path).unwrap())).unwrap();
        Profile::from_raw(raw, Duration::from_secs(86_400)).unwrap()
    }

    fn request(subject: &[(SubjectAttribute, &str)], sans: Vec<San>) -> IssuanceRequest {
        let mut r = IssuanceRequest::own_key("device", Vec::new());
        r.requester = Requester::cli();
        r.subject = subject.iter().map(|(a, v)| (a.oid(), (*v).to_owned())).collect();
        r.sans = sans;
        r
    }

    fn cn_only(cn: &str) -> IssuanceRequest {
        request(&[(SubjectAttribute::CommonName, cn)], Vec::new())
    }

    fn device() -> Profile {
        profile("device.toml", |t| t)
    }

    #[test]
    fn device_profiles_copy_a_host_name_cn() {
        for file in ["device.toml", "device-gated.toml", "vpn-gateway.toml"] {
            let p = profile(file, |t| t);
            let (sans, subject) = names(&cn_only("Router1.Example.Test"), &p).unwrap();
            assert_eq!(sans, vec![San::Dns("router1.example.test".into())], "{file}");
            assert_eq!(subject.to_string(), "CN=Router1.Example.Test", "{file}");
        }
    }

    #[test]
    fn an_ip_address_cn_becomes_an_ip_san() {
        let (sans, _) = names(&cn_only("192.0.2.7"), &device()).unwrap();
        assert_eq!(sans, vec![San::Ip("192.0.2.7".parse::<IpAddr>().unwrap())]);
        let (sans, _) = names(&cn_only("2001:db8::7"), &device()).unwrap();
        assert_eq!(sans, vec![San::Ip("2001:db8::7".parse::<IpAddr>().unwrap())]);
    }

    #[test]
    fn a_serial_number_or_mac_cn_stays_a_cn_only_identity() {
        for cn in ["FTX1234W0AB", "00:1a:2b:3c:4d:5e", "001a.2b3c.4d5e", "router1"] {
            let (sans, subject) = names(&cn_only(cn), &device()).unwrap();
            assert!(sans.is_empty(), "{cn}: {sans:?}");
            assert_eq!(subject.to_string(), format!("CN={cn}"));
        }
    }

    #[test]
    fn the_copied_name_obeys_the_dns_rules() {
        let p =
            profile("device.toml", |t| t.replace("max_names = 10", "max_names = 10\ndns_deny = [\"*.internal.test\"]"));
        let e = names(&cn_only("db.internal.test"), &p).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PolicyViolation);
        assert!(e.detail().contains("san.dns_deny `*.internal.test`"), "{e}");
        assert!(e.detail().contains("san.from_cn"), "{e}");
        let p =
            profile("device.toml", |t| t.replace("max_names = 10", "max_names = 10\ndns_allow = [\"*.example.test\"]"));
        assert!(names(&cn_only("r1.example.test"), &p).is_ok());
        let e = names(&cn_only("r1.elsewhere.test"), &p).unwrap_err();
        assert!(e.detail().contains("san.dns_allow") && e.detail().contains("san.from_cn"), "{e}");
        let e = names(&cn_only("*.example.test"), &device()).unwrap_err();
        assert!(e.detail().contains("wildcards are not allowed"), "{e}");
    }

    #[test]
    fn the_copied_name_counts_against_max_names_once() {
        let p = profile("device.toml", |t| t.replace("max_names = 10", "max_names = 1"));
        let same =
            request(&[(SubjectAttribute::CommonName, "r1.example.test")], vec![San::Dns("r1.example.test".into())]);
        assert_eq!(names(&same, &p).unwrap().0.len(), 1, "a CN also requested as a SAN is not added twice");
        let other =
            request(&[(SubjectAttribute::CommonName, "r1.example.test")], vec![San::Dns("r2.example.test".into())]);
        let (sans, _) = names(&other, &device()).unwrap();
        assert_eq!(sans, vec![San::Dns("r1.example.test".into()), San::Dns("r2.example.test".into())]);
        let e = names(&other, &p).unwrap_err();
        assert!(e.detail().contains("san.max_names") && e.detail().contains("san.from_cn"), "{e}");
    }

    #[test]
    fn cn_from_san_still_fills_a_missing_cn_without_copying_back() {
        let r = request(&[(SubjectAttribute::Organization, "Acme")], vec![San::Dns("r1.example.test".into())]);
        let (sans, subject) = names(&r, &device()).unwrap();
        assert_eq!(sans, vec![San::Dns("r1.example.test".into())]);
        assert_eq!(subject.to_string(), "CN=r1.example.test,O=Acme");
    }

    #[test]
    fn tls_server_still_requires_a_san_and_says_how() {
        let e = names(&cn_only("www.example.test"), &profile("tls-server.toml", |t| t)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PolicyViolation);
        assert_eq!(
            e.detail(),
            "profile tls-server requires at least one subjectAltName (dns or ip) (san.required): add one to the request"
        );
        let p = profile("device.toml", |t| t.replace("required = false", "required = true"));
        let e = names(&cn_only("FTX1234W0AB"), &p).unwrap_err();
        assert!(e.detail().ends_with("or make the subject CN a host name or an IP address (san.from_cn)"), "{e}");
        assert_eq!(names(&cn_only("r1.example.test"), &p).unwrap().0.len(), 1, "the copied CN satisfies san.required");
    }

    #[test]
    fn from_cn_never_copies_nothing() {
        let p = profile("device.toml", |t| t.replace("from_cn = \"dns-if-hostname\"", "from_cn = \"never\""));
        assert!(names(&cn_only("r1.example.test"), &p).unwrap().0.is_empty());
        let (sans, _) = names(&cn_only("client1.example.test"), &profile("tls-client.toml", |t| t)).unwrap();
        assert!(sans.is_empty(), "tls-client does not set san.from_cn");
    }

    #[test]
    fn a_request_that_names_nothing_is_refused() {
        let e = names(&request(&[], Vec::new()), &device()).unwrap_err();
        assert!(e.detail().contains("names nothing"), "{e}");
    }
}
