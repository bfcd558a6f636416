//! `OCSPResponse` encoding (RFC 6960 §4.2): the `ResponseData` the core signs, and the
//! signed `BasicOCSPResponse` wrapped in an `OCSPResponse`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::{
    asn1::{BitString, GeneralizedTime, Null, OctetString},
    Decode, Encode,
};
use spki::AlgorithmIdentifierOwned;
use x509_cert::{
    ext::{pkix::CrlReason, Extension},
    Certificate,
};
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspResponse, OcspResponseStatus, ResponderId,
    ResponseBytes, ResponseData, RevokedInfo, SingleResponse, Version,
};

use crate::{request::ID_PKIX_OCSP_NONCE, OcspError};

/// id-pkix-ocsp-basic.
const ID_PKIX_OCSP_BASIC: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");

/// A certificate's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not revoked.
    Good,
    /// Revoked at `time`, with an RFC 5280 reason code.
    Revoked {
        /// revocationTime.
        time: SystemTime,
        /// CRLReason code, if known.
        reason: Option<u8>,
    },
    /// Never issued by this issuer.
    Unknown,
}

/// One `SingleResponse`.
#[derive(Debug, Clone)]
pub struct SingleAnswer {
    /// The CertID being answered (echoed from the request).
    pub cert_id: CertId,
    /// certStatus.
    pub status: Status,
    /// thisUpdate.
    pub this_update: SystemTime,
    /// nextUpdate.
    pub next_update: SystemTime,
}

fn time(t: SystemTime) -> Result<OcspGeneralizedTime, OcspError> {
    let secs = t.duration_since(UNIX_EPOCH).map_err(|_| OcspError::InternalError)?.as_secs();
    GeneralizedTime::from_unix_duration(Duration::from_secs(secs))
        .map(OcspGeneralizedTime)
        .map_err(|_| OcspError::InternalError)
}

fn reason(code: u8) -> Option<CrlReason> {
    Some(match code {
        0 => CrlReason::Unspecified,
        1 => CrlReason::KeyCompromise,
        2 => CrlReason::CaCompromise,
        3 => CrlReason::AffiliationChanged,
        4 => CrlReason::Superseded,
        5 => CrlReason::CessationOfOperation,
        6 => CrlReason::CertificateHold,
        8 => CrlReason::RemoveFromCRL,
        9 => CrlReason::PrivilegeWithdrawn,
        10 => CrlReason::AaCompromise,
        _ => return None,
    })
}

/// DER `ResponseData` (what the responder key signs). `responder_key_hash` is the SHA-1 of
/// the responder certificate's subjectPublicKey (responderID byKey).
pub fn response_data(
    responder_key_hash: &[u8],
    produced_at: SystemTime,
    answers: Vec<SingleAnswer>,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, OcspError> {
    let mut responses = Vec::with_capacity(answers.len());
    for a in answers {
        let cert_status = match a.status {
            Status::Good => CertStatus::Good(Null),
            Status::Unknown => CertStatus::Unknown(Null),
            Status::Revoked { time: at, reason: code } => CertStatus::Revoked(RevokedInfo {
                revocation_time: time(at)?,
                revocation_reason: code.filter(|c| *c != 0).and_then(reason),
            }),
        };
        responses.push(SingleResponse {
            cert_id: a.cert_id,
            cert_status,
            this_update: time(a.this_update)?,
            next_update: Some(time(a.next_update)?),
            single_extensions: None,
        });
    }
    let response_extensions = match nonce {
        Some(n) => {
            let value = OctetString::new(n).and_then(|o| o.to_der()).map_err(|_| OcspError::InternalError)?;
            Some(vec![Extension {
                extn_id: ID_PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(value).map_err(|_| OcspError::InternalError)?,
            }])
        }
        None => None,
    };
    let data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(OctetString::new(responder_key_hash).map_err(|_| OcspError::InternalError)?),
        produced_at: time(produced_at)?,
        responses,
        response_extensions,
    };
    data.to_der().map_err(|_| OcspError::InternalError)
}

/// The successful `OCSPResponse` around a signed `ResponseData`, carrying the delegated
/// responder's certificate.
pub fn signed_response(
    response_data_der: &[u8],
    signature_algorithm: &AlgorithmIdentifierOwned,
    signature: &[u8],
    responder_cert_der: &[u8],
) -> Result<Vec<u8>, OcspError> {
    let internal = |_| OcspError::InternalError;
    let basic = BasicOcspResponse {
        tbs_response_data: ResponseData::from_der(response_data_der).map_err(internal)?,
        signature_algorithm: signature_algorithm.clone(),
        signature: BitString::from_bytes(signature).map_err(internal)?,
        certs: Some(vec![Certificate::from_der(responder_cert_der).map_err(internal)?]),
    };
    let response = OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: ID_PKIX_OCSP_BASIC,
            response: OctetString::new(basic.to_der().map_err(internal)?).map_err(internal)?,
        }),
    };
    response.to_der().map_err(internal)
}
