//! What a TLS client certificate may do on an EST label: which subjects it may have
//! (`cert_subjects` patterns) and which names it may enroll with `/simpleenroll`
//! (`cert_names`). Where it may come from (issuers, profiles) is decided against the ledger by
//! the EST adapter; this module holds the pure rules.

use x509_cert::{request::CertReq, Certificate};

use crate::config::est::CertNames;

/// Whether the RFC 4514 `subject` matches one of `patterns` (`*` matches any run of
/// characters, everything else itself).
pub fn subject_allowed(patterns: &[String], subject: &str) -> bool {
    patterns.iter().any(|p| glob(p.as_bytes(), subject.as_bytes()))
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Refuses (with the reason, for the client) a request `csr` that a client certificate `cert`
/// may not make under `rule`.
pub fn names_allowed(rule: CertNames, cert: &Certificate, csr: &CertReq) -> Result<(), String> {
    match rule {
        CertNames::Any => Ok(()),
        CertNames::Own => privca_est::names::same_names(cert, csr).map_err(|what| {
            format!("this label lets a client certificate enroll only its own names; the CSR {what} differs")
        }),
        CertNames::SerialNumber => {
            let serial = attribute(&cert.tbs_certificate.subject, const_oid::db::rfc4519::SERIAL_NUMBER)
                .ok_or("this label enrolls a certificate's serialNumber, and the client certificate has none")?;
            let refused =
                || format!("this label lets this certificate enroll only CN={serial}, without subjectAltName");
            let subject = &csr.info.subject;
            let only_cn = subject.0.len() == 1
                && subject.0.iter().all(|rdn| rdn.0.len() == 1)
                && attribute(subject, const_oid::db::rfc4519::CN).as_deref() == Some(serial.as_str());
            if !only_cn || privca_est::names::csr_has_sans(csr) {
                return Err(refused());
            }
            Ok(())
        }
    }
}

/// The first value of `oid` in `name`, as text.
fn attribute(name: &x509_cert::name::Name, oid: const_oid::ObjectIdentifier) -> Option<String> {
    name.0.iter().flat_map(|rdn| rdn.0.iter()).find(|a| a.oid == oid).and_then(|a| {
        a.value
            .decode_as::<der::asn1::PrintableStringRef<'_>>()
            .map(|s| s.as_str().to_owned())
            .or_else(|_| a.value.decode_as::<String>())
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use der::Decode;
    use x509_cert::name::Name;

    use super::*;

    #[test]
    fn subject_patterns_match_with_stars() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(subject_allowed(&p(&["*"]), "CN=anything"));
        assert!(subject_allowed(&p(&["CN=*.routers.example"]), "CN=r1.routers.example"));
        assert!(!subject_allowed(&p(&["CN=*.routers.example"]), "CN=r1.routers.example.evil"));
        assert!(subject_allowed(&p(&["CN=*,O=Acme"]), "CN=dev 1,O=Acme"));
        assert!(!subject_allowed(&p(&["CN=*,O=Acme"]), "CN=dev,O=Acme,OU=x"));
        assert!(!subject_allowed(&[], "CN=x"));
        assert!(subject_allowed(&p(&["CN=a", "CN=b*"]), "CN=bz"));
    }

    fn csr(subject: &str) -> CertReq {
        // A CertReq only needs to decode for the name checks: build its info by hand.
        let info = x509_cert::request::CertReqInfo {
            version: x509_cert::request::Version::V1,
            subject: Name::from_str(subject).unwrap(),
            public_key: spki::SubjectPublicKeyInfoOwned::from_der(&TEST_SPKI).unwrap(),
            attributes: Default::default(),
        };
        CertReq {
            info,
            algorithm: spki::AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
                parameters: None,
            },
            signature: der::asn1::BitString::from_bytes(&[0]).unwrap(),
        }
    }

    fn cert_with_subject(subject: &str) -> Certificate {
        let alg =
            || spki::AlgorithmIdentifierOwned { oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256, parameters: None };
        let tbs = x509_cert::TbsCertificate {
            version: x509_cert::Version::V3,
            serial_number: x509_cert::serial_number::SerialNumber::new(&[1]).unwrap(),
            signature: alg(),
            issuer: Name::from_str("CN=issuer").unwrap(),
            validity: x509_cert::time::Validity::from_now(std::time::Duration::from_secs(60)).unwrap(),
            subject: Name::from_str(subject).unwrap(),
            subject_public_key_info: spki::SubjectPublicKeyInfoOwned::from_der(&TEST_SPKI).unwrap(),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: None,
        };
        Certificate {
            tbs_certificate: tbs,
            signature_algorithm: alg(),
            signature: der::asn1::BitString::from_bytes(&[0]).unwrap(),
        }
    }

    // A P-256 SubjectPublicKeyInfo and a minimal TBSCertificate (no extensions).
    const TEST_SPKI: [u8; 91] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
        0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8,
        0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39,
        0x45, 0xd8, 0x98, 0xc2, 0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c,
        0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51,
        0xf5,
    ];

    #[test]
    fn a_certificate_enrolls_only_what_its_rule_allows() {
        let idevid = cert_with_subject("serialNumber=SN-42,CN=Acme router,O=Acme");
        assert!(names_allowed(CertNames::SerialNumber, &idevid, &csr("CN=SN-42")).is_ok());
        assert!(names_allowed(CertNames::SerialNumber, &idevid, &csr("CN=SN-43")).is_err());
        assert!(names_allowed(CertNames::SerialNumber, &idevid, &csr("CN=SN-42,O=Evil")).is_err());
        assert!(names_allowed(CertNames::SerialNumber, &cert_with_subject("CN=x"), &csr("CN=x")).is_err());
        let own = cert_with_subject("CN=dev1.example.test");
        assert!(names_allowed(CertNames::Own, &own, &csr("CN=dev1.example.test")).is_ok());
        assert!(names_allowed(CertNames::Own, &own, &csr("CN=dev2.example.test")).is_err());
        assert!(names_allowed(CertNames::Any, &own, &csr("CN=dev2.example.test")).is_ok());
    }
}
