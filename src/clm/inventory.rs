//! What the inventory shows of a certificate besides its ledger columns: key type and size and
//! signature algorithm, read from the DER.

use der::Decode;
use serde::Serialize;
use x509_cert::Certificate;

/// Key and signature of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertDetails {
    /// `rsa-2048`, `ec-p256`, `ed25519`, or the algorithm's OID.
    pub key: String,
    /// Signature algorithm name (`sha256WithRSAEncryption`, `ecdsa-with-SHA256`), or its OID.
    pub signature_algorithm: String,
}

/// Reads `der`'s key type and signature algorithm (`unknown` for what cannot be parsed).
pub fn details(der: &[u8]) -> CertDetails {
    let Ok(cert) = Certificate::from_der(der) else {
        return CertDetails { key: "unknown".into(), signature_algorithm: "unknown".into() };
    };
    let name = |oid: &const_oid::ObjectIdentifier| {
        const_oid::db::DB.by_oid(oid).map_or_else(|| oid.to_string(), str::to_owned)
    };
    CertDetails {
        key: key_type(&cert.tbs_certificate.subject_public_key_info),
        signature_algorithm: name(&cert.signature_algorithm.oid),
    }
}

/// `rsa-<bits>`, `ec-<curve>`, `ed25519`, `ed448`, else the key algorithm's OID.
pub fn key_type(spki: &spki::SubjectPublicKeyInfoOwned) -> String {
    use const_oid::db::{rfc5912, rfc8410};
    let oid = spki.algorithm.oid;
    if oid == rfc5912::RSA_ENCRYPTION {
        return crate::signer::rsa_modulus_bits(spki.subject_public_key.raw_bytes())
            .map_or_else(|| "rsa".into(), |bits| format!("rsa-{bits}"));
    }
    if oid == rfc5912::ID_EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok());
        return match curve {
            Some(c) if c == rfc5912::SECP_256_R_1 => "ec-p256".into(),
            Some(c) if c == rfc5912::SECP_384_R_1 => "ec-p384".into(),
            Some(c) if c == rfc5912::SECP_521_R_1 => "ec-p521".into(),
            Some(c) => format!("ec-{c}"),
            None => "ec".into(),
        };
    }
    if oid == rfc8410::ID_ED_25519 {
        return "ed25519".into();
    }
    if oid == rfc8410::ID_ED_448 {
        return "ed448".into();
    }
    oid.to_string()
}
