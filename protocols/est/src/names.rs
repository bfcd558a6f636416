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
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    use super::*;

    fn params(cn: &str, sans: &[&str]) -> CertificateParams {
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = sans
            .iter()
            .map(|s| match s.strip_prefix("IP:") {
                Some(ip) => SanType::IpAddress(ip.parse().unwrap()),
                None => SanType::DnsName((*s).try_into().unwrap()),
            })
            .collect();
        p
    }

    fn csr(cn: &str, sans: &[&str]) -> CertReq {
        let der = params(cn, sans).serialize_request(&KeyPair::generate().unwrap()).unwrap();
        CertReq::from_der(der.der()).unwrap()
    }

    fn cert(cn: &str, sans: &[&str]) -> Certificate {
        let cert = params(cn, sans).self_signed(&KeyPair::generate().unwrap()).unwrap();
        Certificate::from_der(cert.der()).unwrap()
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
