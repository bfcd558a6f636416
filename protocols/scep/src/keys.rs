//! Public keys of the certificates in a pkiMessage (the signer's) and the signature check
//! over the signed attributes: RSA (PKCS #1 v1.5) from the SPKI's RSAPublicKey with ring, ECDSA
//! on P-256, P-384 and P-521 with RustCrypto over the digest the SignerInfo names (SHA-1,
//! SHA-256 or SHA-512 on any of the curves, which ring's fixed curve/digest pairs do not cover).

use const_oid::{
    db::rfc5912::{ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1, SECP_521_R_1},
    ObjectIdentifier,
};
use x509_cert::certificate::{CertificateInner, Profile};

/// The DER RSAPublicKey of `cert`, if its key is rsaEncryption.
pub(crate) fn rsa_public_key<P: Profile>(cert: &CertificateInner<P>) -> Option<&[u8]> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    (spki.algorithm.oid == RSA_ENCRYPTION).then(|| spki.subject_public_key.as_bytes()).flatten()
}

/// Whether `signature` (DER ECDSA-Sig-Value) over a message whose digest is `prehash` verifies
/// with `cert`'s EC key; `None` if the key is not an EC key on a supported curve.
pub(crate) fn ecdsa_verify<P: Profile>(cert: &CertificateInner<P>, prehash: &[u8], signature: &[u8]) -> Option<bool> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
        return None;
    }
    let curve: ObjectIdentifier = spki.algorithm.parameters.as_ref()?.decode_as().ok()?;
    let point = spki.subject_public_key.as_bytes()?;
    macro_rules! verify {
        ($curve:ident) => {{
            let key = $curve::ecdsa::VerifyingKey::from_sec1_bytes(point).ok()?;
            let prehash = field_wide(prehash, $curve::FieldBytes::default().len());
            let ok = $curve::ecdsa::Signature::from_der(signature)
                .is_ok_and(|sig| key.verify_prehash(&prehash, &sig).is_ok());
            Some(ok)
        }};
    }
    match curve {
        SECP_256_R_1 => verify!(p256),
        SECP_384_R_1 => verify!(p384),
        SECP_521_R_1 => verify!(p521),
        _ => None,
    }
}

/// `prehash` left-padded with zeros to `field` bytes: the same integer (SEC 1 §4.1.4 step 5
/// takes a shorter digest whole), which RustCrypto's ECDSA wants at least half a field wide
/// (SHA-1 or SHA-256 on P-521).
fn field_wide(prehash: &[u8], field: usize) -> Vec<u8> {
    let mut wide = vec![0u8; field.saturating_sub(prehash.len())];
    wide.extend_from_slice(prehash);
    wide
}

#[cfg(test)]
mod tests {
    use der::{asn1::BitString, Any, Decode};
    use p256::ecdsa::signature::hazmat::RandomizedPrehashSigner;
    use x509_cert::Certificate;

    use super::*;

    const P256_CERT: &[u8] = include_bytes!("../tests/vectors/test-p256.crt.der");
    const RSA_CERT: &[u8] = include_bytes!("../tests/vectors/test-rsa2048.crt.der");

    /// A parsed certificate with the key `point` on `curve` grafted in (only the SPKI matters).
    fn cert_with(curve: ObjectIdentifier, point: &[u8]) -> Certificate {
        let mut cert = Certificate::from_der(P256_CERT).unwrap();
        let spki = &mut cert.tbs_certificate.subject_public_key_info;
        spki.algorithm.parameters = Some(Any::encode_from(&curve).unwrap());
        spki.subject_public_key = BitString::from_bytes(point).unwrap();
        cert
    }

    /// ECDSA over SHA-1, SHA-256 and SHA-512 digests on each curve, as OpenSSL allows.
    #[test]
    fn ecdsa_on_every_curve_with_every_digest() {
        macro_rules! case {
            ($curve:ident, $oid:expr) => {{
                let key =
                    $curve::ecdsa::SigningKey::from_slice(&[1u8; 66][..$curve::FieldBytes::default().len()]).unwrap();
                let cert = cert_with($oid, $curve::ecdsa::VerifyingKey::from(&key).to_encoded_point(false).as_bytes());
                for alg in [&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &ring::digest::SHA256, &ring::digest::SHA512] {
                    let prehash = ring::digest::digest(alg, b"signed attributes");
                    let sig: $curve::ecdsa::Signature = key
                        .sign_prehash_with_rng(
                            &mut rsa::rand_core::OsRng,
                            &field_wide(prehash.as_ref(), $curve::FieldBytes::default().len()),
                        )
                        .unwrap();
                    let der = sig.to_der();
                    assert_eq!(ecdsa_verify(&cert, prehash.as_ref(), der.as_bytes()), Some(true));
                    let other = ring::digest::digest(alg, b"other attributes");
                    assert_eq!(ecdsa_verify(&cert, other.as_ref(), der.as_bytes()), Some(false));
                    assert_eq!(ecdsa_verify(&cert, prehash.as_ref(), b"not DER"), Some(false));
                }
            }};
        }
        case!(p256, SECP_256_R_1);
        case!(p384, SECP_384_R_1);
        case!(p521, SECP_521_R_1);
    }

    #[test]
    fn rsa_keys_are_read_apart_and_unknown_curves_refused() {
        let rsa = Certificate::from_der(RSA_CERT).unwrap();
        assert!(rsa_public_key(&rsa).is_some());
        assert_eq!(ecdsa_verify(&rsa, &[0; 32], &[]), None);
        let ec = Certificate::from_der(P256_CERT).unwrap();
        assert!(rsa_public_key(&ec).is_none());
        let secp256k1 = ObjectIdentifier::new_unwrap("1.3.132.0.10");
        let point = ec.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes().to_vec();
        assert_eq!(ecdsa_verify(&cert_with(secp256k1, &point), &[0; 32], &[]), None);
    }
}
