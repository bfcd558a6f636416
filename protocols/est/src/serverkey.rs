//! Server-generated keys encrypted to the client (RFC 7030 §4.4.1.2, §4.4.2). A `/serverkeygen`
//! CSR carrying `id-aa-asymmDecryptKeyID` names the key the answer is encrypted to; privca knows
//! two keys of a client: the CSR's own (its signature proves possession) and the TLS client
//! certificate's. The identifier is matched against each one's key identifier (SHA-1 of the
//! subjectPublicKey, RFC 5280 §4.2.1.2 method 1, or the certificate's SKI extension). The
//! private key then leaves as an AsymmetricKeyPackage (RFC 5958), signed like Full PKI
//! Responses (by the label's CA, in the HSM), enveloped (CMS EnvelopedData, RSA key transport,
//! AES-256-CBC) to that key: `application/pkcs7-mime; smime-type=server-generated-key`.
//!
//! Only RSA recipients are supported (key transport); an EC key would need key agreement. The
//! symmetric form (`id-aa-decryptKeyID`, RFC 4108) needs a pre-shared key that privca does not
//! manage. Both are refused with 400 before anything is issued.

use const_oid::{db::rfc5911::ID_SIGNED_DATA, ObjectIdentifier};
use der::{asn1::OctetString, Any, Decode, Encode};
use privca_cms::{ContentCipher, KeyTransRecipient};
use x509_cert::{ext::pkix::SubjectKeyIdentifier, request::CertReq, spki::SubjectPublicKeyInfoOwned, Certificate};

use crate::{backend::EstBackend, error::EstError, signed};

/// `id-aa-asymmDecryptKeyID` (RFC 7030 §4.4.1.2): AsymmetricDecryptKeyIdentifier ::= OCTET STRING.
pub const ID_AA_ASYMM_DECRYPT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.54");
/// `id-aa-decryptKeyID` (RFC 4108 §2.2.5).
pub const ID_AA_DECRYPT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.37");
/// `id-ct-KP-aKeyPackage` (RFC 5958 §1).
pub const ID_CT_KP_AKEY_PACKAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.2.1.2.78.5");

/// The key the answer is encrypted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The identifier from the CSR (becomes the recipient's subjectKeyIdentifier).
    pub key_id: Vec<u8>,
    /// DER SubjectPublicKeyInfo (RSA).
    pub spki_der: Vec<u8>,
}

/// The recipient the CSR asks for, `None` for a plain PKCS#8 answer. `client_cert` is the DER
/// TLS client certificate that authenticated the request, if any.
pub fn requested_recipient(csr: &CertReq, client_cert: Option<&[u8]>) -> Result<Option<Recipient>, EstError> {
    let attrs = &csr.info.attributes;
    if attrs.iter().any(|a| a.oid == ID_AA_DECRYPT_KEY_ID) {
        return Err(EstError::bad(
            "symmetric encryption of the generated key (DecryptKeyIdentifier) is not supported: privca manages no \
             pre-shared keys; use AsymmetricDecryptKeyIdentifier",
        ));
    }
    let Some(attr) = attrs.iter().find(|a| a.oid == ID_AA_ASYMM_DECRYPT_KEY_ID) else { return Ok(None) };
    let key_id = match attr.values.as_slice() {
        [one] => one.decode_as::<OctetString>().ok(),
        _ => None,
    }
    .filter(|k| !k.as_bytes().is_empty())
    .ok_or_else(|| EstError::bad("AsymmetricDecryptKeyIdentifier must be one non-empty OCTET STRING"))?
    .into_bytes();

    let mut known = vec![(csr.info.public_key.clone(), None)];
    if let Some(der) = client_cert {
        let cert = Certificate::from_der(der).map_err(|_| EstError::Internal("client certificate".into()))?;
        let ski = cert.tbs_certificate.get::<SubjectKeyIdentifier>().ok().flatten().map(|(_, s)| s.0.into_bytes());
        known.push((cert.tbs_certificate.subject_public_key_info.clone(), ski));
    }
    let (spki, _) = known
        .into_iter()
        .find(|(spki, ski)| key_identifier(spki) == key_id || ski.as_deref() == Some(key_id.as_slice()))
        .ok_or_else(|| {
            EstError::bad(
                "AsymmetricDecryptKeyIdentifier names neither the CSR's key nor the TLS client certificate's key",
            )
        })?;
    if spki.algorithm.oid != const_oid::db::rfc5912::RSA_ENCRYPTION {
        return Err(EstError::bad(
            "the key named by AsymmetricDecryptKeyIdentifier is not an RSA key; only RSA key transport is supported",
        ));
    }
    let spki_der = spki.to_der().map_err(|e| EstError::Internal(format!("SPKI: {e}")))?;
    Ok(Some(Recipient { key_id, spki_der }))
}

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, spki.subject_public_key.raw_bytes()).as_ref().to_vec()
}

/// The encrypted key part: EnvelopedData (as a ContentInfo) to `recipient`, holding the
/// SignedData (signed for `label`) over the AsymmetricKeyPackage with `key_pkcs8`.
pub async fn encrypted_key<B: EstBackend>(
    backend: &B,
    label: &str,
    key_pkcs8: &[u8],
    recipient: &Recipient,
) -> Result<Vec<u8>, EstError> {
    let internal = |e: der::Error| EstError::Internal(format!("encrypted key encoding: {e}"));
    // AsymmetricKeyPackage ::= SEQUENCE SIZE (1..MAX) OF OneAsymmetricKey; PKCS#8 v1 is one.
    let one_key = Any::from_der(key_pkcs8).map_err(internal)?;
    let package = vec![one_key].to_der().map_err(internal)?;
    let signed = signed::sign(backend, label, ID_CT_KP_AKEY_PACKAGE, package, &[]).await?;
    envelope(ID_SIGNED_DATA, &signed.to_der().map_err(internal)?, recipient)
}

/// EnvelopedData (ContentInfo) with one KeyTransRecipientInfo (rsaEncryption, identified by
/// subjectKeyIdentifier) and AES-256-CBC content encryption ([`privca_cms::envelope`]).
pub fn envelope(content_type: ObjectIdentifier, content: &[u8], recipient: &Recipient) -> Result<Vec<u8>, EstError> {
    let internal = |e: &dyn std::fmt::Display| EstError::Internal(format!("enveloping the key: {e}"));
    let spki = SubjectPublicKeyInfoOwned::from_der(&recipient.spki_der).map_err(|e| internal(&e))?;
    let to = KeyTransRecipient::key_id(&recipient.key_id, &spki).map_err(|e| internal(&e))?;
    privca_cms::envelope(content_type, content, &to, ContentCipher::Aes256).map_err(|e| internal(&e))
}

#[cfg(test)]
pub(crate) mod tests {
    use der::asn1::{BitString, SetOfVec};
    use x509_cert::{attr::Attribute, name::Name, request::CertReqInfo, spki::AlgorithmIdentifierOwned};

    use super::*;

    fn csr(spki_der: &[u8], attrs: Vec<Attribute>) -> CertReq {
        CertReq {
            info: CertReqInfo {
                version: x509_cert::request::Version::V1,
                subject: Name::default(),
                public_key: SubjectPublicKeyInfoOwned::from_der(spki_der).unwrap(),
                attributes: SetOfVec::try_from(attrs).unwrap(),
            },
            algorithm: AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
                parameters: None,
            },
            signature: BitString::from_bytes(&[0]).unwrap(),
        }
    }

    fn key_id_attr(oid: ObjectIdentifier, id: &[u8]) -> Attribute {
        signed::attribute(oid, Any::encode_from(&OctetString::new(id.to_vec()).unwrap()).unwrap()).unwrap()
    }

    /// An RSA-2048 certificate made with `openssl req -x509` (its private key is in the same
    /// directory, for decrypting the envelope in tests).
    pub(crate) const RSA_CERT: &[u8] = include_bytes!("../tests/vectors/rsa2048.crt.der");
    pub(crate) const RSA_KEY: &[u8] = include_bytes!("../tests/vectors/rsa2048.key.der");

    pub(crate) fn rsa_spki() -> Vec<u8> {
        Certificate::from_der(RSA_CERT).unwrap().tbs_certificate.subject_public_key_info.to_der().unwrap()
    }

    #[test]
    fn plain_unless_asked() {
        assert_eq!(requested_recipient(&csr(&rsa_spki(), vec![]), None).unwrap(), None);
    }

    #[test]
    fn the_csr_key_by_its_identifier() {
        let spki = rsa_spki();
        let id = key_identifier(&SubjectPublicKeyInfoOwned::from_der(&spki).unwrap());
        let r = requested_recipient(&csr(&spki, vec![key_id_attr(ID_AA_ASYMM_DECRYPT_KEY_ID, &id)]), None)
            .unwrap()
            .unwrap();
        assert_eq!((r.key_id, r.spki_der), (id, spki));
    }

    #[test]
    fn refusals() {
        let spki = rsa_spki();
        for attr in [
            key_id_attr(ID_AA_ASYMM_DECRYPT_KEY_ID, b"someone else"),
            key_id_attr(ID_AA_ASYMM_DECRYPT_KEY_ID, b""),
            key_id_attr(ID_AA_DECRYPT_KEY_ID, b"psk"),
        ] {
            let e = requested_recipient(&csr(&spki, vec![attr]), None).unwrap_err();
            assert!(matches!(e, EstError::BadRequest(_)), "{e:?}");
        }
        let ec_spki = rcgen::PublicKeyData::subject_public_key_info(&rcgen::KeyPair::generate().unwrap());
        let id = key_identifier(&SubjectPublicKeyInfoOwned::from_der(&ec_spki).unwrap());
        let e =
            requested_recipient(&csr(&ec_spki, vec![key_id_attr(ID_AA_ASYMM_DECRYPT_KEY_ID, &id)]), None).unwrap_err();
        assert!(e.to_string().contains("not an RSA key"), "{e}");
    }

    /// The envelope opens with the recipient's private key to the content, with the
    /// identifier the CSR named.
    #[test]
    fn the_envelope_opens_with_the_named_key() {
        use cms::{
            content_info::ContentInfo,
            enveloped_data::{EnvelopedData, RecipientIdentifier, RecipientInfo},
        };
        use rsa::{pkcs8::DecodePrivateKey, Pkcs1v15Encrypt, RsaPrivateKey};
        let recipient = Recipient { key_id: b"kid".to_vec(), spki_der: rsa_spki() };
        let der = envelope(ID_SIGNED_DATA, b"a signed key package", &recipient).unwrap();
        let env: EnvelopedData = ContentInfo::from_der(&der).unwrap().content.decode_as().unwrap();
        let RecipientInfo::Ktri(ktri) = env.recip_infos.0.iter().next().unwrap() else { panic!("not ktri") };
        assert!(matches!(&ktri.rid, RecipientIdentifier::SubjectKeyIdentifier(s) if s.0.as_bytes() == b"kid"));
        let key =
            RsaPrivateKey::from_pkcs8_der(RSA_KEY).unwrap().decrypt(Pkcs1v15Encrypt, ktri.enc_key.as_bytes()).unwrap();
        let eci = &env.encrypted_content;
        assert_eq!((eci.content_type, eci.content_enc_alg.oid), (ID_SIGNED_DATA, privca_cms::cipher::AES256_CBC));
        let iv = eci.content_enc_alg.parameters.as_ref().unwrap().decode_as::<OctetString>().unwrap();
        let plain = ContentCipher::Aes256
            .decrypt(&key, iv.as_bytes(), eci.encrypted_content.as_ref().unwrap().as_bytes())
            .unwrap();
        assert_eq!(plain, b"a signed key package");
    }
}
