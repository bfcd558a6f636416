//! Public keys read from the token, turned into DER `SubjectPublicKeyInfo`. `CKA_EC_POINT`
//! comes either DER-wrapped in an OCTET STRING (as PKCS#11 specifies) or raw, depending on the
//! token and its version; both are accepted.

use der::{
    asn1::{BitString, OctetStringRef, UintRef},
    Decode, Encode,
};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::Pkcs11Error;
use crate::signer::KeyAlgorithm;

/// Unwraps a `CKA_EC_POINT` value to the bare point / key bytes.
pub(crate) fn unwrap_ec_point(value: &[u8], expected_len: usize) -> Result<Vec<u8>, Pkcs11Error> {
    if value.len() == expected_len {
        return Ok(value.to_vec());
    }
    let inner = OctetStringRef::from_der(value).map_err(|_| Pkcs11Error::Malformed("CKA_EC_POINT"))?;
    if inner.as_bytes().len() != expected_len {
        return Err(Pkcs11Error::Malformed("CKA_EC_POINT length"));
    }
    Ok(inner.as_bytes().to_vec())
}

/// SPKI for an EC public point (uncompressed, `04 ‖ X ‖ Y`) or an Ed25519 key.
pub fn ec_spki(algorithm: KeyAlgorithm, point: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
    let algorithm = match algorithm {
        KeyAlgorithm::Ed25519 => {
            AlgorithmIdentifierOwned { oid: const_oid::db::rfc8410::ID_ED_25519, parameters: None }
        }
        other => {
            let curve = other.curve_oid().ok_or(Pkcs11Error::Malformed("not an EC key"))?;
            AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
                parameters: Some(der::asn1::Any::encode_from(&curve).map_err(|_| Pkcs11Error::Malformed("curve"))?),
            }
        }
    };
    encode(algorithm, point)
}

/// SPKI for an RSA key from its modulus and public exponent (big-endian bytes).
pub(crate) fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
    let n = UintRef::new(modulus).map_err(|_| Pkcs11Error::Malformed("modulus"))?;
    let e = UintRef::new(exponent).map_err(|_| Pkcs11Error::Malformed("exponent"))?;
    let rsa_public_key = vec![n, e].to_der().map_err(|_| Pkcs11Error::Malformed("RSAPublicKey"))?;
    let algorithm = AlgorithmIdentifierOwned {
        oid: const_oid::db::rfc5912::RSA_ENCRYPTION,
        parameters: Some(der::asn1::Any::from(der::asn1::AnyRef::NULL)),
    };
    encode(algorithm, &rsa_public_key)
}

fn encode(algorithm: AlgorithmIdentifierOwned, key: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
    let spki = SubjectPublicKeyInfoOwned {
        algorithm,
        subject_public_key: BitString::from_bytes(key).map_err(|_| Pkcs11Error::Malformed("public key"))?,
    };
    spki.to_der().map_err(|_| Pkcs11Error::Malformed("SPKI"))
}

/// Point / key length for the EC-family algorithms.
pub(crate) fn point_len(algorithm: KeyAlgorithm) -> usize {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => 65,
        KeyAlgorithm::EcdsaP384 => 97,
        _ => 32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_raw_and_wrapped() {
        let mut point = vec![0x04];
        point.extend([7u8; 64]);
        assert_eq!(unwrap_ec_point(&point, 65).unwrap(), point);
        let wrapped = OctetStringRef::new(&point).unwrap().to_der().unwrap();
        assert_eq!(unwrap_ec_point(&wrapped, 65).unwrap(), point);
        assert!(unwrap_ec_point(&[1, 2, 3], 65).is_err());
    }
}
