//! What the inventory shows of a certificate besides its ledger columns: key type and size and
//! signature algorithm, read from the DER (by the same reader discovery uses).

use serde::Serialize;

use super::discover::certinfo::CertInfo;

/// Key and signature of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertDetails {
    /// `rsa-2048`, `ec-p256`, `ed25519`, …
    pub key: String,
    /// Signature algorithm name (`sha256WithRSAEncryption`, `ecdsa-with-SHA256`), or its OID.
    pub signature_algorithm: String,
}

/// Reads `der`'s key type and signature algorithm (`unknown` for what cannot be parsed).
pub fn details(der: &[u8]) -> CertDetails {
    match CertInfo::from_der(der) {
        Ok(c) => CertDetails { key: c.key_type, signature_algorithm: c.signature_algorithm },
        Err(_) => CertDetails { key: "unknown".into(), signature_algorithm: "unknown".into() },
    }
}
