//! SignedData (RFC 5652 §5) with one SignerInfo identified by issuerAndSerialNumber, its
//! signature over the DER of the signed attributes made elsewhere (in the HSM). The signed
//! attributes always hold contentType and messageDigest (§5.3), and the protocol's own.

use cms::{
    cert::{CertificateChoices, IssuerAndSerialNumber},
    content_info::CmsVersion,
    signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos},
};
use const_oid::{
    db::rfc5911::{ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST},
    ObjectIdentifier,
};
use der::{
    asn1::{OctetString, SetOfVec},
    Any,
};
use x509_cert::{attr::Attribute, spki::AlgorithmIdentifierOwned, Certificate};

use crate::error::CmsError;

/// An attribute with one value.
pub fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, CmsError> {
    let mut values = SetOfVec::new();
    values.insert(value)?;
    Ok(Attribute { oid, values })
}

/// The signed attributes (a DER SET, sorted): contentType `content_type`, messageDigest
/// `digest` (of the content), then `extra`. The signature covers their DER encoding.
pub fn signed_attributes(
    content_type: ObjectIdentifier,
    digest: &[u8],
    extra: Vec<Attribute>,
) -> Result<SetOfVec<Attribute>, CmsError> {
    let mut all = vec![
        attribute(ID_CONTENT_TYPE, Any::encode_from(&content_type)?)?,
        attribute(ID_MESSAGE_DIGEST, Any::encode_from(&OctetString::new(digest)?)?)?,
    ];
    all.extend(extra);
    Ok(SetOfVec::try_from(all)?)
}

/// Who signed, and how.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// The signer's certificate (included in the SignedData, identifies the SignerInfo).
    pub certificate: &'a Certificate,
    /// digestAlgorithm of the messageDigest (no parameters).
    pub digest: ObjectIdentifier,
    /// signatureAlgorithm, as the key's algorithm states it.
    pub signature_algorithm: &'a AlgorithmIdentifierOwned,
}

/// SignedData over `content` of type `content_type`, with `signed_attrs` (see
/// [`signed_attributes`]) and their `signature` by `signer`, carrying `certs` and the signer's
/// certificate. Version 1, or 3 when the content type is not id-data (§5.1).
pub fn signed_data(
    content_type: ObjectIdentifier,
    content: Vec<u8>,
    signer: Signer<'_>,
    signed_attrs: SetOfVec<Attribute>,
    signature: Vec<u8>,
    certs: &[Certificate],
) -> Result<SignedData, CmsError> {
    let digest_alg = AlgorithmIdentifierOwned { oid: signer.digest, parameters: None };
    let tbs = &signer.certificate.tbs_certificate;
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer.clone(),
            serial_number: tbs.serial_number.clone(),
        }),
        digest_alg: digest_alg.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: signer.signature_algorithm.clone(),
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let mut cert_set = SetOfVec::new();
    for cert in certs.iter().chain(std::iter::once(signer.certificate)) {
        cert_set.insert(CertificateChoices::Certificate(cert.clone()))?;
    }
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms.insert(digest_alg)?;
    let mut signer_infos = SetOfVec::new();
    signer_infos.insert(signer_info)?;
    Ok(SignedData {
        version: if content_type == ID_DATA { CmsVersion::V1 } else { CmsVersion::V3 },
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: content_type,
            econtent: Some(Any::encode_from(&OctetString::new(content)?)?),
        },
        certificates: Some(CertificateSet(cert_set)),
        crls: None,
        signer_infos: SignerInfos(signer_infos),
    })
}
