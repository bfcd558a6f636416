//! `/csrattrs` (RFC 7030 §4.5.2 in the form RFC 9908 clarifies): `CsrAttrs ::= SEQUENCE OF
//! AttrOrOID`. privca tells the client the key type the label's profile wants (an attribute
//! `id-ecPublicKey` holding the curve, or `rsaEncryption` holding the modulus size), the
//! signature algorithm to sign the CSR with (a bare OID), and, in an `extensionRequest`
//! attribute, the extensions whose values the client should fill in (empty extnValue).

use const_oid::{
    db::rfc5912::{ID_EC_PUBLIC_KEY, ID_EXTENSION_REQ, RSA_ENCRYPTION},
    ObjectIdentifier,
};
use der::{
    asn1::{OctetString, SetOfVec},
    Any, Encode,
};
use x509_cert::{attr::Attribute, ext::Extension};

/// The key a label's profile wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRequest {
    /// An EC key on this named curve.
    Ec(ObjectIdentifier),
    /// An RSA key of this many bits.
    Rsa(u32),
}

/// What `/csrattrs` announces for a label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsrAttrsSpec {
    /// Preferred key type.
    pub key: Option<KeyRequest>,
    /// Signature algorithm for the CSR.
    pub signature_algorithm: Option<ObjectIdentifier>,
    /// Extensions the client should request (e.g. subjectAltName).
    pub extensions: Vec<ObjectIdentifier>,
}

/// DER `CsrAttrs`, or `None` when the spec is empty (`/csrattrs` then answers 204).
pub fn encode(spec: &CsrAttrsSpec) -> Result<Option<Vec<u8>>, der::Error> {
    let mut items: Vec<Any> = Vec::new();
    match &spec.key {
        Some(KeyRequest::Ec(curve)) => {
            items.push(Any::encode_from(&attribute(ID_EC_PUBLIC_KEY, Any::encode_from(curve)?)?)?)
        }
        Some(KeyRequest::Rsa(bits)) => {
            items.push(Any::encode_from(&attribute(RSA_ENCRYPTION, Any::encode_from(bits)?)?)?)
        }
        None => {}
    }
    if let Some(alg) = &spec.signature_algorithm {
        items.push(Any::encode_from(alg)?);
    }
    if !spec.extensions.is_empty() {
        let extensions = spec
            .extensions
            .iter()
            .map(|oid| Ok(Extension { extn_id: *oid, critical: false, extn_value: OctetString::new(Vec::new())? }))
            .collect::<Result<Vec<Extension>, der::Error>>()?;
        items.push(Any::encode_from(&attribute(ID_EXTENSION_REQ, Any::encode_from(&extensions)?)?)?);
    }
    if items.is_empty() {
        return Ok(None);
    }
    items.to_der().map(Some)
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, der::Error> {
    let mut values = SetOfVec::new();
    values.insert(value)?;
    Ok(Attribute { oid, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use const_oid::db::rfc5912::{ECDSA_WITH_SHA_256, SECP_256_R_1};

    #[test]
    fn an_ec_label_announces_curve_signature_and_san() {
        let spec = CsrAttrsSpec {
            key: Some(KeyRequest::Ec(SECP_256_R_1)),
            signature_algorithm: Some(ECDSA_WITH_SHA_256),
            extensions: vec![const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME],
        };
        let der = encode(&spec).unwrap().unwrap();
        // SEQUENCE { SEQUENCE { id-ecPublicKey, SET { secp256r1 } }, ecdsa-with-SHA256,
        //            SEQUENCE { extensionRequest, SET { Extensions { Extension { SAN, OCTET STRING {} } } } } }
        let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
        assert!(hex.starts_with("30"));
        assert!(hex.contains("06072a8648ce3d0201310a06082a8648ce3d030107"), "{hex}");
        assert!(hex.contains("06082a8648ce3d040302"), "{hex}");
        assert!(hex.contains("06092a864886f70d01090e310b300930070603551d110400"), "{hex}");
    }

    #[test]
    fn nothing_configured_is_no_content() {
        assert_eq!(encode(&CsrAttrsSpec::default()).unwrap(), None);
    }
}
