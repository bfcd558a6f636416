//! Name comparison between a certificate and a PKCS#10 request (RFC 7030 §4.2.2: a
//! re-enrollment keeps the subject and the subjectAltName). Names are compared after decoding,
//! subjectAltNames as sets. A CN-only device never learns the subjectAltName its CA
//! copied from its CN (privca's `san.from_cn`), so a request whose subjectAltNames plus its CN
//! (as a dNSName or iPAddress) are the certificate's asks for the same names.

use der::{
    asn1::{Ia5String, OctetString},
    Decode,
};
use x509_cert::{
    ext::pkix::{name::GeneralName, SubjectAltName},
    request::CertReq,
    Certificate,
};

/// `Ok` when `csr` asks for the subject and the subjectAltNames of `cert`; else which of the
/// two differs (`"subject"` or `"subjectAltName"`).
pub fn same_names(cert: &Certificate, csr: &CertReq) -> Result<(), &'static str> {
    if cert.tbs_certificate.subject.to_string() != csr.info.subject.to_string() {
        return Err("subject");
    }
    let (have, asked) = (sans_of_cert(cert), sans_of_csr(csr));
    if have != asked && cn_as_san(csr).is_none_or(|cn| have != with(asked, cn)) {
        return Err("subjectAltName");
    }
    Ok(())
}

/// The request's CN as the subjectAltName a CA copies it to: an iPAddress when it is an IP
/// address, else a (lowercased) dNSName; `None` without a CN or when it is not IA5.
fn cn_as_san(csr: &CertReq) -> Option<String> {
    let atv = csr.info.subject.0.iter().flat_map(|rdn| rdn.0.iter()).find(|a| a.oid == const_oid::db::rfc4519::CN)?;
    let cn = atv
        .value
        .decode_as::<der::asn1::PrintableStringRef<'_>>()
        .map(|s| s.as_str().to_owned())
        .or_else(|_| atv.value.decode_as::<String>())
        .ok()?;
    let name = match cn.trim().parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => GeneralName::IpAddress(OctetString::new(ip.octets().to_vec()).ok()?),
        Ok(std::net::IpAddr::V6(ip)) => GeneralName::IpAddress(OctetString::new(ip.octets().to_vec()).ok()?),
        Err(_) => GeneralName::DnsName(Ia5String::new(&cn.trim().to_ascii_lowercase()).ok()?),
    };
    Some(format!("{name:?}"))
}

fn with(mut sans: Vec<String>, name: String) -> Vec<String> {
    if !sans.contains(&name) {
        sans.push(name);
        sans.sort();
    }
    sans
}

/// Whether `csr` asks for any subjectAltName.
pub fn csr_has_sans(csr: &CertReq) -> bool {
    !sans_of_csr(csr).is_empty()
}

fn sans_of_cert(cert: &Certificate) -> Vec<String> {
    let mut sans: Vec<String> = cert
        .tbs_certificate
        .get::<SubjectAltName>()
        .ok()
        .flatten()
        .map(|(_, san)| san.0.iter().map(|n| format!("{n:?}")).collect())
        .unwrap_or_default();
    sans.sort();
    sans
}

fn sans_of_csr(csr: &CertReq) -> Vec<String> {
    let mut sans = Vec::new();
    for attr in csr.info.attributes.iter() {
        if attr.oid != const_oid::db::rfc5912::ID_EXTENSION_REQ {
            continue;
        }
        for value in attr.values.iter() {
            let Ok(exts) = value.decode_as::<x509_cert::request::ExtensionReq>() else { continue };
            for ext in exts.0 {
                if ext.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME {
                    if let Ok(san) = SubjectAltName::from_der(ext.extn_value.as_bytes()) {
                        sans.extend(san.0.iter().map(|n| format!("{n:?}")));
                    }
                }
            }
        }
    }
    sans.sort();
    sans
}

#[cfg(test)]
mod tests {
    use openssl::{
        ec::{EcGroup, EcKey},
        hash::MessageDigest,
        nid::Nid,
        pkey::PKey,
        stack::Stack,
        x509::{extension::SubjectAlternativeName, X509NameBuilder, X509Req, X509},
    };

    use super::*;

    fn name(cn: &str) -> openssl::x509::X509Name {
        let mut n = X509NameBuilder::new().unwrap();
        n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
        n.build()
    }

    fn csr(cn: &str, sans: &[&str]) -> CertReq {
        let key =
            PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap())
                .unwrap();
        let mut b = X509Req::builder().unwrap();
        b.set_subject_name(&name(cn)).unwrap();
        b.set_pubkey(&key).unwrap();
        if !sans.is_empty() {
            let mut san = SubjectAlternativeName::new();
            for s in sans {
                match s.strip_prefix("IP:") {
                    Some(ip) => san.ip(ip),
                    None => san.dns(s),
                };
            }
            let mut exts = Stack::new().unwrap();
            exts.push(san.build(&b.x509v3_context(None)).unwrap()).unwrap();
            b.add_extensions(&exts).unwrap();
        }
        b.sign(&key, MessageDigest::sha256()).unwrap();
        CertReq::from_der(&b.build().to_der().unwrap()).unwrap()
    }

    fn cert(cn: &str, sans: &[&str]) -> Certificate {
        let key =
            PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap())
                .unwrap();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&openssl::bn::BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap()).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap()).unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap()).unwrap();
        b.set_subject_name(&name(cn)).unwrap();
        b.set_issuer_name(&name("CA")).unwrap();
        b.set_pubkey(&key).unwrap();
        if !sans.is_empty() {
            let mut san = SubjectAlternativeName::new();
            for s in sans {
                match s.strip_prefix("IP:") {
                    Some(ip) => san.ip(ip),
                    None => san.dns(s),
                };
            }
            let ext = san.build(&b.x509v3_context(None, None)).unwrap();
            b.append_extension(ext).unwrap();
        }
        b.sign(&key, MessageDigest::sha256()).unwrap();
        Certificate::from_der(&b.build().to_der().unwrap()).unwrap()
    }

    #[test]
    fn the_same_subject_and_sans() {
        let c = cert("r1.example.test", &["r1.example.test", "IP:192.0.2.1"]);
        assert_eq!(same_names(&c, &csr("r1.example.test", &["IP:192.0.2.1", "r1.example.test"])), Ok(()));
        assert_eq!(same_names(&c, &csr("r2.example.test", &["r1.example.test", "IP:192.0.2.1"])), Err("subject"));
        assert_eq!(same_names(&c, &csr("r1.example.test", &["r1.example.test"])), Err("subjectAltName"));
        assert_eq!(same_names(&c, &csr("r1.example.test", &[])), Err("subjectAltName"));
    }

    #[test]
    fn a_cn_only_request_matches_the_san_copied_from_its_cn() {
        assert_eq!(same_names(&cert("R1.example.test", &["r1.example.test"]), &csr("R1.example.test", &[])), Ok(()));
        assert_eq!(same_names(&cert("192.0.2.7", &["IP:192.0.2.7"]), &csr("192.0.2.7", &[])), Ok(()));
        let both = cert("r1.example.test", &["r1.example.test", "IP:192.0.2.1"]);
        assert_eq!(same_names(&both, &csr("r1.example.test", &["IP:192.0.2.1"])), Ok(()));
        assert_eq!(same_names(&cert("FTX1234W0AB", &[]), &csr("FTX1234W0AB", &[])), Ok(()));
        assert_eq!(
            same_names(&cert("r1.example.test", &["r2.example.test"]), &csr("r1.example.test", &[])),
            Err("subjectAltName"),
            "only the CN's own name stands in for a SAN"
        );
    }
}
