//! `OCSPResponse` encoding (RFC 6960 §4.2): the `ResponseData` the core signs, and the
//! signed `BasicOCSPResponse` wrapped in an `OCSPResponse`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::{
    asn1::{BitString, GeneralizedTime, Null, OctetString},
    Any, Encode, Tag, TagNumber,
};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::{pkix::CrlReason, Extension};
use x509_ocsp::{
    CertId, CertStatus, OcspGeneralizedTime, OcspResponse, OcspResponseStatus, ResponderId, ResponseBytes,
    ResponseData, RevokedInfo, SingleResponse, Version,
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
/// responder's certificate. Both DER inputs are the server's own encodings and are spliced in
/// as they are (this runs for every response the pre-signer refreshes).
pub fn signed_response(
    response_data_der: &[u8],
    signature_algorithm: &AlgorithmIdentifierOwned,
    signature: &[u8],
    responder_cert_der: &[u8],
) -> Result<Vec<u8>, OcspError> {
    let internal = |_| OcspError::InternalError;
    let algorithm = signature_algorithm.to_der().map_err(internal)?;
    let signature = BitString::from_bytes(signature).and_then(|b| b.to_der()).map_err(internal)?;
    let certs = tlv(Tag::Sequence, &[responder_cert_der])?;
    let certs = tlv(Tag::ContextSpecific { constructed: true, number: TagNumber::N0 }, &[&certs])?;
    let basic = tlv(Tag::Sequence, &[response_data_der, &algorithm, &signature, &certs])?;
    let bytes =
        ResponseBytes { response_type: ID_PKIX_OCSP_BASIC, response: OctetString::new(basic).map_err(internal)? };
    OcspResponse { response_status: OcspResponseStatus::Successful, response_bytes: Some(bytes) }
        .to_der()
        .map_err(internal)
}

/// `tag` around the concatenated DER `parts` (encoded by `der` as they are).
fn tlv(tag: Tag, parts: &[&[u8]]) -> Result<Vec<u8>, OcspError> {
    Any::new(tag, parts.concat()).and_then(|any| any.to_der()).map_err(|_| OcspError::InternalError)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use der::{asn1::UtcTime, Decode};
    use spki::SubjectPublicKeyInfoOwned;
    use x509_cert::{
        certificate::TbsCertificate, name::Name, serial_number::SerialNumber, time::Validity, Certificate,
    };

    use x509_ocsp::BasicOcspResponse;

    use super::*;

    fn certificate() -> Certificate {
        let alg = AlgorithmIdentifierOwned { oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256, parameters: None };
        let name = Name::from_str("CN=OCSP responder,O=privca test").unwrap();
        let at = |s| x509_cert::time::Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(s)).unwrap());
        Certificate {
            tbs_certificate: TbsCertificate {
                version: x509_cert::Version::V3,
                serial_number: SerialNumber::new(&[0x12, 0x34]).unwrap(),
                signature: alg.clone(),
                issuer: name.clone(),
                validity: Validity { not_before: at(1_700_000_000), not_after: at(1_800_000_000) },
                subject: name,
                subject_public_key_info: SubjectPublicKeyInfoOwned {
                    algorithm: AlgorithmIdentifierOwned {
                        oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
                        parameters: None,
                    },
                    subject_public_key: BitString::from_bytes(&[4; 65]).unwrap(),
                },
                issuer_unique_id: None,
                subject_unique_id: None,
                extensions: None,
            },
            signature_algorithm: alg,
            signature: BitString::from_bytes(&[7; 70]).unwrap(),
        }
    }

    #[test]
    fn the_spliced_response_equals_the_typed_encoding() {
        let cert = certificate();
        let answer = SingleAnswer {
            cert_id: CertId {
                hash_algorithm: AlgorithmIdentifierOwned { oid: const_oid::db::rfc5912::ID_SHA_1, parameters: None },
                issuer_name_hash: OctetString::new([1; 20]).unwrap(),
                issuer_key_hash: OctetString::new([2; 20]).unwrap(),
                serial_number: SerialNumber::new(&[0x01, 0x02, 0x03]).unwrap(),
            },
            status: Status::Revoked { time: UNIX_EPOCH + Duration::from_secs(1_750_000_000), reason: Some(1) },
            this_update: UNIX_EPOCH + Duration::from_secs(1_750_000_100),
            next_update: UNIX_EPOCH + Duration::from_secs(1_750_086_500),
        };
        let data =
            response_data(&[3; 20], UNIX_EPOCH + Duration::from_secs(1_750_000_100), vec![answer], Some(b"nonce"))
                .unwrap();
        let alg = AlgorithmIdentifierOwned { oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256, parameters: None };
        let signature = [9u8; 71];
        let spliced = signed_response(&data, &alg, &signature, &cert.to_der().unwrap()).unwrap();

        let basic = BasicOcspResponse {
            tbs_response_data: ResponseData::from_der(&data).unwrap(),
            signature_algorithm: alg,
            signature: BitString::from_bytes(&signature).unwrap(),
            certs: Some(vec![cert]),
        };
        let typed = OcspResponse {
            response_status: OcspResponseStatus::Successful,
            response_bytes: Some(ResponseBytes {
                response_type: ID_PKIX_OCSP_BASIC,
                response: OctetString::new(basic.to_der().unwrap()).unwrap(),
            }),
        }
        .to_der()
        .unwrap();
        assert_eq!(spliced, typed);
        assert!(OcspResponse::from_der(&spliced).is_ok());
    }
}
