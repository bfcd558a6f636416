//! Request pkiMessages (RFC 8894 §3.1–3.3): a CMS SignedData signed by the requester, whose
//! signed attributes carry transactionID, messageType and senderNonce, and whose content is the
//! pkcsPKIEnvelope. [`parse`] decodes what is needed to answer at all (an error there is an
//! HTTP 400); [`Request::verify`] then checks the signature and the messageDigest (an error
//! there is a CertRep FAILURE badMessageCheck).

use cms::{
    content_info::{CmsVersion, ContentInfo},
    signed_data::{EncapsulatedContentInfo, SignedAttributes, UnsignedAttributes},
};
use const_oid::{
    db::rfc5911::{ID_MESSAGE_DIGEST, ID_SIGNED_DATA},
    ObjectIdentifier,
};
use der::{
    asn1::{OctetString, PrintableStringRef},
    Any, Decode, DecodeValue, Encode, FixedTag, Header, Reader, SliceReader, Tag, TagNumber,
};
use x509_cert::{
    certificate::{CertificateInner, Profile},
    name::Name,
    serial_number::SerialNumber,
    spki::AlgorithmIdentifierOwned,
};

use crate::{
    error::{FailInfo, ScepError},
    oids,
};

/// messageType values (§3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// 19: enrollment.
    PkcsReq,
    /// 17: renewal, signed by the certificate being renewed.
    RenewalReq,
    /// 20: poll a pending request (GetCertInitial).
    CertPoll,
    /// 21: fetch a certificate by issuer and serial.
    GetCert,
    /// 22: fetch a CRL.
    GetCrl,
}

impl MessageType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "19" => Self::PkcsReq,
            "17" => Self::RenewalReq,
            "20" => Self::CertPoll,
            "21" => Self::GetCert,
            "22" => Self::GetCrl,
            _ => return None,
        })
    }
}

impl MessageType {
    /// Whether `content`, the opened pkcsPKIEnvelope, decodes as this message's content
    /// (§3.3.1–3.3.4): a PKCS#10 request, an IssuerAndSubject or an IssuerAndSerialNumber.
    /// Content that does not is answered like an envelope that does not open
    /// ([`crate::rejection`]).
    pub fn content_decodes(self, content: &[u8]) -> bool {
        match self {
            Self::PkcsReq | Self::RenewalReq => x509_cert::request::CertReq::from_der(content).is_ok(),
            Self::CertPoll => IssuerAndSubject::from_der(content).is_ok(),
            Self::GetCert | Self::GetCrl => cms::cert::IssuerAndSerialNumber::from_der(content).is_ok(),
        }
    }
}

/// `IssuerAndSubject` (RFC 8894 §3.3.3), the content of a CertPoll.
#[derive(der::Sequence)]
struct IssuerAndSubject {
    issuer: Name,
    subject: Name,
}

/// A decoded request pkiMessage.
#[derive(Debug, Clone)]
pub struct Request {
    /// transactionID (echoed in the CertRep).
    pub transaction_id: String,
    /// senderNonce (returned as recipientNonce).
    pub sender_nonce: Vec<u8>,
    /// messageType, or the unsupported value as sent.
    pub message_type: Result<MessageType, String>,
    /// The certificate that signed the message (DER).
    pub signer_cert: Vec<u8>,
    /// The pkcsPKIEnvelope (DER), if any.
    pub envelope: Option<Vec<u8>>,
    signer: SignerInfo,
    /// `signer_cert` decoded: the CertRep is enveloped to it.
    signer_certificate: SignerCertificate,
}

/// A requester's certificate, whatever the length of its serial number: certmonger signs its
/// PKCSReq with a self-signed certificate whose serial has 32 octets, more than the 20 of RFC
/// 5280 §4.1.2.2 that the `cms` crate's types (and [`x509_cert::Certificate`]) insist on.
pub type SignerCertificate = CertificateInner<AnySerial>;

/// The [`Profile`] of [`SignerCertificate`]: RFC 5280's, but serial numbers of any length
/// (x509-cert's own `Raw` needs its `hazmat` feature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnySerial;

impl Profile for AnySerial {
    fn check_serial_number(_: &SerialNumber<Self>) -> der::Result<()> {
        Ok(())
    }
}

/// SignedData (RFC 5652 §5.1) as far as a pkiMessage needs it, decoded like the `cms` crate's
/// but with the certificates and the signer's issuerAndSerialNumber of [`SignerCertificate`]'s
/// leniency; certificates of the other CertificateChoices and the CRLs are skipped.
struct SignedData {
    encap_content_info: EncapsulatedContentInfo,
    certificates: Vec<SignerCertificate>,
    signer_infos: Vec<SignerInfo>,
}

impl FixedTag for SignedData {
    const TAG: Tag = Tag::Sequence;
}

impl<'a> DecodeValue<'a> for SignedData {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        reader.read_nested(header.length, |r| {
            CmsVersion::decode(r)?;
            Any::decode(r)?; // digestAlgorithms
            let encap_content_info = EncapsulatedContentInfo::decode(r)?;
            let mut certificates = Vec::new();
            if r.peek_tag()? == (Tag::ContextSpecific { constructed: true, number: TagNumber::N0 }) {
                let set = Any::decode(r)?;
                let mut certs = SliceReader::new(set.value())?;
                while !certs.is_finished() {
                    if certs.peek_tag()? == Tag::Sequence {
                        certificates.push(SignerCertificate::decode(&mut certs)?);
                    } else {
                        Any::decode(&mut certs)?;
                    }
                }
            }
            if r.peek_tag()? == (Tag::ContextSpecific { constructed: true, number: TagNumber::N1 }) {
                Any::decode(r)?; // crls
            }
            let set = Any::decode(r)?;
            if der::Tagged::tag(&set) != Tag::Set {
                return Err(Tag::Set.value_error());
            }
            let mut infos = SliceReader::new(set.value())?;
            let mut signer_infos = Vec::new();
            while !infos.is_finished() {
                signer_infos.push(SignerInfo::decode(&mut infos)?);
            }
            Ok(Self { encap_content_info, certificates, signer_infos })
        })
    }
}

/// SignerInfo (RFC 5652 §5.3), the `cms` crate's with a serial of any length in the sid.
#[derive(Clone, Debug, der::Sequence)]
#[allow(dead_code)] // every field is decoded; not all are read
struct SignerInfo {
    version: CmsVersion,
    sid: SignerIdentifier,
    digest_alg: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    signed_attrs: Option<SignedAttributes>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: OctetString,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    unsigned_attrs: Option<UnsignedAttributes>,
}

#[derive(Clone, Debug, der::Choice)]
#[allow(dead_code)]
enum SignerIdentifier {
    IssuerAndSerialNumber(IssuerAndSerialNumber),
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    SubjectKeyIdentifier(OctetString),
}

#[derive(Clone, Debug, der::Sequence)]
struct IssuerAndSerialNumber {
    issuer: Name,
    serial_number: SerialNumber<AnySerial>,
}

/// Decodes `der` far enough to answer it.
pub fn parse(der: &[u8]) -> Result<Request, ScepError> {
    let bad = |what: &str| ScepError::Undecodable(format!("not a SCEP pkiMessage: {what}"));
    let info = ContentInfo::from_der(der).map_err(|_| bad("no CMS ContentInfo"))?;
    if info.content_type != ID_SIGNED_DATA {
        return Err(bad("the ContentInfo is not SignedData"));
    }
    let signed: SignedData = info.content.decode_as().map_err(|_| bad("malformed SignedData"))?;
    let signer = signed.signer_infos.first().cloned().ok_or_else(|| bad("no SignerInfo"))?;
    let attrs = signer.signed_attrs.as_ref().ok_or_else(|| bad("no signed attributes"))?;
    let value = |oid: ObjectIdentifier| attrs.iter().find(|a| a.oid == oid).and_then(|a| a.values.iter().next());
    let printable = |oid: ObjectIdentifier| {
        value(oid).and_then(|v| {
            v.decode_as::<PrintableStringRef<'_>>()
                .map(|s| s.as_str().to_owned())
                .or_else(|_| v.decode_as::<String>())
                .ok()
        })
    };
    let transaction_id = printable(oids::TRANSACTION_ID).ok_or_else(|| bad("no transactionID"))?;
    let message_type = printable(oids::MESSAGE_TYPE).ok_or_else(|| bad("no messageType"))?;
    let sender_nonce = value(oids::SENDER_NONCE)
        .and_then(|v| v.decode_as::<OctetString>().ok())
        .ok_or_else(|| bad("no senderNonce"))?
        .into_bytes();
    let signer_certificate = signed
        .certificates
        .iter()
        .find(|cert| signed_by(&signer, cert))
        .cloned()
        .ok_or_else(|| bad("the signer's certificate is not in the message"))?;
    let signer_cert = signer_certificate.to_der().map_err(|_| bad("the signer's certificate does not re-encode"))?;
    let envelope = signed
        .encap_content_info
        .econtent
        .as_ref()
        .and_then(|c| c.decode_as::<OctetString>().ok())
        .map(|o| o.into_bytes());
    Ok(Request {
        transaction_id,
        sender_nonce,
        message_type: MessageType::parse(&message_type).ok_or(message_type),
        signer_cert,
        envelope,
        signer,
        signer_certificate,
    })
}

fn signed_by(signer: &SignerInfo, cert: &SignerCertificate) -> bool {
    match &signer.sid {
        SignerIdentifier::IssuerAndSerialNumber(i) => {
            i.issuer == cert.tbs_certificate.issuer && i.serial_number == cert.tbs_certificate.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(_) => true,
    }
}

/// A digest a SignerInfo may name (SHA-1, SHA-256, SHA-512): ring's for the messageDigest, the
/// RSA check and the prehash of the ECDSA check.
struct Digest {
    ring: &'static ring::digest::Algorithm,
    rsa: &'static ring::signature::RsaParameters,
}

fn digest(oid: ObjectIdentifier) -> Option<Digest> {
    use ring::{digest as d, signature as s};
    Some(match oid {
        const_oid::db::rfc5912::ID_SHA_1 => {
            Digest { ring: &d::SHA1_FOR_LEGACY_USE_ONLY, rsa: &s::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY }
        }
        const_oid::db::rfc5912::ID_SHA_256 => {
            Digest { ring: &d::SHA256, rsa: &s::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY }
        }
        const_oid::db::rfc5912::ID_SHA_512 => {
            Digest { ring: &d::SHA512, rsa: &s::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY }
        }
        _ => return None,
    })
}

impl Request {
    /// The signer certificate, decoded.
    pub fn signer_certificate(&self) -> &SignerCertificate {
        &self.signer_certificate
    }

    /// Checks the signature over the signed attributes with the signer certificate's key and
    /// the messageDigest over the envelope. SHA-1, SHA-256 and SHA-512; RSA (PKCS #1 v1.5,
    /// 1024 to 8192 bits) or ECDSA (P-256, P-384, P-521).
    pub fn verify(&self) -> Result<(), ScepError> {
        let fail = |text: &str| ScepError::fail(FailInfo::BadMessageCheck, text);
        let md = digest(self.signer.digest_alg.oid).ok_or_else(|| {
            ScepError::fail(FailInfo::BadAlg, format!("digest {} is not supported", self.signer.digest_alg.oid))
        })?;
        let attrs = self.signer.signed_attrs.as_ref().ok_or_else(|| fail("no signed attributes"))?;
        let stated = attrs
            .iter()
            .find(|a| a.oid == ID_MESSAGE_DIGEST)
            .and_then(|a| a.values.iter().next())
            .and_then(|v| v.decode_as::<OctetString>().ok())
            .ok_or_else(|| fail("no messageDigest"))?;
        let actual = ring::digest::digest(md.ring, self.envelope.as_deref().unwrap_or_default());
        if stated.as_bytes() != actual.as_ref() {
            return Err(fail("messageDigest does not match the content"));
        }
        let signed = attrs.to_der().map_err(|_| fail("signed attributes"))?;
        let signature = self.signer.signature.as_bytes();
        let verified = if let Some(key) = crate::keys::rsa_public_key(&self.signer_certificate) {
            ring::signature::UnparsedPublicKey::new(md.rsa, key).verify(&signed, signature).is_ok()
        } else {
            let prehash = ring::digest::digest(md.ring, &signed);
            crate::keys::ecdsa_verify(&self.signer_certificate, prehash.as_ref(), signature)
                .ok_or_else(|| fail("unusable signer key"))?
        };
        if !verified {
            return Err(fail("the signature does not verify with the signer's certificate"));
        }
        Ok(())
    }
}

/// `IssuerAndSerialNumber` (GetCert, GetCRL): DER issuer Name and serial content octets.
pub fn issuer_and_serial(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ScepError> {
    let ias = cms::cert::IssuerAndSerialNumber::from_der(der)
        .map_err(|_| ScepError::fail(FailInfo::BadRequest, "the content is not an IssuerAndSerialNumber"))?;
    let issuer = ias.issuer.to_der().map_err(|e| ScepError::Internal(e.to_string()))?;
    Ok((issuer, ias.serial_number.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PKCSReq by the certmonger daemon (0.79.17, Debian 12) to the RSA name of a dev
    /// privca: signed by its self-signed certificate, whose serial number has 32 octets.
    const CERTMONGER_PKCSREQ: &[u8] = include_bytes!("../tests/vectors/certmonger-pkcsreq.der");

    #[test]
    fn a_signer_certificate_with_a_32_octet_serial_parses_and_verifies() {
        let request = parse(CERTMONGER_PKCSREQ).unwrap();
        assert_eq!(request.message_type, Ok(MessageType::PkcsReq));
        let serial = request.signer_certificate().tbs_certificate.serial_number.as_bytes();
        assert_eq!(serial.len(), 32);
        assert!(x509_cert::Certificate::from_der(&request.signer_cert).is_err(), "RFC 5280's limit is 20 octets");
        assert!(request.envelope.is_some());
        request.verify().unwrap();
        // The CertRep's envelope names that certificate by its issuer and its whole serial.
        let sealed =
            crate::envelope::seal(b"certs-only", request.signer_certificate(), crate::envelope::ContentCipher::Aes256)
                .unwrap();
        assert!(sealed.windows(serial.len()).any(|w| w == serial));
    }
}
