//! EnvelopedData (RFC 5652 §6) with one KeyTransRecipientInfo: a fresh content-encryption key
//! encrypts the content (CBC, [`ContentCipher`]) and is itself encrypted to the recipient's RSA
//! public key (rsaEncryption, PKCS #1 v1.5, RFC 3370 §4.2). Public-key operations only.
//!
//! The recipient's issuerAndSerialNumber keeps the serial number as its certificate has it,
//! of any length: the `cms` crate's types refuse serials longer than RFC 5280's 20 octets, which
//! SCEP clients' self-signed certificates carry (certmonger's: 32 octets), so the
//! KeyTransRecipientInfo and the EnvelopedData are encoded here.

use cms::{
    content_info::{CmsVersion, ContentInfo},
    enveloped_data::EncryptedContentInfo,
};
use const_oid::{
    db::{rfc5911::ID_ENVELOPED_DATA, rfc5912::RSA_ENCRYPTION},
    ObjectIdentifier,
};
use der::{asn1::OctetString, Any, Encode, Tag, TagNumber};
use rsa::{
    pkcs1::DecodeRsaPublicKey,
    rand_core::{OsRng, RngCore},
    Pkcs1v15Encrypt, RsaPublicKey,
};
use x509_cert::{
    certificate::{CertificateInner, Profile},
    spki::AlgorithmIdentifierOwned,
};
use zeroize::Zeroizing;

use crate::{cipher::ContentCipher, error::CmsError};

/// The one recipient of an envelope: how it is identified, and its RSA public key.
#[derive(Debug, Clone)]
pub struct KeyTransRecipient {
    /// The RecipientIdentifier, encoded.
    rid: Any,
    /// RFC 5652 §6.2.1: v0 for issuerAndSerialNumber, v2 for subjectKeyIdentifier.
    version: CmsVersion,
    key: RsaPublicKey,
}

impl KeyTransRecipient {
    /// The holder of `cert`, identified by issuerAndSerialNumber (KeyTransRecipientInfo v0),
    /// its serial number as long as the certificate has it (any [`Profile`]).
    pub fn certificate<P: Profile>(cert: &CertificateInner<P>) -> Result<Self, CmsError> {
        let tbs = &cert.tbs_certificate;
        let mut ias = tbs.issuer.to_der()?;
        ias.extend(tbs.serial_number.to_der()?);
        Ok(Self {
            rid: Any::new(Tag::Sequence, ias)?,
            version: CmsVersion::V0,
            key: rsa_key(&tbs.subject_public_key_info)?,
        })
    }

    /// The holder of `spki`, identified by `key_id` as subjectKeyIdentifier
    /// (KeyTransRecipientInfo v2).
    pub fn key_id(key_id: &[u8], spki: &x509_cert::spki::SubjectPublicKeyInfoOwned) -> Result<Self, CmsError> {
        Ok(Self {
            // subjectKeyIdentifier [0] IMPLICIT OCTET STRING
            rid: Any::new(Tag::ContextSpecific { constructed: false, number: TagNumber::N0 }, key_id)?,
            version: CmsVersion::V2,
            key: rsa_key(spki)?,
        })
    }
}

/// `KeyTransRecipientInfo` (RFC 5652 §6.2.1) with the RecipientIdentifier as encoded.
#[derive(der::Sequence)]
struct KeyTransRecipientInfo {
    version: CmsVersion,
    rid: Any,
    key_enc_alg: AlgorithmIdentifierOwned,
    enc_key: OctetString,
}

/// `EnvelopedData` (RFC 5652 §6.1) without originatorInfo and unprotectedAttrs; `recip_infos`
/// is the SET OF RecipientInfo around the one KeyTransRecipientInfo.
#[derive(der::Sequence)]
struct EnvelopedData {
    version: CmsVersion,
    recip_infos: Any,
    encrypted_content: EncryptedContentInfo,
}

/// The RSAPublicKey of an rsaEncryption SubjectPublicKeyInfo.
fn rsa_key(spki: &x509_cert::spki::SubjectPublicKeyInfoOwned) -> Result<RsaPublicKey, CmsError> {
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(CmsError::RecipientKey);
    }
    let der = spki.subject_public_key.as_bytes().ok_or(CmsError::RecipientKey)?;
    RsaPublicKey::from_pkcs1_der(der).map_err(|_| CmsError::RecipientKey)
}

/// `ContentInfo { EnvelopedData }` (DER) of `content`, whose type is `content_type`, encrypted
/// with `cipher` under a fresh key transported to `recipient`. EnvelopedData is v0 when the
/// recipient is v0, else v2 (RFC 5652 §6.1); both AlgorithmIdentifiers carry their parameters
/// (NULL for rsaEncryption, the IV as an OCTET STRING for the CBC cipher).
pub fn envelope(
    content_type: ObjectIdentifier,
    content: &[u8],
    recipient: &KeyTransRecipient,
    cipher: ContentCipher,
) -> Result<Vec<u8>, CmsError> {
    let mut key = Zeroizing::new(vec![0u8; cipher.key_len()]);
    let mut iv = vec![0u8; cipher.iv_len()];
    OsRng.try_fill_bytes(&mut key).map_err(|_| CmsError::Randomness)?;
    OsRng.try_fill_bytes(&mut iv).map_err(|_| CmsError::Randomness)?;
    let ciphertext = cipher.encrypt(&key, &iv, content).ok_or(CmsError::Encryption("content"))?;
    let encrypted_key =
        recipient.key.encrypt(&mut OsRng, Pkcs1v15Encrypt, &key).map_err(|_| CmsError::Encryption("key transport"))?;

    let version = recipient.version;
    let ktri = KeyTransRecipientInfo {
        version,
        rid: recipient.rid.clone(),
        key_enc_alg: AlgorithmIdentifierOwned { oid: RSA_ENCRYPTION, parameters: Some(Any::null()) },
        enc_key: OctetString::new(encrypted_key)?,
    };
    let env = EnvelopedData {
        version,
        recip_infos: Any::new(Tag::Set, ktri.to_der()?)?,
        encrypted_content: EncryptedContentInfo {
            content_type,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: cipher.oid(),
                parameters: Some(Any::encode_from(&OctetString::new(iv)?)?),
            },
            encrypted_content: Some(OctetString::new(ciphertext)?),
        },
    };
    Ok(ContentInfo { content_type: ID_ENVELOPED_DATA, content: Any::encode_from(&env)? }.to_der()?)
}

#[cfg(test)]
mod tests {
    use cms::enveloped_data::{EnvelopedData, RecipientIdentifier, RecipientInfo};
    use der::Decode;
    use rsa::{pkcs8::DecodePrivateKey, RsaPrivateKey};
    use x509_cert::Certificate;

    use super::*;

    const CERT: &[u8] = include_bytes!("../tests/vectors/recipient.der");
    const KEY: &[u8] = include_bytes!("../tests/vectors/recipient-key.der");

    /// Opens `der` with the recipient's private key (test only; the server never does this).
    fn open(der: &[u8]) -> (EnvelopedData, Vec<u8>) {
        let info = ContentInfo::from_der(der).unwrap();
        assert_eq!(info.content_type, ID_ENVELOPED_DATA);
        let env: EnvelopedData = info.content.decode_as().unwrap();
        let RecipientInfo::Ktri(ktri) = env.recip_infos.0.iter().next().unwrap() else { panic!("not ktri") };
        assert_eq!(ktri.key_enc_alg.parameters, Some(Any::null()));
        let key =
            RsaPrivateKey::from_pkcs8_der(KEY).unwrap().decrypt(Pkcs1v15Encrypt, ktri.enc_key.as_bytes()).unwrap();
        let eci = &env.encrypted_content;
        let cipher = ContentCipher::from_oid(eci.content_enc_alg.oid).unwrap();
        let iv = eci.content_enc_alg.parameters.as_ref().unwrap().decode_as::<OctetString>().unwrap();
        let plain = cipher.decrypt(&key, iv.as_bytes(), eci.encrypted_content.as_ref().unwrap().as_bytes()).unwrap();
        (env, plain)
    }

    #[test]
    fn to_a_certificate_v0_with_every_cipher() {
        let cert = Certificate::from_der(CERT).unwrap();
        let recipient = KeyTransRecipient::certificate(&cert).unwrap();
        for cipher in [ContentCipher::Aes128, ContentCipher::Aes256, ContentCipher::Des3] {
            let der = envelope(const_oid::db::rfc5911::ID_DATA, b"certs-only", &recipient, cipher).unwrap();
            let (env, plain) = open(&der);
            assert_eq!((env.version, plain.as_slice()), (CmsVersion::V0, &b"certs-only"[..]));
            assert_eq!(env.encrypted_content.content_enc_alg.oid, cipher.oid());
        }
    }

    #[test]
    fn to_a_key_identifier_v2_keeps_the_content_type() {
        let cert = Certificate::from_der(CERT).unwrap();
        let spki = &cert.tbs_certificate.subject_public_key_info;
        let recipient = KeyTransRecipient::key_id(b"kid", spki).unwrap();
        let der =
            envelope(const_oid::db::rfc5911::ID_SIGNED_DATA, b"signed", &recipient, ContentCipher::Aes256).unwrap();
        let (env, plain) = open(&der);
        assert_eq!((env.version, plain.as_slice()), (CmsVersion::V2, &b"signed"[..]));
        assert_eq!(env.encrypted_content.content_type, const_oid::db::rfc5911::ID_SIGNED_DATA);
        let RecipientInfo::Ktri(ktri) = env.recip_infos.0.iter().next().unwrap() else { panic!("not ktri") };
        assert_eq!(ktri.version, CmsVersion::V2);
        assert!(matches!(&ktri.rid, RecipientIdentifier::SubjectKeyIdentifier(s) if s.0.as_bytes() == b"kid"));
    }

    #[test]
    fn openssl_decrypts_it() {
        let dir = std::env::temp_dir().join(format!("privca-cms-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = Certificate::from_der(CERT).unwrap();
        let der = envelope(
            const_oid::db::rfc5911::ID_DATA,
            b"hello",
            &KeyTransRecipient::certificate(&cert).unwrap(),
            ContentCipher::Des3,
        )
        .unwrap();
        assert_eq!(openssl_decrypt(&dir, &der, CERT), b"hello");
    }

    /// A recipient certificate whose serial is longer than RFC 5280's 20 octets (certmonger's
    /// self-signed SCEP requester certificates have 32): its issuerAndSerialNumber keeps the
    /// serial as it is, and OpenSSL finds itself among the recipients.
    #[test]
    fn a_serial_of_32_octets_is_kept() {
        use x509_cert::serial_number::SerialNumber;
        #[derive(Debug, Clone, PartialEq, Eq)]
        struct Raw;
        impl Profile for Raw {
            fn check_serial_number(_: &SerialNumber<Self>) -> der::Result<()> {
                Ok(())
            }
        }
        let dir = std::env::temp_dir().join(format!("privca-cms-long-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cert = CertificateInner::<Raw>::from_der(CERT).unwrap();
        let serial = [&[0x02, 0x20, 0x4a][..], &[0xb2; 31]].concat();
        cert.tbs_certificate.serial_number = SerialNumber::<Raw>::from_der(&serial).unwrap();
        let recipient = KeyTransRecipient::certificate(&cert).unwrap();
        let der = envelope(const_oid::db::rfc5911::ID_DATA, b"long", &recipient, ContentCipher::Aes128).unwrap();
        assert!(der.windows(serial.len()).any(|w| w == serial), "the serial is in the issuerAndSerialNumber");
        assert_eq!(openssl_decrypt(&dir, &der, &cert.to_der().unwrap()), b"long");
    }

    /// `openssl cms -decrypt` of `der` for recipient certificate `cert` with [`KEY`], in `dir`
    /// (removed after): the plaintext.
    fn openssl_decrypt(dir: &std::path::Path, der: &[u8], cert: &[u8]) -> Vec<u8> {
        std::fs::write(dir.join("env.der"), der).unwrap();
        std::fs::write(dir.join("cert.der"), cert).unwrap();
        std::fs::write(dir.join("key.der"), KEY).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["cms", "-decrypt", "-binary", "-inform", "DER", "-in", "env.der", "-recip", "cert.der"])
            .args(["-inkey", "key.der", "-keyform", "DER"])
            .current_dir(dir)
            .output()
            .unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    #[test]
    fn an_ec_key_is_refused() {
        let mut cert = Certificate::from_der(CERT).unwrap();
        cert.tbs_certificate.subject_public_key_info.algorithm.oid = const_oid::db::rfc5912::ID_EC_PUBLIC_KEY;
        assert!(matches!(KeyTransRecipient::certificate(&cert), Err(CmsError::RecipientKey)));
    }
}
