//! What the inventory keeps of a certificate privca did not issue, read from its DER: names,
//! serial, key type and size, signature algorithm, validity and SHA-256 fingerprint, plus the
//! parts the findings need (the raw names, the public key and the signed part).

use const_oid::{db::rfc5912, ObjectIdentifier};
use der::{Decode, Encode};
use x509_cert::{
    ext::pkix::{name::GeneralName, BasicConstraints, SubjectAltName},
    Certificate,
};

use crate::ledger::{ExternalCertificate, ExternalSource};

/// A parsed certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// SHA-256 of the DER, lower-case hex.
    pub fingerprint_sha256: String,
    /// Subject, RFC 4514 string.
    pub subject: String,
    /// Issuer, RFC 4514 string.
    pub issuer: String,
    /// Subject Name, DER (compared byte for byte when building paths).
    pub subject_der: Vec<u8>,
    /// Issuer Name, DER.
    pub issuer_der: Vec<u8>,
    /// Serial number, lower-case hex of its DER content octets.
    pub serial: String,
    /// Subject alternative names as `dns:…`, `ip:…`, `email:…`, `uri:…`.
    pub sans: Vec<String>,
    /// Key type and size: `rsa-2048`, `ec-p256`, `ed25519`, …
    pub key_type: String,
    /// RSA modulus size in bits (None for other keys).
    pub rsa_bits: Option<usize>,
    /// Signature algorithm name (`sha256WithRSAEncryption`, `ecdsa-with-SHA256`, …).
    pub signature_algorithm: String,
    /// Signature algorithm OID.
    pub signature_oid: ObjectIdentifier,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
    /// TBSCertificate, DER (what the signature covers).
    pub tbs_der: Vec<u8>,
    /// The signature value.
    pub signature: Vec<u8>,
    /// signatureAlgorithm parameters, DER (RSASSA-PSS needs them).
    pub signature_params: Vec<u8>,
}

/// Why a certificate could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a DER X.509 certificate: {0}")]
pub struct CertParseError(#[from] der::Error);

impl CertInfo {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, CertParseError> {
        let cert = Certificate::from_der(der)?;
        let tbs = &cert.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        let (key_type, rsa_bits) = key_type(spki);
        let mut sans = Vec::new();
        let mut is_ca = false;
        for ext in tbs.extensions.iter().flatten() {
            if ext.extn_id == rfc5912::ID_CE_SUBJECT_ALT_NAME {
                let names = SubjectAltName::from_der(ext.extn_value.as_bytes())?;
                sans.extend(names.0.iter().filter_map(san_string));
            } else if ext.extn_id == rfc5912::ID_CE_BASIC_CONSTRAINTS {
                is_ca = BasicConstraints::from_der(ext.extn_value.as_bytes())?.ca;
            }
        }
        let signature_oid = cert.signature_algorithm.oid;
        Ok(CertInfo {
            der: der.to_vec(),
            fingerprint_sha256: hex::encode(ring::digest::digest(&ring::digest::SHA256, der)),
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            subject_der: tbs.subject.to_der()?,
            issuer_der: tbs.issuer.to_der()?,
            serial: hex::encode(tbs.serial_number.as_bytes()),
            sans,
            key_type,
            rsa_bits,
            signature_algorithm: algorithm_name(signature_oid),
            signature_oid,
            not_before: tbs.validity.not_before.to_unix_duration().as_secs() as i64,
            not_after: tbs.validity.not_after.to_unix_duration().as_secs() as i64,
            is_ca,
            spki_der: spki.to_der()?,
            tbs_der: tbs.to_der()?,
            signature: cert.signature.raw_bytes().to_vec(),
            signature_params: cert
                .signature_algorithm
                .parameters
                .as_ref()
                .map(|p| p.to_der())
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// Issuer and subject are the same name (a root, or a self-signed leaf).
    pub fn self_issued(&self) -> bool {
        self.subject_der == self.issuer_der
    }

    /// The inventory row of this certificate (owner and tier as given).
    pub fn external(&self, source: ExternalSource, owner: &str, tier: &str) -> ExternalCertificate {
        ExternalCertificate {
            fingerprint_sha256: self.fingerprint_sha256.clone(),
            source,
            subject: self.subject.clone(),
            issuer: self.issuer.clone(),
            serial: self.serial.clone(),
            sans: self.sans.clone(),
            key_type: self.key_type.clone(),
            signature_algorithm: self.signature_algorithm.clone(),
            not_before: self.not_before,
            not_after: self.not_after,
            owner: owner.to_owned(),
            tier: tier.to_owned(),
            der: self.der.clone(),
        }
    }
}

/// `dns:…`, `ip:…`, `email:…` or `uri:…`, as privca stores its own certificates' names.
fn san_string(name: &GeneralName) -> Option<String> {
    match name {
        GeneralName::DnsName(n) => Some(format!("dns:{}", n.as_str())),
        GeneralName::Rfc822Name(n) => Some(format!("email:{}", n.as_str())),
        GeneralName::UniformResourceIdentifier(n) => Some(format!("uri:{}", n.as_str())),
        GeneralName::IpAddress(o) => {
            let b = o.as_bytes();
            let ip: std::net::IpAddr = match b.len() {
                4 => <[u8; 4]>::try_from(b).ok()?.into(),
                16 => <[u8; 16]>::try_from(b).ok()?.into(),
                _ => return None,
            };
            Some(format!("ip:{ip}"))
        }
        _ => None,
    }
}

const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");
const DSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");

/// `rsa-<bits>`, `ec-p256|p384|p521`, `ed25519`, `ed448`, `dsa`, or `unknown-<oid>`.
fn key_type(spki: &spki::SubjectPublicKeyInfoOwned) -> (String, Option<usize>) {
    let oid = spki.algorithm.oid;
    if oid == rfc5912::RSA_ENCRYPTION || oid == rfc5912::ID_RSASSA_PSS {
        let bits = crate::signer::rsa_modulus_bits(spki.subject_public_key.raw_bytes());
        return (bits.map_or("rsa".into(), |b| format!("rsa-{b}")), bits);
    }
    if oid == rfc5912::ID_EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        let name = match curve {
            Some(c) if c == SECP256R1 => "ec-p256".to_owned(),
            Some(c) if c == SECP384R1 => "ec-p384".to_owned(),
            Some(c) if c == SECP521R1 => "ec-p521".to_owned(),
            Some(c) => format!("ec-{c}"),
            None => "ec".to_owned(),
        };
        return (name, None);
    }
    let name = if oid == const_oid::db::rfc8410::ID_ED_25519 {
        "ed25519".to_owned()
    } else if oid == ED448 {
        "ed448".to_owned()
    } else if oid == DSA {
        "dsa".to_owned()
    } else {
        format!("unknown-{oid}")
    };
    (name, None)
}

/// The usual name of a signature algorithm, or its dotted OID.
fn algorithm_name(oid: ObjectIdentifier) -> String {
    const_oid::db::DB.by_oid(&oid).map_or_else(|| oid.to_string(), str::to_owned)
}

/// True for the SHA-1 (and older) signature algorithms.
pub fn weak_hash(oid: ObjectIdentifier) -> bool {
    const MD5_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.4");
    const MD2_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.2");
    const ECDSA_WITH_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");
    const DSA_WITH_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.3");
    [rfc5912::SHA_1_WITH_RSA_ENCRYPTION, MD5_WITH_RSA, MD2_WITH_RSA, ECDSA_WITH_SHA1, DSA_WITH_SHA1].contains(&oid)
}
