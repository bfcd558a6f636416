//! `pkcsPKIEnvelope` (RFC 8894 §3.2.2): a CMS ContentInfo of type envelopedData holding an
//! EnvelopedData with one KeyTransRecipientInfo
//! (rsaEncryption, PKCS#1 v1.5) and AES-128/192/256-CBC or DES-EDE3-CBC content encryption.
//! Opening one needs the RA decryption key, which works in the HSM through the port: this
//! module only finds the encrypted key and decrypts the content once the key is known, or with
//! a synthetic key when it is not ([`crate::rejection`]: every failure looks the same). Sealing
//! a CertRep encrypts to the requester's certificate (public key) in software, with the
//! EnvelopedData shared with EST ([`privca_cms`]).

use cms::{
    content_info::{CmsVersion, ContentInfo},
    enveloped_data::{KeyTransRecipientInfo, RecipientIdentifier, RecipientInfo},
};
use const_oid::{
    db::rfc5911::{ID_DATA, ID_ENVELOPED_DATA},
    ObjectIdentifier,
};
use der::{asn1::OctetString, Any, Decode, Encode};
use privca_cms::{CmsError, KeyTransRecipient};
use x509_cert::{
    certificate::{CertificateInner, Profile},
    spki::AlgorithmIdentifierOwned,
    Certificate,
};

use crate::{
    error::{FailInfo, ScepError},
    rejection::{self, ImplicitRejection},
};

/// A content-encryption algorithm SCEP clients use: AES-128-CBC (mandatory to implement,
/// §2.9), AES-192/256-CBC, DES-EDE3-CBC (old Cisco IOS), and single DES-CBC (micromdm's
/// scepclient, Go's pkcs7 default), decrypted only where the name allows it and answered with
/// AES-128 ([`reply_cipher`]).
pub use privca_cms::ContentCipher;

/// The cipher a CertRep to a request sealed with `cipher` uses: the same, except that single
/// DES is answered with AES-128-CBC (every client that sends DES decrypts AES too).
pub fn reply_cipher(cipher: ContentCipher) -> ContentCipher {
    match cipher {
        ContentCipher::Des => ContentCipher::Aes128,
        other => other,
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
        let key = rejection.content_key(&self.encrypted_key, recovered, self.cipher.key_len());
        if self.iv.len() != self.cipher.iv_len() {
            return Err(rejection::unopenable());
        }
        self.cipher.decrypt(&key, &self.iv, &self.ciphertext).ok_or_else(rejection::unopenable)
    }
}

/// `content` encrypted to `recipient`'s public key (RSA key transport) with
/// [`reply_cipher`]`(cipher)`, as a ContentInfo of type envelopedData.
pub fn seal<P: Profile>(
    content: &[u8],
    recipient: &CertificateInner<P>,
    cipher: ContentCipher,
) -> Result<Vec<u8>, ScepError> {
    let recipient = KeyTransRecipient::certificate(recipient).map_err(|e| match e {
        CmsError::RecipientKey => {
            ScepError::fail(FailInfo::BadAlg, "the requester's certificate has no RSA key to encrypt to")
        }
        e => ScepError::Internal(format!("sealing the CertRep: {e}")),
    })?;
    privca_cms::envelope(ID_DATA, content, &recipient, reply_cipher(cipher))
        .map_err(|e| ScepError::Internal(format!("sealing the CertRep: {e}")))
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
        assert_eq!(reply_cipher(ContentCipher::Des), ContentCipher::Aes128);
        assert_eq!(reply_cipher(ContentCipher::Des3), ContentCipher::Des3);
    }
}
