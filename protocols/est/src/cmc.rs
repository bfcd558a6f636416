//! `/fullcmc` (RFC 7030 §4.3, RFC 5272): a Full PKI Request is a CMS SignedData whose content
//! is a `PKIData` holding exactly one PKCS#10 request (`TaggedCertificationRequest`), signed by
//! the key in that request. privca answers with a Full PKI Response: a SignedData (signed in the
//! HSM by the label's issuing CA) over a `PKIResponse` whose control sequence carries a
//! `CMCStatusInfoV2` — `success` with the certificate in the SignedData's certificates,
//! `pending` (HTTP 202) while an operator has to approve, or `failed` with a `CMCFailInfo`
//! (HTTP 4xx/5xx, §4.3.2). Control attributes, CRMF requests, nested CMS content and other
//! messages are not supported and are refused with `failed`/`badRequest` naming what was found.

use const_oid::{
    db::{
        rfc5911::{ID_MESSAGE_DIGEST, ID_SIGNED_DATA},
        rfc5912::{ID_CCT_PKI_DATA, ID_CCT_PKI_RESPONSE, ID_CMC_STATUS_INFO_V_2},
    },
    ObjectIdentifier,
};
use der::{
    asn1::{OctetString, SetOfVec},
    Any, Decode, Encode, Sequence, Tag, Tagged,
};
use x509_cert::request::CertReq;

use cms::{content_info::ContentInfo, signed_data::SignedData};

use crate::{
    backend::{EnrollOutcome, EnrollRequest, EstBackend, Identity},
    error::EstError,
    signed,
};

/// `TaggedAttribute` (RFC 5272 §3.2.1.1).
#[derive(Debug, Clone, Sequence)]
struct TaggedAttribute {
    body_part_id: u32,
    attr_type: ObjectIdentifier,
    attr_values: SetOfVec<Any>,
}

/// `TaggedCertificationRequest` (§3.2.1.2.1); the PKCS#10 stays raw for the core to check.
#[derive(Debug, Clone, Sequence)]
struct TaggedCertificationRequest {
    body_part_id: u32,
    certification_request: Any,
}

/// `PKIData` (§3.2.1).
#[derive(Debug, Clone, Sequence)]
struct PkiData {
    control_sequence: Vec<TaggedAttribute>,
    req_sequence: Vec<Any>,
    cms_sequence: Vec<Any>,
    other_msg_sequence: Vec<Any>,
}

/// `PKIResponse` (§4.2).
#[derive(Debug, Clone, Sequence)]
struct PkiResponse {
    control_sequence: Vec<TaggedAttribute>,
    cms_sequence: Vec<Any>,
    other_msg_sequence: Vec<Any>,
}

/// `CMCStatusInfoV2` (§6.1.1) with `bodyList` as plain body part ids and `otherStatusInfo`
/// only as `failInfo`.
#[derive(Debug, Clone, Sequence)]
struct CmcStatusInfoV2 {
    cmc_status: u8,
    body_list: Vec<u32>,
    #[asn1(optional = "true")]
    status_string: Option<String>,
    #[asn1(optional = "true")]
    fail_info: Option<u8>,
}

/// `CMCStatus` values used here.
const SUCCESS: u8 = 0;
const FAILED: u8 = 2;
const PENDING: u8 = 3;

/// `CMCFailInfo` (§6.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FailInfo {
    /// Unrecognized or unsupported algorithm.
    BadAlg = 0,
    /// Integrity check failed (the request's signature).
    BadMessageCheck = 1,
    /// Transaction not permitted or supported.
    BadRequest = 2,
    /// Identity could not be verified or is not allowed.
    BadIdentity = 7,
    /// Internal CA error.
    InternalCaError = 11,
}

/// Id privca gives its own status attribute in the response.
const RESPONSE_BODY_PART: u32 = 1;

/// An answer: HTTP status and the DER Full PKI Response.
pub type CmcAnswer = (axum::http::StatusCode, Vec<u8>);

/// Handles one Full PKI Request (DER `ContentInfo`). Undecodable input is an HTTP 400 without
/// a CMC body; everything after decoding is answered with a signed Full PKI Response.
pub async fn handle<B: EstBackend>(
    backend: &B,
    label: &str,
    identity: Identity,
    der: &[u8],
) -> Result<CmcAnswer, EstError> {
    let request = parse(der)?;
    let (status, cmc_status, fail, text, certs) = match check(&request) {
        Err((fail, text)) => (fail_status(fail), FAILED, Some(fail), Some(text), Vec::new()),
        Ok((body_part, csr_der)) => {
            let enroll = EnrollRequest { label: label.to_owned(), identity, csr_der, renews: None };
            let _ = body_part;
            match backend.enroll(enroll).await {
                Ok(EnrollOutcome::Issued(cert)) => (axum::http::StatusCode::OK, SUCCESS, None, None, vec![cert]),
                Ok(EnrollOutcome::Pending) => {
                    (axum::http::StatusCode::ACCEPTED, PENDING, None, Some("awaiting approval".to_owned()), Vec::new())
                }
                Err(e) => {
                    let fail = match &e {
                        EstError::Forbidden(_) | EstError::Unauthorized { .. } => FailInfo::BadIdentity,
                        EstError::Internal(_) | EstError::Unavailable | EstError::Busy => FailInfo::InternalCaError,
                        _ => FailInfo::BadRequest,
                    };
                    if let EstError::Internal(detail) = &e {
                        tracing::error!(detail = %detail, "EST fullcmc enrollment failed inside privca");
                    }
                    (e.status(), FAILED, Some(fail), Some(e.to_string()), Vec::new())
                }
            }
        }
    };
    let body_parts = request.body_part.map(|b| vec![b]).unwrap_or_else(|| vec![0]);
    let info =
        CmcStatusInfoV2 { cmc_status, body_list: body_parts, status_string: text, fail_info: fail.map(|f| f as u8) };
    let response = respond(backend, label, &info, certs).await?;
    Ok((status, response))
}

fn fail_status(fail: FailInfo) -> axum::http::StatusCode {
    match fail {
        FailInfo::InternalCaError => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        FailInfo::BadIdentity => axum::http::StatusCode::FORBIDDEN,
        _ => axum::http::StatusCode::BAD_REQUEST,
    }
}

/// A decoded Full PKI Request.
struct Request {
    signed: SignedData,
    content: Vec<u8>,
    data: PkiData,
    /// bodyPartID of the PKCS#10 request, once found.
    body_part: Option<u32>,
}

fn parse(der: &[u8]) -> Result<Request, EstError> {
    let bad = |what: &str| EstError::bad(format!("not a Full PKI Request: {what}"));
    let info = ContentInfo::from_der(der).map_err(|_| bad("no CMS ContentInfo"))?;
    if info.content_type != ID_SIGNED_DATA {
        return Err(bad("the ContentInfo is not SignedData"));
    }
    let signed: SignedData = info.content.decode_as().map_err(|_| bad("malformed SignedData"))?;
    if signed.encap_content_info.econtent_type != ID_CCT_PKI_DATA {
        return Err(bad("the content type is not id-cct-PKIData"));
    }
    let content = signed
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| bad("no PKIData content"))?
        .decode_as::<OctetString>()
        .map_err(|_| bad("the PKIData is not in an OCTET STRING"))?
        .into_bytes();
    let data = PkiData::from_der(&content).map_err(|_| bad("malformed PKIData"))?;
    let body_part = data.req_sequence.first().and_then(|r| tcr(r).map(|t| t.body_part_id));
    Ok(Request { signed, content, data, body_part })
}

/// What the checks after decoding find: `(bodyPartID, PKCS#10 DER)`, or the `CMCFailInfo` and
/// text of a `failed` answer.
pub type Checked = Result<(u32, Vec<u8>), (FailInfo, String)>;

/// Decodes and checks a Full PKI Request without answering it: `Err` where [`handle`] answers
/// a plain HTTP 400, else what the checks found. The entry point of the `est_body` fuzz target.
#[doc(hidden)]
pub fn decode_request(der: &[u8]) -> Result<Checked, EstError> {
    Ok(check(&parse(der)?))
}

/// `tcr [0] TaggedCertificationRequest` (IMPLICIT, so the [0] replaces the SEQUENCE tag).
fn tcr(request: &Any) -> Option<TaggedCertificationRequest> {
    match request.tag() {
        Tag::ContextSpecific { constructed: true, number } if number.value() == 0 => {
            Any::new(Tag::Sequence, request.value()).ok()?.decode_as().ok()
        }
        _ => None,
    }
}

/// The checks after decoding: `(bodyPartID, PKCS#10 DER)` or why it is refused.
fn check(r: &Request) -> Checked {
    if let Some(attr) = r.data.control_sequence.first() {
        return Err((FailInfo::BadRequest, format!("control attribute {} is not supported", attr.attr_type)));
    }
    if !r.data.cms_sequence.is_empty() || !r.data.other_msg_sequence.is_empty() {
        return Err((FailInfo::BadRequest, "nested CMS content and other messages are not supported".into()));
    }
    let [request] = r.data.req_sequence.as_slice() else {
        return Err((FailInfo::BadRequest, "exactly one certification request is supported".into()));
    };
    let tcr = tcr(request).ok_or((FailInfo::BadRequest, "only PKCS#10 requests (tcr) are supported".to_owned()))?;
    let csr_der =
        tcr.certification_request.to_der().map_err(|_| (FailInfo::BadRequest, "malformed PKCS#10".to_owned()))?;
    let csr = CertReq::from_der(&csr_der).map_err(|_| (FailInfo::BadRequest, "malformed PKCS#10".to_owned()))?;
    verify_signature(r, &csr)?;
    Ok((tcr.body_part_id, csr_der))
}

/// The SignedData must be signed by the key of the PKCS#10 it carries (§3.2.1.2.1 POP), with
/// signed attributes whose messageDigest is the digest of the PKIData.
fn verify_signature(r: &Request, csr: &CertReq) -> Result<(), (FailInfo, String)> {
    let fail = |text: &str| (FailInfo::BadMessageCheck, text.to_owned());
    let [signer] = r.signed.signer_infos.0.as_slice() else {
        return Err(fail("the request must carry exactly one signature"));
    };
    let attrs = signer.signed_attrs.as_ref().ok_or_else(|| fail("the signature has no signed attributes"))?;
    let digest_alg = match signer.digest_alg.oid {
        const_oid::db::rfc5912::ID_SHA_256 => &ring::digest::SHA256,
        const_oid::db::rfc5912::ID_SHA_384 => &ring::digest::SHA384,
        const_oid::db::rfc5912::ID_SHA_512 => &ring::digest::SHA512,
        _ => return Err((FailInfo::BadAlg, format!("digest algorithm {} is not supported", signer.digest_alg.oid))),
    };
    let digest = ring::digest::digest(digest_alg, &r.content);
    let message_digest = attrs
        .iter()
        .find(|a| a.oid == ID_MESSAGE_DIGEST)
        .and_then(|a| a.values.iter().next())
        .and_then(|v| v.decode_as::<OctetString>().ok())
        .ok_or_else(|| fail("no messageDigest attribute"))?;
    if message_digest.as_bytes() != digest.as_ref() {
        return Err(fail("messageDigest does not match the PKIData"));
    }
    let spki = &csr.info.public_key;
    let key = spki.subject_public_key.as_bytes().ok_or_else(|| fail("unusable public key"))?;
    let algorithm: &dyn ring::signature::VerificationAlgorithm =
        match (signer.signature_algorithm.oid, digest_alg.output_len()) {
            (const_oid::db::rfc5912::ECDSA_WITH_SHA_256, _) => &ring::signature::ECDSA_P256_SHA256_ASN1,
            (const_oid::db::rfc5912::ECDSA_WITH_SHA_384, _) => &ring::signature::ECDSA_P384_SHA384_ASN1,
            (const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION, _) | (const_oid::db::rfc5912::RSA_ENCRYPTION, 32) => {
                &ring::signature::RSA_PKCS1_2048_8192_SHA256
            }
            (const_oid::db::rfc5912::SHA_384_WITH_RSA_ENCRYPTION, _) | (const_oid::db::rfc5912::RSA_ENCRYPTION, 48) => {
                &ring::signature::RSA_PKCS1_2048_8192_SHA384
            }
            (const_oid::db::rfc5912::SHA_512_WITH_RSA_ENCRYPTION, _) | (const_oid::db::rfc5912::RSA_ENCRYPTION, 64) => {
                &ring::signature::RSA_PKCS1_2048_8192_SHA512
            }
            (oid, _) => return Err((FailInfo::BadAlg, format!("signature algorithm {oid} is not supported"))),
        };
    let signed_attrs = attrs.to_der().map_err(|_| fail("malformed signed attributes"))?;
    ring::signature::UnparsedPublicKey::new(algorithm, key)
        .verify(&signed_attrs, signer.signature.as_bytes())
        .map_err(|_| fail("the request is not signed by the key of its PKCS#10 request"))
}

/// A signed Full PKI Response carrying `info` and `certs` (the issued certificate).
async fn respond<B: EstBackend>(
    backend: &B,
    label: &str,
    info: &CmcStatusInfoV2,
    certs: Vec<Vec<u8>>,
) -> Result<Vec<u8>, EstError> {
    let internal = |e: der::Error| EstError::Internal(format!("CMC response encoding: {e}"));
    let mut values = SetOfVec::new();
    values.insert(Any::encode_from(info).map_err(internal)?).map_err(internal)?;
    let response = PkiResponse {
        control_sequence: vec![TaggedAttribute {
            body_part_id: RESPONSE_BODY_PART,
            attr_type: ID_CMC_STATUS_INFO_V_2,
            attr_values: values,
        }],
        cms_sequence: Vec::new(),
        other_msg_sequence: Vec::new(),
    }
    .to_der()
    .map_err(internal)?;

    let signed = signed::sign(backend, label, ID_CCT_PKI_RESPONSE, response, &certs).await?;
    ContentInfo { content_type: ID_SIGNED_DATA, content: Any::encode_from(&signed).map_err(internal)? }
        .to_der()
        .map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_info_encodes_as_rfc5272() {
        let info = CmcStatusInfoV2 {
            cmc_status: FAILED,
            body_list: vec![1],
            status_string: Some("no".into()),
            fail_info: Some(FailInfo::BadRequest as u8),
        };
        let hex: String = info.to_der().unwrap().iter().map(|b| format!("{b:02x}")).collect();
        // SEQUENCE { INTEGER 2, SEQUENCE { INTEGER 1 }, UTF8String "no", INTEGER 2 }
        assert_eq!(hex, "300f02010230030201010c026e6f020102");
    }

    #[test]
    fn garbage_is_a_plain_400() {
        assert!(matches!(parse(b"garbage"), Err(EstError::BadRequest(_))));
        assert!(matches!(decode_request(b"garbage"), Err(EstError::BadRequest(_))));
    }
}
