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
    /// DES-EDE3-CBC (old Cisco IOS).
    Des3,
    /// Single DES-CBC (micromdm's scepclient, Go's pkcs7 default): decrypted only where the
    /// name allows it; replies are sealed with AES-128 instead ([`ContentCipher::for_reply`]).
    Des,
}

impl ContentCipher {
    /// From the AlgorithmIdentifier OID.
    pub fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        Some(match oid {
            oids::AES128_CBC => Self::Aes128,
            oids::AES192_CBC => Self::Aes192,
            oids::AES256_CBC => Self::Aes256,
            oids::DES_EDE3_CBC => Self::Des3,
            oids::DES_CBC => Self::Des,
            _ => return None,
        })
    }

    /// The cipher a CertRep to a request sealed with `self` uses: the same, except that single
    /// DES is answered with AES-128-CBC (every client that sends DES decrypts AES too).
    pub fn for_reply(self) -> Self {
        match self {
            Self::Des => Self::Aes128,
            other => other,
        }
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Aes128 => oids::AES128_CBC,
            Self::Aes192 => oids::AES192_CBC,
            Self::Aes256 => oids::AES256_CBC,
            Self::Des3 => oids::DES_EDE3_CBC,
            Self::Des => oids::DES_CBC,
        }
    }

    /// The OpenSSL cipher; single DES is not in OpenSSL 3's default provider.
    fn openssl(self) -> Option<Cipher> {
        Some(match self {
            Self::Aes128 => Cipher::aes_128_cbc(),
            Self::Aes192 => Cipher::aes_192_cbc(),
            Self::Aes256 => Cipher::aes_256_cbc(),
            Self::Des3 => Cipher::des_ede3_cbc(),
            Self::Des => return None,
        })
    }

    /// (key, IV) sizes in bytes.
    fn sizes(self) -> (usize, usize) {
        match self {
            Self::Aes128 => (16, 16),
            Self::Aes192 => (24, 16),
            Self::Aes256 => (32, 16),
            Self::Des3 => (24, 8),
            Self::Des => (8, 8),
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
/// transport. Of several recipients (clients that encrypt to every certificate GetCACert
/// returned), the one whose issuerAndSerialNumber names `recipient` is taken, else the first.
/// Single DES is refused (badAlg) unless `allow_des`.
pub fn decode(der: &[u8], recipient: &Certificate, allow_des: bool) -> Result<Sealed, ScepError> {
    let check = |text: &str| ScepError::fail(FailInfo::BadMessageCheck, text);
    let not_enveloped = || check("the pkcsPKIEnvelope is not CMS EnvelopedData");
    let env = match ContentInfo::from_der(der) {
        Ok(info) if info.content_type == ID_ENVELOPED_DATA => {
            AnyOrderEnvelopedData::from_der(&info.content.to_der().map_err(|_| not_enveloped())?)
                .map_err(|_| not_enveloped())?
        }
        Ok(_) => return Err(not_enveloped()),
        Err(_) => AnyOrderEnvelopedData::from_der(der).map_err(|_| not_enveloped())?,
    };
    let recipients = env.recipient_infos().map_err(|_| not_enveloped())?;
    let ktris: Vec<&KeyTransRecipientInfo> = recipients
        .iter()
        .filter_map(|r| match r {
            RecipientInfo::Ktri(k) => Some(k),
            _ => None,
        })
        .collect();
    let ours = |k: &&KeyTransRecipientInfo| match &k.rid {
        RecipientIdentifier::IssuerAndSerialNumber(ias) => {
            ias.serial_number == recipient.tbs_certificate.serial_number
                && ias.issuer == recipient.tbs_certificate.issuer
        }
        RecipientIdentifier::SubjectKeyIdentifier(_) => false,
    };
    let ktri = ktris
        .iter()
        .copied()
        .find(ours)
        .or_else(|| ktris.first().copied())
        .ok_or_else(|| ScepError::fail(FailInfo::BadAlg, "only key-transport (RSA) recipients are supported"))?;
    let (alg, ciphertext) = env.encrypted_content().map_err(|_| not_enveloped())?;
    let cipher = ContentCipher::from_oid(alg.oid)
        .ok_or_else(|| ScepError::fail(FailInfo::BadAlg, format!("content encryption {} is not supported", alg.oid)))?;
    if cipher == ContentCipher::Des && !allow_des {
        return Err(ScepError::fail(FailInfo::BadAlg, "single DES is not accepted here: use AES or DES3"));
    }
    let iv = alg
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<OctetString>().ok())
        .ok_or_else(|| check("the content-encryption IV is missing"))?
        .into_bytes();
    let ciphertext = ciphertext.ok_or_else(|| check("the envelope has no encrypted content"))?;
    Ok(Sealed { encrypted_key: ktri.enc_key.as_bytes().to_vec(), cipher, iv, ciphertext })
}

/// EnvelopedData (RFC 5652 §6.1) as clients write it, not only as DER has it: the
/// recipientInfos SET in any order (clients that encrypt to several certificates, micromdm's
/// scepclient with Go's pkcs7, write them unsorted), and the encryptedContent primitive or
/// constructed from OCTET STRING segments (BER).
#[derive(der::Sequence)]
struct AnyOrderEnvelopedData {
    version: CmsVersion,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    originator_info: Option<Any>,
    recip_infos: Any,
    encrypted_content: Any,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    unprotected_attrs: Option<Any>,
}

impl AnyOrderEnvelopedData {
    fn recipient_infos(&self) -> der::Result<Vec<RecipientInfo>> {
        if der::Tagged::tag(&self.recip_infos) != der::Tag::Set {
            return Err(der::Tag::Set.value_error());
        }
        let mut reader = der::SliceReader::new(self.recip_infos.value())?;
        let mut infos = Vec::new();
        while !der::Reader::is_finished(&reader) {
            infos.push(RecipientInfo::decode(&mut reader)?);
        }
        Ok(infos)
    }

    /// contentEncryptionAlgorithm and the encryptedContent octets, if any.
    fn encrypted_content(&self) -> der::Result<(AlgorithmIdentifierOwned, Option<Vec<u8>>)> {
        let mut reader = der::SliceReader::new(self.encrypted_content.value())?;
        ObjectIdentifier::decode(&mut reader)?; // contentType
        let alg = AlgorithmIdentifierOwned::decode(&mut reader)?;
        if der::Reader::is_finished(&reader) {
            return Ok((alg, None));
        }
        let field = Any::decode(&mut reader)?;
        let content = match der::Tagged::tag(&field) {
            der::Tag::ContextSpecific { constructed: false, number } if number.value() == 0 => field.value().to_vec(),
            der::Tag::ContextSpecific { constructed: true, number } if number.value() == 0 => {
                let mut segments = der::SliceReader::new(field.value())?;
                let mut content = Vec::new();
                while !der::Reader::is_finished(&segments) {
                    content.extend_from_slice(OctetString::decode(&mut segments)?.as_bytes());
                }
                content
            }
            tag => return Err(tag.value_error()),
        };
        Ok((alg, Some(content)))
    }
}

impl Sealed {
    /// The plaintext, decrypted with the content-encryption key the RA key `recovered`, or
    /// with the synthetic key of [`ImplicitRejection`] when it recovered none of the cipher's
    /// size. Every failure is [`rejection::unopenable`], whatever its cause.
    pub fn open(&self, recovered: Option<&[u8]>, rejection: &ImplicitRejection) -> Result<Vec<u8>, ScepError> {
        let (key_len, iv_len) = self.cipher.sizes();
        let key = rejection.content_key(&self.encrypted_key, recovered, key_len);
        if self.iv.len() != iv_len {
            return Err(rejection::unopenable());
        }
        let plain = match self.cipher.openssl() {
            Some(cipher) => openssl::symm::decrypt(cipher, &key, Some(&self.iv), &self.ciphertext).ok(),
            None => des_cbc_decrypt(&key, &self.iv, &self.ciphertext),
        };
        plain.ok_or_else(rejection::unopenable)
    }
}

/// Single-DES CBC with PKCS#7 padding (RustCrypto; not in OpenSSL 3's default provider).
fn des_cbc_decrypt(key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
    cbc::Decryptor::<des::Des>::new_from_slices(key, iv).ok()?.decrypt_padded_vec_mut::<Pkcs7>(ciphertext).ok()
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
    let c = cipher.for_reply().openssl().ok_or_else(|| internal("cipher"))?;
    let cipher = cipher.for_reply();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The pkcsPKIEnvelope of a PKCSReq by micromdm's scepclient (Go's pkcs7): three
    /// recipients (RA encryption, RA signing, RSA issuing CA) in a SET that is not sorted,
    /// single DES, and the encryptedContent constructed from an OCTET STRING (BER).
    const SCEPCLIENT_ENVELOPE: &[u8] = include_bytes!("../tests/vectors/scepclient-envelope.der");
    const SCEPCLIENT_SIGNER: &[u8] = include_bytes!("../tests/vectors/scepclient-signer.der");

    #[test]
    fn a_go_pkcs7_envelope_decodes_and_single_des_needs_the_name_to_allow_it() {
        let someone = Certificate::from_der(SCEPCLIENT_SIGNER).unwrap();
        match decode(SCEPCLIENT_ENVELOPE, &someone, false) {
            Err(ScepError::Fail(FailInfo::BadAlg, _)) => {}
            other => panic!("single DES must be refused by default: {other:?}"),
        }
        let sealed = decode(SCEPCLIENT_ENVELOPE, &someone, true).unwrap();
        assert_eq!(sealed.cipher, ContentCipher::Des);
        assert_eq!(sealed.iv.len(), 8);
        assert!(!sealed.ciphertext.is_empty() && sealed.ciphertext.len().is_multiple_of(8));
        assert_eq!(sealed.encrypted_key.len(), 256, "an RSA-2048 key transport");
        assert_eq!(ContentCipher::Des.for_reply(), ContentCipher::Aes128);
        assert_eq!(ContentCipher::Des3.for_reply(), ContentCipher::Des3);
    }

    #[test]
    fn single_des_cbc_decrypts_and_a_bad_padding_fails() {
        use cbc::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
        let (key, iv) = ([7u8; 8], [9u8; 8]);
        let ciphertext =
            cbc::Encryptor::<des::Des>::new_from_slices(&key, &iv).unwrap().encrypt_padded_vec_mut::<Pkcs7>(b"a CSR");
        assert_eq!(des_cbc_decrypt(&key, &iv, &ciphertext).unwrap(), b"a CSR");
        assert!(des_cbc_decrypt(&[8u8; 8], &iv, &ciphertext).is_none_or(|p| p != b"a CSR"));
        assert!(des_cbc_decrypt(&key, &iv, &ciphertext[..7]).is_none());
    }
}
