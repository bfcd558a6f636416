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

use cms::{
    content_info::CmsVersion,
    enveloped_data::{
        EncryptedContentInfo, EnvelopedData, KeyTransRecipientInfo, RecipientIdentifier, RecipientInfo, RecipientInfos,
    },
};
use const_oid::{
    db::rfc5911::{ID_ENVELOPED_DATA, ID_SIGNED_DATA},
    ObjectIdentifier,
};
use der::{
    asn1::{OctetString, SetOfVec},
    Any, Decode, Encode,
};
use x509_cert::{
    ext::pkix::SubjectKeyIdentifier, request::CertReq, spki::AlgorithmIdentifierOwned, spki::SubjectPublicKeyInfoOwned,
    Certificate,
};

use crate::{backend::EstBackend, error::EstError, signed};

/// `id-aa-asymmDecryptKeyID` (RFC 7030 §4.4.1.2): AsymmetricDecryptKeyIdentifier ::= OCTET STRING.
pub const ID_AA_ASYMM_DECRYPT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.54");
/// `id-aa-decryptKeyID` (RFC 4108 §2.2.5).
pub const ID_AA_DECRYPT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.37");
/// `id-ct-KP-aKeyPackage` (RFC 5958 §1).
pub const ID_CT_KP_AKEY_PACKAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.2.1.2.78.5");
const AES256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");

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
/// subjectKeyIdentifier) and AES-256-CBC content encryption.
pub fn envelope(content_type: ObjectIdentifier, content: &[u8], recipient: &Recipient) -> Result<Vec<u8>, EstError> {
    let internal = |what: &str| EstError::Internal(format!("enveloping the key: {what}"));
    let der_err = |e: der::Error| EstError::Internal(format!("enveloping the key: {e}"));
    let rsa = openssl::pkey::PKey::public_key_from_der(&recipient.spki_der)
        .and_then(|k| k.rsa())
        .map_err(|_| internal("recipient key"))?;
    let cipher = openssl::symm::Cipher::aes_256_cbc();
    let mut key = vec![0u8; cipher.key_len()];
    let mut iv = vec![0u8; cipher.iv_len().unwrap_or(16)];
    openssl::rand::rand_bytes(&mut key).map_err(|_| internal("randomness"))?;
    openssl::rand::rand_bytes(&mut iv).map_err(|_| internal("randomness"))?;
    let ciphertext = openssl::symm::encrypt(cipher, &key, Some(&iv), content).map_err(|_| internal("encryption"))?;
    let mut encrypted_key = vec![0u8; rsa.size() as usize];
    let n = rsa
        .public_encrypt(&key, &mut encrypted_key, openssl::rsa::Padding::PKCS1)
        .map_err(|_| internal("key transport"))?;
    encrypted_key.truncate(n);

    let ktri = KeyTransRecipientInfo {
        version: CmsVersion::V2, // rid is a subjectKeyIdentifier (RFC 5652 §6.2.1)
        rid: RecipientIdentifier::SubjectKeyIdentifier(SubjectKeyIdentifier(
            OctetString::new(recipient.key_id.clone()).map_err(der_err)?,
        )),
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        enc_key: OctetString::new(encrypted_key).map_err(der_err)?,
    };
    let mut recipients = SetOfVec::new();
    recipients.insert(RecipientInfo::Ktri(ktri)).map_err(der_err)?;
    let env = EnvelopedData {
        version: CmsVersion::V2, // a recipient of version 2 (RFC 5652 §6.1)
        originator_info: None,
        recip_infos: RecipientInfos(recipients),
        encrypted_content: EncryptedContentInfo {
            content_type,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: AES256_CBC,
                parameters: Some(Any::encode_from(&OctetString::new(iv).map_err(der_err)?).map_err(der_err)?),
            },
            encrypted_content: Some(OctetString::new(ciphertext).map_err(der_err)?),
        },
        unprotected_attrs: None,
    };
    cms::content_info::ContentInfo {
        content_type: ID_ENVELOPED_DATA,
        content: Any::encode_from(&env).map_err(der_err)?,
    }
    .to_der()
    .map_err(der_err)
}

#[cfg(test)]
mod tests {
    use der::asn1::BitString;
    use x509_cert::{attr::Attribute, name::Name, request::CertReqInfo};

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

    fn rsa_spki() -> Vec<u8> {
        openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap().public_key_to_der().unwrap()
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
        let ec = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let ec_spki = openssl::pkey::PKey::from_ec_key(ec).unwrap().public_key_to_der().unwrap();
        let id = key_identifier(&SubjectPublicKeyInfoOwned::from_der(&ec_spki).unwrap());
        let e =
            requested_recipient(&csr(&ec_spki, vec![key_id_attr(ID_AA_ASYMM_DECRYPT_KEY_ID, &id)]), None).unwrap_err();
        assert!(e.to_string().contains("not an RSA key"), "{e}");
    }
}
