//! Public keys of the certificates in a pkiMessage (the signer's, the requester's). OpenSSL 3's
//! generic `d2i_PUBKEY` runs the provider decoder machinery, which cost a tenth of the CPU of an
//! enrollment; RSA keys — what SCEP clients use — are read from the SPKI's RSAPublicKey directly.

use der::Encode;
use openssl::pkey::{PKey, Public};
use x509_cert::Certificate;

/// rsaEncryption (RFC 8017).
const RSA_ENCRYPTION: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The DER RSAPublicKey of `cert`, if its key is rsaEncryption.
pub(crate) fn rsa_public_key(cert: &Certificate) -> Option<&[u8]> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    (spki.algorithm.oid == RSA_ENCRYPTION).then(|| spki.subject_public_key.as_bytes()).flatten()
}

/// The subject public key of `cert`; `None` if OpenSSL cannot use it.
pub(crate) fn public_key(cert: &Certificate) -> Option<PKey<Public>> {
    if let Some(der) = rsa_public_key(cert) {
        return PKey::from_rsa(openssl::rsa::Rsa::public_key_from_der_pkcs1(der).ok()?).ok();
    }
    let spki = &cert.tbs_certificate.subject_public_key_info;
    PKey::public_key_from_der(&spki.to_der().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;
    use x509_cert::spki::SubjectPublicKeyInfoOwned;

    fn cert_with(spki_der: &[u8]) -> Certificate {
        // Only the SPKI matters here: graft it into a parsed certificate.
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
        let mut name = openssl::x509::X509Name::builder().unwrap();
        name.append_entry_by_text("CN", "t").unwrap();
        let name = name.build();
        let mut b = openssl::x509::X509::builder().unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap()).unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap()).unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256()).unwrap();
        let mut cert = Certificate::from_der(&b.build().to_der().unwrap()).unwrap();
        cert.tbs_certificate.subject_public_key_info = SubjectPublicKeyInfoOwned::from_der(spki_der).unwrap();
        cert
    }

    #[test]
    fn rsa_and_ec_keys_read_as_openssl_reads_them() {
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let ec = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
        for key in [rsa, ec] {
            let spki = key.public_key_to_der().unwrap();
            let read = public_key(&cert_with(&spki)).unwrap();
            assert!(read.public_eq(&key));
            assert_eq!(read.public_key_to_der().unwrap(), spki);
        }
    }
}
