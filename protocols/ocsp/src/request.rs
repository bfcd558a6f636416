//! `OCSPRequest` parsing (RFC 6960 §4.1) into the questions the core answers.

use const_oid::{db::rfc5912, ObjectIdentifier};
use der::{asn1::OctetString, Decode};
use x509_ocsp::{CertId, OcspRequest};

use crate::OcspError;

/// id-pkix-ocsp-nonce (RFC 9654).
pub const ID_PKIX_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// Largest nonce accepted (RFC 9654 §2.1).
pub const MAX_NONCE: usize = 128;
/// Most CertIDs answered in one request.
pub const MAX_REQUESTS: usize = 64;

/// Hash algorithm of a CertID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1 (what most clients send).
    Sha1,
    /// SHA-256 (RFC 9919).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [HashAlgorithm; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        match oid {
            o if o == rfc5912::ID_SHA_1 => Some(Self::Sha1),
            o if o == rfc5912::ID_SHA_256 => Some(Self::Sha256),
            o if o == rfc5912::ID_SHA_384 => Some(Self::Sha384),
            o if o == rfc5912::ID_SHA_512 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Stable name (`sha1`, `sha256`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// The `AlgorithmIdentifier` OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => rfc5912::ID_SHA_1,
            Self::Sha256 => rfc5912::ID_SHA_256,
            Self::Sha384 => rfc5912::ID_SHA_384,
            Self::Sha512 => rfc5912::ID_SHA_512,
        }
    }
}

/// One question: the status of the certificate a CertID names.
#[derive(Debug, Clone)]
pub struct CertRequest {
    /// The CertID as received (echoed in the answer).
    pub cert_id: CertId,
    /// Its hash algorithm.
    pub hash: HashAlgorithm,
    /// issuerNameHash.
    pub issuer_name_hash: Vec<u8>,
    /// issuerKeyHash.
    pub issuer_key_hash: Vec<u8>,
    /// Serial number content octets.
    pub serial: Vec<u8>,
}

/// A parsed request.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    /// The CertIDs asked about (at least one).
    pub requests: Vec<CertRequest>,
    /// The nonce, if the client sent one.
    pub nonce: Option<Vec<u8>>,
}

/// Parses a DER `OCSPRequest`. Anything RFC 6960 / RFC 9654 does not allow is
/// `MalformedRequest`: undecodable input, no CertID, too many, an unsupported hash, a nonce
/// of 0 or more than 128 octets, an unknown critical extension.
pub fn parse(der: &[u8]) -> Result<ParsedRequest, OcspError> {
    let request = OcspRequest::from_der(der).map_err(|_| OcspError::MalformedRequest)?;
    let tbs = request.tbs_request;
    if tbs.request_list.is_empty() || tbs.request_list.len() > MAX_REQUESTS {
        return Err(OcspError::MalformedRequest);
    }
    let mut nonce = None;
    for ext in tbs.request_extensions.iter().flatten() {
        if ext.extn_id == ID_PKIX_OCSP_NONCE {
            let value = ext.extn_value.as_bytes();
            // RFC 9654: the extension value is a DER OCTET STRING; tolerate raw bytes.
            let bytes = OctetString::from_der(value).map(|o| o.as_bytes().to_vec()).unwrap_or_else(|_| value.to_vec());
            if bytes.is_empty() || bytes.len() > MAX_NONCE {
                return Err(OcspError::MalformedRequest);
            }
            nonce = Some(bytes);
        } else if ext.critical {
            return Err(OcspError::MalformedRequest);
        }
    }
    let mut requests = Vec::with_capacity(tbs.request_list.len());
    for r in tbs.request_list {
        if r.single_request_extensions.iter().flatten().any(|e| e.critical) {
            return Err(OcspError::MalformedRequest);
        }
        let id = r.req_cert;
        let hash = HashAlgorithm::from_oid(id.hash_algorithm.oid).ok_or(OcspError::MalformedRequest)?;
        requests.push(CertRequest {
            hash,
            issuer_name_hash: id.issuer_name_hash.as_bytes().to_vec(),
            issuer_key_hash: id.issuer_key_hash.as_bytes().to_vec(),
            serial: id.serial_number.as_bytes().to_vec(),
            cert_id: id,
        });
    }
    Ok(ParsedRequest { requests, nonce })
}
