//! Name comparison between a certificate and a PKCS#10 request (RFC 7030 §4.2.2: a
//! re-enrollment keeps the subject and the subjectAltName). Names are compared after decoding
//! (quirk E9), subjectAltNames as sets.

use der::Decode;
use x509_cert::{ext::pkix::SubjectAltName, request::CertReq, Certificate};

/// `Ok` when `csr` asks for the subject and the subjectAltNames of `cert`; else which of the
/// two differs (`"subject"` or `"subjectAltName"`).
pub fn same_names(cert: &Certificate, csr: &CertReq) -> Result<(), &'static str> {
    if cert.tbs_certificate.subject.to_string() != csr.info.subject.to_string() {
        return Err("subject");
    }
    if sans_of_cert(cert) != sans_of_csr(csr) {
        return Err("subjectAltName");
    }
    Ok(())
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
