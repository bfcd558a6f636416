//! CMS SignedData made by privca's EST server (RFC 5652 §5): Full PKI Responses and signed
//! server-generated key packages. Signed attributes contentType and messageDigest; the
//! signature over them happens in the HSM through the port, by the label's [`CmsSigner`].

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
    Any, Decode, Encode,
};
use x509_cert::{attr::Attribute, spki::AlgorithmIdentifierOwned, Certificate};

use crate::{
    backend::{CmsDigest, EstBackend},
    error::EstError,
};

/// A SignedData over `content` of type `content_type`, signed for `label`, carrying `certs` and
/// the signer's certificate.
pub async fn sign<B: EstBackend>(
    backend: &B,
    label: &str,
    content_type: ObjectIdentifier,
    content: Vec<u8>,
    certs: &[Vec<u8>],
) -> Result<SignedData, EstError> {
    let internal = |e: der::Error| EstError::Internal(format!("SignedData encoding: {e}"));
    let signer = backend.cms_signer(label).await?;
    let (digest_alg, digest_oid) = match signer.digest {
        CmsDigest::Sha256 => (&ring::digest::SHA256, const_oid::db::rfc5912::ID_SHA_256),
        CmsDigest::Sha384 => (&ring::digest::SHA384, const_oid::db::rfc5912::ID_SHA_384),
    };
    let digest = ring::digest::digest(digest_alg, &content);
    let mut signed_attrs = SetOfVec::new();
    signed_attrs
        .insert(attribute(ID_CONTENT_TYPE, Any::encode_from(&content_type).map_err(internal)?)?)
        .map_err(internal)?;
    let md = OctetString::new(digest.as_ref().to_vec()).map_err(internal)?;
    signed_attrs.insert(attribute(ID_MESSAGE_DIGEST, Any::encode_from(&md).map_err(internal)?)?).map_err(internal)?;
    let signature = backend.cms_sign(label, &signed_attrs.to_der().map_err(internal)?).await?;
    let signer_cert = Certificate::from_der(&signer.cert_der).map_err(internal)?;
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: signer_cert.tbs_certificate.issuer.clone(),
            serial_number: signer_cert.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: AlgorithmIdentifierOwned { oid: digest_oid, parameters: None },
        signed_attrs: Some(signed_attrs),
        signature_algorithm: AlgorithmIdentifierOwned::from_der(&signer.signature_algorithm_der).map_err(internal)?,
        signature: OctetString::new(signature).map_err(internal)?,
        unsigned_attrs: None,
    };
    let mut cert_set = SetOfVec::new();
    for der in certs.iter().chain(std::iter::once(&signer.cert_der)) {
        cert_set
            .insert(CertificateChoices::Certificate(Certificate::from_der(der).map_err(internal)?))
            .map_err(internal)?;
    }
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms.insert(signer_info.digest_alg.clone()).map_err(internal)?;
    let mut signer_infos = SetOfVec::new();
    signer_infos.insert(signer_info).map_err(internal)?;
    Ok(SignedData {
        // v3 when eContentType is not id-data (RFC 5652 §5.1).
        version: if content_type == ID_DATA { CmsVersion::V1 } else { CmsVersion::V3 },
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: content_type,
            econtent: Some(Any::encode_from(&OctetString::new(content).map_err(internal)?).map_err(internal)?),
        },
        certificates: Some(CertificateSet(cert_set)),
        crls: None,
        signer_infos: SignerInfos(signer_infos),
    })
}

/// An attribute with one value.
pub fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, EstError> {
    let mut values = SetOfVec::new();
    values.insert(value).map_err(|e| EstError::Internal(format!("attribute: {e}")))?;
    Ok(Attribute { oid, values })
}
