//! Body encodings (RFC 8951 §3): base64 of DER in both directions, whatever the
//! Content-Transfer-Encoding says; certs-only PKCS#7 (a degenerate CMS SignedData) for
//! `/cacerts` and enrollment answers; media-type checks.

use axum::http::{header, HeaderMap};
use base64ct::{Base64, Base64Unpadded, Encoding};
use cms::{
    cert::CertificateChoices,
    content_info::{CmsVersion, ContentInfo},
    signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos},
};
use const_oid::db::rfc5911::{ID_DATA, ID_SIGNED_DATA};
use der::{asn1::SetOfVec, Any, Decode, Encode};
use x509_cert::Certificate;

use crate::error::EstError;

/// `application/pkcs7-mime; smime-type=certs-only` (enroll answers).
pub const CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";
/// `application/pkcs7-mime` (`/cacerts`).
pub const PKCS7_MIME: &str = "application/pkcs7-mime";
/// `application/csrattrs`.
pub const CSRATTRS: &str = "application/csrattrs";
/// `application/pkcs10`.
pub const PKCS10: &str = "application/pkcs10";

/// Decodes a request body: base64 with any line breaks or none (and PEM armour, which some
/// clients add), padding optional. Anything else is a 400.
pub fn decode_body(body: &[u8]) -> Result<Vec<u8>, EstError> {
    let text = std::str::from_utf8(body).map_err(|_| EstError::bad("the body is not base64 text"))?;
    let b64: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if b64.is_empty() {
        return Err(EstError::bad("empty body"));
    }
    Base64::decode_vec(&b64)
        .or_else(|_| Base64Unpadded::decode_vec(b64.trim_end_matches('=')))
        .map_err(|_| EstError::bad("the body is not valid base64"))
}

/// Encodes DER as base64 in lines of 64 characters, each ended by LF: RFC 8951
/// receivers ignore the whitespace, and line-oriented tools (`base64 -d`) reject CR.
pub fn encode_body(der: &[u8]) -> String {
    let b64 = Base64::encode_string(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 32 + 2);
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// A certs-only CMC Simple PKI Response (RFC 5272 §4.1) holding `certs` (DER).
pub fn certs_only(certs: &[Vec<u8>]) -> Result<Vec<u8>, EstError> {
    let internal = |e: der::Error| EstError::Internal(format!("certs-only encoding: {e}"));
    let mut set = SetOfVec::new();
    for der in certs {
        let cert = Certificate::from_der(der).map_err(internal)?;
        set.insert(CertificateChoices::Certificate(cert)).map_err(internal)?;
    }
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo { econtent_type: ID_DATA, econtent: None },
        certificates: Some(CertificateSet(set)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    let content = Any::encode_from(&signed).map_err(internal)?;
    ContentInfo { content_type: ID_SIGNED_DATA, content }.to_der().map_err(internal)
}

/// The media type of the request (lowercase, without parameters), if any.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// 415 unless the request's media type is `expected` (parameters and case ignored).
pub fn require_media_type(headers: &HeaderMap, expected: &str) -> Result<(), EstError> {
    match media_type(headers) {
        Some(t) if t == expected => Ok(()),
        Some(t) => Err(EstError::UnsupportedMediaType(format!("expected Content-Type {expected}, got {t}"))),
        None => Err(EstError::UnsupportedMediaType(format!("expected Content-Type {expected}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_decode_with_any_wrapping_and_without_padding() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x05];
        let wrapped = encode_body(&der);
        assert_eq!(decode_body(wrapped.as_bytes()).unwrap(), der);
        assert_eq!(decode_body(b"MAMCAQU=").unwrap(), der);
        assert_eq!(decode_body(b"MAMC\r\n AQU").unwrap(), der);
        assert_eq!(decode_body(b"-----BEGIN X-----\nMAMCAQU=\n-----END X-----\n").unwrap(), der);
        assert!(decode_body(b"").is_err());
        assert!(decode_body(b"not base64 at all!").is_err());
        assert!(decode_body(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn output_lines_are_at_most_64_characters() {
        let body = encode_body(&[7u8; 200]);
        assert!(body.lines().all(|l| l.len() <= 64));
        assert!(body.ends_with('\n') && !body.contains('\r'));
    }

    #[test]
    fn media_types_ignore_case_and_parameters() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "Application/PKCS10; charset=utf-8".parse().unwrap());
        assert!(require_media_type(&h, PKCS10).is_ok());
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(require_media_type(&h, PKCS10).unwrap_err().status(), 415);
        assert_eq!(require_media_type(&HeaderMap::new(), PKCS10).unwrap_err().status(), 415);
    }
}
