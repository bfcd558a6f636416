//! Key and signature algorithms, with their X.509 `AlgorithmIdentifier`s (RFC 5758, RFC 4055,
//! RFC 8410) and the `ring` verification algorithms used to check every HSM signature.

use std::str::FromStr;

use const_oid::{db::rfc5912, ObjectIdentifier};
use der::{asn1::AnyRef, Decode};
use spki::AlgorithmIdentifierOwned;

/// A key type the token can generate and privca can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// Ed25519 (tokens with PKCS#11 v3.0 EdDSA only).
    Ed25519,
    /// RSA, 2048-bit modulus.
    Rsa2048,
    /// RSA, 3072-bit modulus.
    Rsa3072,
    /// RSA, 4096-bit modulus.
    Rsa4096,
}

impl KeyAlgorithm {
    /// The config spellings, in the order of the enum.
    pub const NAMES: [&'static str; 6] = ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-2048", "rsa-3072", "rsa-4096"];

    const ALL: [KeyAlgorithm; 6] =
        [Self::EcdsaP256, Self::EcdsaP384, Self::Ed25519, Self::Rsa2048, Self::Rsa3072, Self::Rsa4096];

    /// Config spelling.
    pub fn name(self) -> &'static str {
        let i = Self::ALL.iter().position(|a| *a == self).unwrap_or(0);
        Self::NAMES[i]
    }

    /// True for the RSA sizes.
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }

    /// RSA modulus size in bits.
    pub fn rsa_bits(self) -> Option<u64> {
        match self {
            Self::Rsa2048 => Some(2048),
            Self::Rsa3072 => Some(3072),
            Self::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// Named-curve OID for the EC keys.
    pub fn curve_oid(self) -> Option<ObjectIdentifier> {
        match self {
            Self::EcdsaP256 => Some(rfc5912::SECP_256_R_1),
            Self::EcdsaP384 => Some(rfc5912::SECP_384_R_1),
            _ => None,
        }
    }

    /// Classifies a public key (SPKI DER). `None` for unsupported or malformed keys.
    pub fn from_spki(spki: &spki::SubjectPublicKeyInfoRef<'_>) -> Option<Self> {
        let oid = spki.algorithm.oid;
        if oid == rfc5912::ID_EC_PUBLIC_KEY {
            let curve: ObjectIdentifier = spki.algorithm.parameters?.decode_as().ok()?;
            return match curve {
                c if c == rfc5912::SECP_256_R_1 => Some(Self::EcdsaP256),
                c if c == rfc5912::SECP_384_R_1 => Some(Self::EcdsaP384),
                _ => None,
            };
        }
        if oid == const_oid::db::rfc8410::ID_ED_25519 {
            return Some(Self::Ed25519);
        }
        if oid == rfc5912::RSA_ENCRYPTION {
            return match rsa_modulus_bits(spki.subject_public_key.raw_bytes())? {
                2048 => Some(Self::Rsa2048),
                3072 => Some(Self::Rsa3072),
                4096 => Some(Self::Rsa4096),
                _ => None,
            };
        }
        None
    }
}

/// Modulus size of a DER `RSAPublicKey`.
pub fn rsa_modulus_bits(rsa_public_key: &[u8]) -> Option<usize> {
    let mut reader = der::SliceReader::new(rsa_public_key).ok()?;
    let (n, _e): (der::asn1::UintRef<'_>, der::asn1::UintRef<'_>) = der::Reader::sequence(&mut reader, |r| {
        let n = der::asn1::UintRef::decode(r)?;
        let e = der::asn1::UintRef::decode(r)?;
        Ok((n, e))
    })
    .ok()?;
    let bytes = n.as_bytes();
    let first = *bytes.first()?;
    Some((bytes.len() - 1) * 8 + (8 - first.leading_zeros() as usize))
}

impl FromStr for KeyAlgorithm {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::NAMES.iter().position(|n| *n == s).map(|i| Self::ALL[i]).ok_or(())
    }
}

/// A signature algorithm: what the HSM computes and what the certificate says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// ecdsa-with-SHA256 (RFC 5758).
    EcdsaSha256,
    /// ecdsa-with-SHA384 (RFC 5758).
    EcdsaSha384,
    /// Ed25519 (RFC 8410).
    Ed25519,
    /// sha256WithRSAEncryption (RFC 4055).
    RsaPkcs1Sha256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, salt 32 (RFC 4055).
    RsaPssSha256,
}

/// DER of `RSASSA-PSS-params` for SHA-256 / MGF1-SHA-256 / salt 32 (the CA/B Forum encoding).
const PSS_SHA256_PARAMS: [u8; 54] = [
    0x30, 0x34, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d, 0x06, 0x09,
    0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x20,
];

impl SigningAlgorithm {
    /// The algorithm a CA key of type `key` signs with (`pss` selects RSASSA-PSS for RSA keys).
    pub fn for_key(key: KeyAlgorithm, pss: bool) -> Self {
        match key {
            KeyAlgorithm::EcdsaP256 => Self::EcdsaSha256,
            KeyAlgorithm::EcdsaP384 => Self::EcdsaSha384,
            KeyAlgorithm::Ed25519 => Self::Ed25519,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 if pss => Self::RsaPssSha256,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => Self::RsaPkcs1Sha256,
        }
    }

    /// True when this algorithm can be computed with a key of type `key`.
    pub fn fits(self, key: KeyAlgorithm) -> bool {
        match self {
            Self::EcdsaSha256 => key == KeyAlgorithm::EcdsaP256,
            Self::EcdsaSha384 => key == KeyAlgorithm::EcdsaP384,
            Self::Ed25519 => key == KeyAlgorithm::Ed25519,
            Self::RsaPkcs1Sha256 | Self::RsaPssSha256 => key.is_rsa(),
        }
    }

    /// The `AlgorithmIdentifier` placed in `signature` / `signatureAlgorithm`.
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        let (oid, parameters) = match self {
            Self::EcdsaSha256 => (rfc5912::ECDSA_WITH_SHA_256, None),
            Self::EcdsaSha384 => (rfc5912::ECDSA_WITH_SHA_384, None),
            Self::Ed25519 => (const_oid::db::rfc8410::ID_ED_25519, None),
            Self::RsaPkcs1Sha256 => (rfc5912::SHA_256_WITH_RSA_ENCRYPTION, Some(der::asn1::Any::from(AnyRef::NULL))),
            Self::RsaPssSha256 => (rfc5912::ID_RSASSA_PSS, der::asn1::Any::from_der(&PSS_SHA256_PARAMS).ok()),
        };
        AlgorithmIdentifierOwned { oid, parameters }
    }

    /// The `ring` algorithm that verifies this signature over a public key of type `key`.
    pub fn ring_verifier(self, key: KeyAlgorithm) -> &'static dyn ring::signature::VerificationAlgorithm {
        use ring::signature as rs;
        match (self, key) {
            (Self::EcdsaSha256, KeyAlgorithm::EcdsaP384) => &rs::ECDSA_P384_SHA256_ASN1,
            (Self::EcdsaSha256, _) => &rs::ECDSA_P256_SHA256_ASN1,
            (Self::EcdsaSha384, KeyAlgorithm::EcdsaP256) => &rs::ECDSA_P256_SHA384_ASN1,
            (Self::EcdsaSha384, _) => &rs::ECDSA_P384_SHA384_ASN1,
            (Self::Ed25519, _) => &rs::ED25519,
            (Self::RsaPkcs1Sha256, _) => &rs::RSA_PKCS1_2048_8192_SHA256,
            (Self::RsaPssSha256, _) => &rs::RSA_PSS_2048_8192_SHA256,
        }
    }
}

/// Verifies `signature` over `message` with a public key given as SPKI DER.
pub fn verify_spki(
    spki_der: &[u8],
    algorithm: SigningAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|_| VerifyError::BadKey)?;
    let key = KeyAlgorithm::from_spki(&spki).ok_or(VerifyError::BadKey)?;
    if !algorithm.fits(key)
        && !matches!(
            (algorithm, key),
            (
                SigningAlgorithm::EcdsaSha256 | SigningAlgorithm::EcdsaSha384,
                KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384
            )
        )
    {
        return Err(VerifyError::AlgorithmMismatch);
    }
    let public_key = spki.subject_public_key.as_bytes().ok_or(VerifyError::BadKey)?;
    ring::signature::UnparsedPublicKey::new(algorithm.ring_verifier(key), public_key)
        .verify(message, signature)
        .map_err(|_| VerifyError::BadSignature)
}

/// Why a software verification failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The public key is malformed or of an unsupported type.
    #[error("unsupported or malformed public key")]
    BadKey,
    /// The signature algorithm does not fit the key.
    #[error("signature algorithm does not match the key type")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (i, n) in KeyAlgorithm::NAMES.iter().enumerate() {
            let a: KeyAlgorithm = n.parse().unwrap();
            assert_eq!(a, KeyAlgorithm::ALL[i]);
            assert_eq!(a.name(), *n);
        }
        assert!("rsa-1024".parse::<KeyAlgorithm>().is_err());
    }

    #[test]
    fn pss_params_decode() {
        let id = SigningAlgorithm::RsaPssSha256.algorithm_identifier();
        assert!(id.parameters.is_some());
        assert_eq!(id.oid, rfc5912::ID_RSASSA_PSS);
    }

    #[test]
    fn ring_signature_verifies_through_spki() {
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let spki = crate::signer::pkcs11::ec_spki(KeyAlgorithm::EcdsaP256, kp.public_key().as_ref()).unwrap();
        let sig = kp.sign(&rng, b"hello").unwrap();
        verify_spki(&spki, SigningAlgorithm::EcdsaSha256, b"hello", sig.as_ref()).unwrap();
        assert_eq!(
            verify_spki(&spki, SigningAlgorithm::EcdsaSha256, b"other", sig.as_ref()),
            Err(VerifyError::BadSignature)
        );
    }
}
