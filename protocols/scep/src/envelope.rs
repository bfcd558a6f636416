//! `pkcsPKIEnvelope` (RFC 8894 §3.2.2): a CMS ContentInfo of type envelopedData holding an
//! EnvelopedData with one KeyTransRecipientInfo
//! (rsaEncryption, PKCS#1 v1.5) and AES-128/192/256-CBC or DES-EDE3-CBC content encryption.
//! Opening one needs the RA decryption key, which works in the HSM through the port: this
//! module only finds the encrypted key and decrypts the content once the key is known, or with
//! a synthetic key when it is not ([`crate::rejection`]: every failure looks the same). Sealing
//! a CertRep encrypts to the requester's certificate (public key) in software.

use cms::{
    cert::IssuerAndSerialNumber,
    content_info::{CmsVersion, ContentInfo},
    enveloped_data::{
        EncryptedContentInfo, EnvelopedData, KeyTransRecipientInfo, RecipientIdentifier, RecipientInfo, RecipientInfos,
    },
};
use const_oid::{
    db::rfc5911::{ID_DATA, ID_ENVELOPED_DATA},
    ObjectIdentifier,
};
use der::{
    asn1::{OctetString, SetOfVec},
    Any, Decode, Encode,
};
use openssl::{
    pkey::{PKey, Public},
    symm::Cipher,
};
use x509_cert::{spki::AlgorithmIdentifierOwned, Certificate};

use crate::{
    error::{FailInfo, ScepError},
    oids,
    rejection::{self, ImplicitRejection},
};

/// A content-encryption algorithm SCEP clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCipher {
    /// AES-128-CBC (mandatory to implement, §2.9).
    Aes128,
    /// AES-192-CBC.
    Aes192,
    /// AES-256-CBC.
    Aes256,
    /// DES-EDE3-CBC (old Cisco IOS, quirk S9).
    Des3,
}

impl ContentCipher {
    /// From the AlgorithmIdentifier OID.
    pub fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        Some(match oid {
            oids::AES128_CBC => Self::Aes128,
            oids::AES192_CBC => Self::Aes192,
            oids::AES256_CBC => Self::Aes256,
            oids::DES_EDE3_CBC => Self::Des3,
            _ => return None,
        })
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Aes128 => oids::AES128_CBC,
            Self::Aes192 => oids::AES192_CBC,
            Self::Aes256 => oids::AES256_CBC,
            Self::Des3 => oids::DES_EDE3_CBC,
        }
    }

    fn openssl(self) -> Cipher {
        match self {
            Self::Aes128 => Cipher::aes_128_cbc(),
            Self::Aes192 => Cipher::aes_192_cbc(),
            Self::Aes256 => Cipher::aes_256_cbc(),
            Self::Des3 => Cipher::des_ede3_cbc(),
        }
    }
}

/// A decoded envelope, waiting for its content-encryption key.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// The RSA-encrypted content-encryption key.
    pub encrypted_key: Vec<u8>,
    /// Content cipher.
    pub cipher: ContentCipher,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// Decodes a pkcsPKIEnvelope (DER ContentInfo, or a bare EnvelopedData) addressed by key
/// transport.
pub fn decode(der: &[u8]) -> Result<Sealed, ScepError> {
    let check = |text: &str| ScepError::fail(FailInfo::BadMessageCheck, text);
    let not_enveloped = || check("the pkcsPKIEnvelope is not CMS EnvelopedData");
    let env = match ContentInfo::from_der(der) {
        Ok(info) if info.content_type == ID_ENVELOPED_DATA => info.content.decode_as().map_err(|_| not_enveloped())?,
        Ok(_) => return Err(not_enveloped()),
        Err(_) => EnvelopedData::from_der(der).map_err(|_| not_enveloped())?,
    };
    let ktri = env
        .recip_infos
        .0
        .iter()
        .find_map(|r| match r {
            RecipientInfo::Ktri(k) => Some(k),
            _ => None,
        })
        .ok_or_else(|| ScepError::fail(FailInfo::BadAlg, "only key-transport (RSA) recipients are supported"))?;
    let alg = &env.encrypted_content.content_enc_alg;
    let cipher = ContentCipher::from_oid(alg.oid)
        .ok_or_else(|| ScepError::fail(FailInfo::BadAlg, format!("content encryption {} is not supported", alg.oid)))?;
    let iv = alg
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<OctetString>().ok())
        .ok_or_else(|| check("the content-encryption IV is missing"))?
        .into_bytes();
    let ciphertext = env
        .encrypted_content
        .encrypted_content
        .as_ref()
        .ok_or_else(|| check("the envelope has no encrypted content"))?
        .as_bytes()
        .to_vec();
    Ok(Sealed { encrypted_key: ktri.enc_key.as_bytes().to_vec(), cipher, iv, ciphertext })
}

impl Sealed {
    /// The plaintext, decrypted with the content-encryption key the RA key `recovered`, or
    /// with the synthetic key of [`ImplicitRejection`] when it recovered none of the cipher's
    /// size. Every failure is [`rejection::unopenable`], whatever its cause.
    pub fn open(&self, recovered: Option<&[u8]>, rejection: &ImplicitRejection) -> Result<Vec<u8>, ScepError> {
        let cipher = self.cipher.openssl();
        let key = rejection.content_key(&self.encrypted_key, recovered, cipher.key_len());
        if Some(self.iv.len()) != cipher.iv_len() {
            return Err(rejection::unopenable());
        }
        openssl::symm::decrypt(cipher, &key, Some(&self.iv), &self.ciphertext).map_err(|_| rejection::unopenable())
    }
}

/// Encrypts `content` with `cipher` to `recipient`, whose public key is `recipient_key` (RSA).
pub fn seal(
    content: &[u8],
    recipient: &Certificate,
    recipient_key: Option<&PKey<Public>>,
    cipher: ContentCipher,
) -> Result<Vec<u8>, ScepError> {
    let internal = |what: &str| ScepError::Internal(format!("sealing the CertRep: {what}"));
    let rsa = recipient_key
        .and_then(|k| k.rsa().ok())
        .ok_or_else(|| ScepError::fail(FailInfo::BadAlg, "the requester's certificate has no RSA key to encrypt to"))?;
    let c = cipher.openssl();
    let mut key = vec![0u8; c.key_len()];
    let mut iv = vec![0u8; c.iv_len().unwrap_or(16)];
    openssl::rand::rand_bytes(&mut key).map_err(|_| internal("randomness"))?;
    openssl::rand::rand_bytes(&mut iv).map_err(|_| internal("randomness"))?;
    let ciphertext = openssl::symm::encrypt(c, &key, Some(&iv), content).map_err(|_| internal("encryption"))?;
    let mut encrypted_key = vec![0u8; rsa.size() as usize];
    let n = rsa
        .public_encrypt(&key, &mut encrypted_key, openssl::rsa::Padding::PKCS1)
        .map_err(|_| internal("key transport"))?;
    encrypted_key.truncate(n);

    let der_err = |e: der::Error| ScepError::Internal(format!("sealing the CertRep: {e}"));
    let ktri = KeyTransRecipientInfo {
        version: CmsVersion::V0,
        rid: RecipientIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: recipient.tbs_certificate.issuer.clone(),
            serial_number: recipient.tbs_certificate.serial_number.clone(),
        }),
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        enc_key: OctetString::new(encrypted_key).map_err(der_err)?,
    };
    let mut recipients = SetOfVec::new();
    recipients.insert(RecipientInfo::Ktri(ktri)).map_err(der_err)?;
    let env = EnvelopedData {
        version: CmsVersion::V0,
        originator_info: None,
        recip_infos: RecipientInfos(recipients),
        encrypted_content: EncryptedContentInfo {
            content_type: ID_DATA,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: cipher.oid(),
                parameters: Some(Any::encode_from(&OctetString::new(iv).map_err(der_err)?).map_err(der_err)?),
            },
            encrypted_content: Some(OctetString::new(ciphertext).map_err(der_err)?),
        },
        unprotected_attrs: None,
    };
    ContentInfo { content_type: ID_ENVELOPED_DATA, content: Any::encode_from(&env).map_err(der_err)? }
        .to_der()
        .map_err(der_err)
}
