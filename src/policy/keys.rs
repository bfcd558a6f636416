//! Key rules: which subject public keys a profile accepts. RSA keys below 2048 bits, odd
//! curves and unknown algorithms are refused with a message that names the rule.

use der::Decode;
use spki::SubjectPublicKeyInfoRef;

use crate::{error::CaError, signer::KeyAlgorithm};

/// Classifies `spki_der` and checks it against `allowed`.
pub fn check(spki_der: &[u8], allowed: &[KeyAlgorithm], profile: &str) -> Result<KeyAlgorithm, CaError> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|_| CaError::bad_request("public key: malformed SubjectPublicKeyInfo"))?;
    let algorithm = match KeyAlgorithm::from_spki(&spki) {
        Some(a) => a,
        None => return Err(CaError::policy(describe_refusal(&spki))),
    };
    if algorithm.is_rsa() {
        check_rsa_exponent(spki.subject_public_key.raw_bytes())?;
    }
    if !allowed.contains(&algorithm) {
        let names: Vec<_> = allowed.iter().map(|a| a.name()).collect();
        return Err(CaError::policy(format!(
            "key policy: profile {profile} does not allow {} keys (allowed: {})",
            algorithm.name(),
            names.join(", ")
        )));
    }
    Ok(algorithm)
}

fn describe_refusal(spki: &SubjectPublicKeyInfoRef<'_>) -> String {
    if spki.algorithm.oid == const_oid::db::rfc5912::RSA_ENCRYPTION {
        if let Some(bits) = crate::signer::rsa_modulus_bits(spki.subject_public_key.raw_bytes()) {
            if bits < 2048 {
                return format!("key policy: RSA-{bits} is too weak (minimum 2048 bits)");
            }
            return format!("key policy: RSA-{bits} is not a supported size (2048, 3072 or 4096)");
        }
        return "key policy: malformed RSA public key".into();
    }
    if spki.algorithm.oid == const_oid::db::rfc5912::ID_EC_PUBLIC_KEY {
        return "key policy: unsupported elliptic curve (use P-256 or P-384)".into();
    }
    format!("key policy: unsupported key algorithm {}", spki.algorithm.oid)
}

fn check_rsa_exponent(rsa_public_key: &[u8]) -> Result<(), CaError> {
    let mut reader = der::SliceReader::new(rsa_public_key).map_err(|_| CaError::bad_request("malformed RSA key"))?;
    let e = der::Reader::sequence(&mut reader, |r| {
        let _n = der::asn1::UintRef::decode(r)?;
        let e = der::asn1::UintRef::decode(r)?;
        Ok(e.as_bytes().to_vec())
    })
    .map_err(|_| CaError::bad_request("malformed RSA key"))?;
    let odd = e.last().is_some_and(|b| b & 1 == 1);
    let big_enough = e.len() > 1 || e.first().is_some_and(|b| *b >= 3);
    if !odd || !big_enough {
        return Err(CaError::policy("key policy: RSA public exponent must be odd and at least 3"));
    }
    Ok(())
}
