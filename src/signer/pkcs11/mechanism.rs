//! Algorithm ↔ `CKM_*` mapping and the conversions around it: software hashing for
//! `CKM_ECDSA` (SoftHSM2 has no `CKM_ECDSA_SHA256`), and the raw `r‖s` → DER
//! `Ecdsa-Sig-Value` conversion (RFC 3279 §2.2.3) that X.509 signatures need.

use cryptoki::mechanism::{
    eddsa::{EddsaParams, EddsaSignatureScheme},
    rsa::{PkcsMgfType, PkcsPssParams},
    Mechanism, MechanismType,
};
use der::{asn1::UintRef, Encode};

use super::Pkcs11Error;
use crate::signer::SigningAlgorithm;

/// What to hand to `C_Sign`: the mechanism and its input.
pub(crate) struct SignInput<'a> {
    pub(crate) mechanism: Mechanism<'a>,
    pub(crate) data: Vec<u8>,
}

/// Prepares the `C_Sign` call for `algorithm` over the full to-be-signed `message`.
pub(crate) fn sign_input(algorithm: SigningAlgorithm, message: &[u8]) -> SignInput<'static> {
    use ring::digest;
    match algorithm {
        SigningAlgorithm::EcdsaSha256 => {
            SignInput { mechanism: Mechanism::Ecdsa, data: digest::digest(&digest::SHA256, message).as_ref().to_vec() }
        }
        SigningAlgorithm::EcdsaSha384 => {
            SignInput { mechanism: Mechanism::Ecdsa, data: digest::digest(&digest::SHA384, message).as_ref().to_vec() }
        }
        SigningAlgorithm::Ed25519 => SignInput {
            mechanism: Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            data: message.to_vec(),
        },
        SigningAlgorithm::RsaPkcs1Sha256 => SignInput { mechanism: Mechanism::Sha256RsaPkcs, data: message.to_vec() },
        SigningAlgorithm::RsaPssSha256 => SignInput {
            mechanism: Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                hash_alg: MechanismType::SHA256,
                mgf: PkcsMgfType::MGF1_SHA256,
                s_len: 32.into(),
            }),
            data: message.to_vec(),
        },
    }
}

/// Turns the token's output into the X.509 `signatureValue` content.
pub(crate) fn signature_output(algorithm: SigningAlgorithm, raw: Vec<u8>) -> Result<Vec<u8>, Pkcs11Error> {
    match algorithm {
        SigningAlgorithm::EcdsaSha256 | SigningAlgorithm::EcdsaSha384 => ecdsa_raw_to_der(&raw),
        SigningAlgorithm::Ed25519 | SigningAlgorithm::RsaPkcs1Sha256 | SigningAlgorithm::RsaPssSha256 => Ok(raw),
    }
}

/// `r‖s` (two equal halves) → DER `SEQUENCE { INTEGER r, INTEGER s }`.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(Pkcs11Error::Malformed("ECDSA signature length is odd"));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let r = UintRef::new(r).map_err(|_| Pkcs11Error::Malformed("ECDSA r"))?;
    let s = UintRef::new(s).map_err(|_| Pkcs11Error::Malformed("ECDSA s"))?;
    vec![r, s].to_der().map_err(|_| Pkcs11Error::Malformed("ECDSA signature encoding"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_der_strips_and_pads() {
        // r has leading zeros, s has the top bit set.
        let mut raw = vec![0u8; 64];
        raw[2] = 0x01;
        raw[32] = 0x80;
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(der[0], 0x30);
        // r: 02 1e 01 00.. (30 bytes), s: 02 21 00 80 ...
        assert_eq!(&der[2..4], &[0x02, 30]);
        assert_eq!(der[4], 0x01);
        let s_at = 4 + 30;
        assert_eq!(&der[s_at..s_at + 4], &[0x02, 33, 0x00, 0x80]);
    }

    #[test]
    fn ecdsa_zero_halves() {
        let der = ecdsa_raw_to_der(&[0u8; 64]).unwrap();
        assert_eq!(der, vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]);
    }

    #[test]
    fn odd_length_is_rejected() {
        assert!(ecdsa_raw_to_der(&[1, 2, 3]).is_err());
    }
}
