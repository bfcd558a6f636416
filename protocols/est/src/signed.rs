//! CMS SignedData made by privca's EST server (RFC 5652 §5): Full PKI Responses and signed
//! server-generated key packages. Signed attributes contentType and messageDigest; the
//! signature over them happens in the HSM through the port, by the label's [`CmsSigner`].

use cms::signed_data::SignedData;
use const_oid::ObjectIdentifier;
use der::{Any, Decode, Encode};
use privca_cms::signed;
use x509_cert::{attr::Attribute, spki::AlgorithmIdentifierOwned, Certificate};

use crate::{
    backend::{CmsDigest, EstBackend},
    error::EstError,
};

/// A SignedData over `content` of type `content_type`, signed for `label`, carrying `certs` and
/// the signer's certificate ([`privca_cms::signed`]).
pub async fn sign<B: EstBackend>(
    backend: &B,
    label: &str,
    content_type: ObjectIdentifier,
    content: Vec<u8>,
    certs: &[Vec<u8>],
) -> Result<SignedData, EstError> {
    let internal = |e: &dyn std::fmt::Display| EstError::Internal(format!("SignedData encoding: {e}"));
    let signer = backend.cms_signer(label).await?;
    let (digest_alg, digest_oid) = match signer.digest {
        CmsDigest::Sha256 => (&ring::digest::SHA256, const_oid::db::rfc5912::ID_SHA_256),
        CmsDigest::Sha384 => (&ring::digest::SHA384, const_oid::db::rfc5912::ID_SHA_384),
    };
    let digest = ring::digest::digest(digest_alg, &content);
    let signed_attrs =
        signed::signed_attributes(content_type, digest.as_ref(), Vec::new()).map_err(|e| internal(&e))?;
    let signature = backend.cms_sign(label, &signed_attrs.to_der().map_err(|e| internal(&e))?).await?;
    let signer_cert = Certificate::from_der(&signer.cert_der).map_err(|e| internal(&e))?;
    let signature_algorithm =
        AlgorithmIdentifierOwned::from_der(&signer.signature_algorithm_der).map_err(|e| internal(&e))?;
    let certs =
        certs.iter().map(|der| Certificate::from_der(der)).collect::<Result<Vec<_>, _>>().map_err(|e| internal(&e))?;
    let signer =
        signed::Signer { certificate: &signer_cert, digest: digest_oid, signature_algorithm: &signature_algorithm };
    signed::signed_data(content_type, content, signer, signed_attrs, signature, &certs).map_err(|e| internal(&e))
}

/// An attribute with one value.
pub fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, EstError> {
    signed::attribute(oid, value).map_err(|e| EstError::Internal(format!("attribute: {e}")))
}
