//! Server-side key generation for subscribers that cannot make their own key (EST
//! `/serverkeygen`, the admin keystore download): a fresh ECDSA key in software, handed to the
//! caller once as PKCS#8 and never stored, logged or audited. CA keys never come from here:
//! they live in the HSM.

use der::{asn1::BitString, Any, Encode};
use ring::signature::KeyPair;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use crate::{error::CaError, signer::KeyAlgorithm};

/// The key algorithms privca generates.
pub const GENERATED: [KeyAlgorithm; 2] = [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384];

/// A fresh key: PKCS#8 DER (for the subscriber only) and its SPKI DER. `algorithm` is one of
/// [`GENERATED`].
pub fn generate_key(algorithm: KeyAlgorithm) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CaError> {
    let (signing, curve) = match algorithm {
        KeyAlgorithm::EcdsaP256 => {
            (&ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING, const_oid::db::rfc5912::SECP_256_R_1)
        }
        KeyAlgorithm::EcdsaP384 => {
            (&ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING, const_oid::db::rfc5912::SECP_384_R_1)
        }
        other => return Err(CaError::bad_request(format!("privca does not generate {other:?} keys"))),
    };
    let rng = ring::rand::SystemRandom::new();
    let internal = |what: &str| CaError::internal(format!("server key generation: {what}"));
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(signing, &rng).map_err(|_| internal("generate"))?;
    let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(signing, &pkcs8, &rng).map_err(|_| internal("parse"))?;
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
            parameters: Some(Any::encode_from(&curve).map_err(|_| internal("curve"))?),
        },
        subject_public_key: BitString::from_bytes(pair.public_key().as_ref()).map_err(|_| internal("key"))?,
    };
    Ok((pkcs8, spki.to_der().map_err(|_| internal("SPKI"))?))
}

#[cfg(test)]
mod tests {
    use der::Decode;

    use super::*;

    #[test]
    fn generated_keys_match_their_spki_and_other_types_are_refused() {
        for algorithm in GENERATED {
            let (pkcs8, spki) = generate_key(algorithm).unwrap();
            let spki = spki::SubjectPublicKeyInfoRef::from_der(&spki).unwrap();
            assert_eq!(KeyAlgorithm::from_spki(&spki), Some(algorithm));
            assert!(!pkcs8.is_empty());
        }
        assert!(generate_key(KeyAlgorithm::Rsa2048).is_err());
    }
}
