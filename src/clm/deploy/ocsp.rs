//! What a relying party's OCSP check says about a certificate: an `OCSPRequest` for it (SHA-1
//! CertID, as nearly every client sends) POSTed to the OCSP URL of its AIA extension, and the
//! answer read and verified: a successful basic response, signed by the issuer or by a
//! responder certificate the issuer signed for id-kp-OCSPSigning, about this serial, current
//! (thisUpdate not in the future, nextUpdate not past).

use const_oid::db::{rfc5280, rfc5912, rfc6960};
use der::{asn1::OctetString, Decode, Encode};
use x509_cert::{
    ext::pkix::{name::GeneralName, AuthorityInfoAccessSyntax, ExtendedKeyUsage},
    Certificate,
};
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request, TbsRequest,
};

use crate::clm::discover::chain::{verify_signature, Signature};

/// Clock skew allowed on thisUpdate, seconds.
const SKEW: i64 = 300;

/// A certificate's status as its OCSP responder gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `good`.
    Good,
    /// `revoked`.
    Revoked,
    /// `unknown`.
    Unknown,
}

impl Status {
    /// The RFC 6960 name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Revoked => "revoked",
            Self::Unknown => "unknown",
        }
    }
}

/// Why no status could be read.
#[derive(Debug, thiserror::Error)]
pub enum OcspCheckError {
    /// The certificate names no OCSP responder.
    #[error("the certificate has no OCSP URL (AIA)")]
    NoUrl,
    /// The certificate or its issuer cannot be read.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The responder could not be reached, or answered other than 200.
    #[error("{url}: {reason}")]
    Http {
        /// The OCSP URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The answer is not a usable OCSP response.
    #[error("{url}: {reason}")]
    Response {
        /// The OCSP URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The OCSP URLs of the AIA extension of `cert`.
pub fn ocsp_urls(cert: &Certificate) -> Vec<String> {
    let mut out = Vec::new();
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        if ext.extn_id != rfc5280::ID_PE_AUTHORITY_INFO_ACCESS {
            continue;
        }
        let Ok(aia) = AuthorityInfoAccessSyntax::from_der(ext.extn_value.as_bytes()) else { continue };
        for d in aia.0 {
            if let (true, GeneralName::UniformResourceIdentifier(uri)) =
                (d.access_method == rfc5280::ID_AD_OCSP, &d.access_location)
            {
                out.push(uri.as_str().to_owned());
            }
        }
    }
    out
}

/// The SHA-1 CertID of `cert` issued by `issuer`.
pub fn cert_id(cert: &Certificate, issuer: &Certificate) -> Result<CertId, OcspCheckError> {
    let bad = |e: der::Error| OcspCheckError::Certificate(e.to_string());
    let sha1 = |data: &[u8]| ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref().to_vec();
    let name = issuer.tbs_certificate.subject.to_der().map_err(bad)?;
    let key = issuer.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes();
    Ok(CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: rfc5912::ID_SHA_1,
            parameters: Some(der::asn1::Null.into()),
        },
        issuer_name_hash: OctetString::new(sha1(&name)).map_err(bad)?,
        issuer_key_hash: OctetString::new(sha1(key)).map_err(bad)?,
        serial_number: cert.tbs_certificate.serial_number.clone(),
    })
}

/// The DER `OCSPRequest` for `id` (unsigned, no nonce).
pub fn request_der(id: &CertId) -> Result<Vec<u8>, OcspCheckError> {
    let request = OcspRequest {
        tbs_request: TbsRequest {
            version: x509_ocsp::Version::V1,
            requestor_name: None,
            request_list: vec![Request { req_cert: id.clone(), single_request_extensions: None }],
            request_extensions: None,
        },
        optional_signature: None,
    };
    request.to_der().map_err(|e| OcspCheckError::Certificate(e.to_string()))
}

/// Reads and verifies the answer `body` from `url` about `id` (issued by `issuer`) at `now`.
pub fn read_response(
    url: &str,
    body: &[u8],
    id: &CertId,
    issuer: &Certificate,
    now: i64,
) -> Result<Status, OcspCheckError> {
    let bad = |reason: String| OcspCheckError::Response { url: url.to_owned(), reason };
    let response = OcspResponse::from_der(body).map_err(|e| bad(format!("not an OCSP response: {e}")))?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(bad(format!("responseStatus {:?}", response.response_status)));
    }
    let bytes = response.response_bytes.ok_or_else(|| bad("no responseBytes".into()))?;
    if bytes.response_type != rfc6960::ID_PKIX_OCSP_BASIC {
        return Err(bad(format!("response type {}", bytes.response_type)));
    }
    let basic =
        BasicOcspResponse::from_der(bytes.response.as_bytes()).map_err(|e| bad(format!("basic response: {e}")))?;
    let tbs = basic.tbs_response_data.to_der().map_err(|e| bad(e.to_string()))?;
    let params = basic
        .signature_algorithm
        .parameters
        .as_ref()
        .map(|p| p.to_der())
        .transpose()
        .map_err(|e| bad(e.to_string()))?;
    let params = params.unwrap_or_default();
    let issuer_spki = issuer.tbs_certificate.subject_public_key_info.to_der().map_err(|e| bad(e.to_string()))?;
    let verifies = |spki: &[u8]| {
        verify_signature(&tbs, basic.signature.raw_bytes(), basic.signature_algorithm.oid, &params, spki)
            == Signature::Valid
    };
    let signed = verifies(&issuer_spki)
        || basic.certs.iter().flatten().any(|responder| {
            delegated(responder, issuer, &issuer_spki) && {
                responder.tbs_certificate.subject_public_key_info.to_der().is_ok_and(|spki| verifies(&spki))
            }
        });
    if !signed {
        return Err(bad("the signature is neither the issuer's nor an authorised responder's".into()));
    }
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| r.cert_id.serial_number == id.serial_number && r.cert_id.issuer_key_hash == id.issuer_key_hash)
        .ok_or_else(|| bad("no answer about this certificate".into()))?;
    let this_update = single.this_update.0.to_unix_duration().as_secs() as i64;
    if this_update > now + SKEW {
        return Err(bad("thisUpdate is in the future".into()));
    }
    if let Some(next) = &single.next_update {
        if (next.0.to_unix_duration().as_secs() as i64) < now {
            return Err(bad("the answer is stale (nextUpdate passed)".into()));
        }
    }
    Ok(match single.cert_status {
        CertStatus::Good(_) => Status::Good,
        CertStatus::Revoked(_) => Status::Revoked,
        CertStatus::Unknown(_) => Status::Unknown,
    })
}

/// A responder certificate `issuer` signed for OCSP signing.
fn delegated(responder: &Certificate, issuer: &Certificate, issuer_spki: &[u8]) -> bool {
    let tbs = &responder.tbs_certificate;
    let for_ocsp = tbs.extensions.iter().flatten().any(|e| {
        e.extn_id == rfc5280::ID_CE_EXT_KEY_USAGE
            && ExtendedKeyUsage::from_der(e.extn_value.as_bytes())
                .is_ok_and(|eku| eku.0.contains(&rfc5280::ID_KP_OCSP_SIGNING))
    });
    let Ok(message) = tbs.to_der() else { return false };
    let params = responder.signature_algorithm.parameters.as_ref().and_then(|p| p.to_der().ok()).unwrap_or_default();
    for_ocsp
        && tbs.issuer == issuer.tbs_certificate.subject
        && verify_signature(
            &message,
            responder.signature.raw_bytes(),
            responder.signature_algorithm.oid,
            &params,
            issuer_spki,
        ) == Signature::Valid
}

/// Asks the OCSP responder of `cert_der` (issued by `issuer_der`) for its status at `now`.
pub async fn check(
    http: &reqwest::Client,
    cert_der: &[u8],
    issuer_der: &[u8],
    now: i64,
) -> Result<Status, OcspCheckError> {
    let cert = Certificate::from_der(cert_der).map_err(|e| OcspCheckError::Certificate(e.to_string()))?;
    let issuer = Certificate::from_der(issuer_der).map_err(|e| OcspCheckError::Certificate(e.to_string()))?;
    let url = ocsp_urls(&cert).into_iter().next().ok_or(OcspCheckError::NoUrl)?;
    let id = cert_id(&cert, &issuer)?;
    let http_error = |reason: String| OcspCheckError::Http { url: url.clone(), reason };
    let response = http
        .post(&url)
        .header("content-type", "application/ocsp-request")
        .body(request_der(&id)?)
        .send()
        .await
        .map_err(|e| http_error(e.to_string()))?;
    if !response.status().is_success() {
        return Err(http_error(format!("HTTP {}", response.status())));
    }
    let body = response.bytes().await.map_err(|e| http_error(e.to_string()))?;
    read_response(&url, &body, &id, &issuer, now)
}

#[cfg(test)]
mod tests {
    use der::asn1::{BitString, GeneralizedTime, Null};
    use rcgen::{CertificateParams, DnType, Issuer, KeyPair};
    use ring::{
        rand::SystemRandom,
        signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING},
    };
    use x509_ocsp::{OcspGeneralizedTime, ResponderId, ResponseBytes, ResponseData, RevokedInfo, SingleResponse};

    use super::*;

    const NOW: i64 = 1_800_000_000;

    /// A P-256 key as ring and rcgen both take it.
    fn key() -> (EcdsaKeyPair, KeyPair) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let ring = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        (ring, KeyPair::try_from(pkcs8.as_ref()).unwrap())
    }

    fn params(cn: &str, serial: u32) -> CertificateParams {
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.serial_number = Some(u64::from(serial).into());
        p.not_before = time::OffsetDateTime::from_unix_timestamp(NOW - 86_400).unwrap();
        p.not_after = time::OffsetDateTime::from_unix_timestamp(NOW + 86_400).unwrap();
        p
    }

    /// A certificate `cn` for `key`, issued by `issuer` (its name and key; itself when None).
    fn cert(cn: &str, serial: u32, key: &KeyPair, issuer: Option<(&str, &KeyPair)>) -> Certificate {
        let subject = params(cn, serial);
        let cert = match issuer {
            Some((issuer_cn, issuer_key)) => {
                let issuer = params(issuer_cn, 1);
                subject.signed_by(key, &Issuer::from_params(&issuer, issuer_key)).unwrap()
            }
            None => subject.self_signed(key).unwrap(),
        };
        Certificate::from_der(cert.der()).unwrap()
    }

    fn time(t: i64) -> OcspGeneralizedTime {
        OcspGeneralizedTime(GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(t as u64)).unwrap())
    }

    /// A successful response about `id`, signed by `signer`.
    fn response(id: &CertId, status: CertStatus, next_update: i64, signer: &EcdsaKeyPair) -> Vec<u8> {
        let data = ResponseData {
            version: x509_ocsp::Version::V1,
            responder_id: ResponderId::ByKey(OctetString::new(vec![1u8; 20]).unwrap()),
            produced_at: time(NOW),
            responses: vec![SingleResponse {
                cert_id: id.clone(),
                cert_status: status,
                this_update: time(NOW - 60),
                next_update: Some(time(next_update)),
                single_extensions: None,
            }],
            response_extensions: None,
        };
        let signature = signer.sign(&SystemRandom::new(), &data.to_der().unwrap()).unwrap();
        let basic = BasicOcspResponse {
            tbs_response_data: data,
            signature_algorithm: spki::AlgorithmIdentifierOwned { oid: rfc5912::ECDSA_WITH_SHA_256, parameters: None },
            signature: BitString::from_bytes(signature.as_ref()).unwrap(),
            certs: None,
        };
        OcspResponse {
            response_status: OcspResponseStatus::Successful,
            response_bytes: Some(ResponseBytes {
                response_type: rfc6960::ID_PKIX_OCSP_BASIC,
                response: OctetString::new(basic.to_der().unwrap()).unwrap(),
            }),
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn answers_signed_by_the_issuer_are_read_and_others_refused() {
        let (ca_ring, ca_key) = key();
        let ca = cert("Test CA", 1, &ca_key, None);
        let (_, leaf_key) = key();
        let leaf = cert("www.example.test", 77, &leaf_key, Some(("Test CA", &ca_key)));
        let id = cert_id(&leaf, &ca).unwrap();
        // The request carries the CertID privca's responder parses.
        let parsed = privca_ocsp::request::parse(&request_der(&id).unwrap()).unwrap();
        assert_eq!(parsed.requests[0].serial, [77]);

        let good = response(&id, CertStatus::Good(Null), NOW + 3600, &ca_ring);
        assert_eq!(read_response("u", &good, &id, &ca, NOW).unwrap(), Status::Good);
        let revoked = CertStatus::Revoked(RevokedInfo { revocation_time: time(NOW - 100), revocation_reason: None });
        let revoked = response(&id, revoked, NOW + 3600, &ca_ring);
        assert_eq!(read_response("u", &revoked, &id, &ca, NOW).unwrap(), Status::Revoked);

        let err = |body: &[u8], id: &CertId| read_response("u", body, id, &ca, NOW).unwrap_err().to_string();
        let (other_ring, _) = key();
        let forged = response(&id, CertStatus::Good(Null), NOW + 3600, &other_ring);
        assert!(err(&forged, &id).contains("signature"), "{}", err(&forged, &id));
        let stale = response(&id, CertStatus::Good(Null), NOW - 1, &ca_ring);
        assert!(err(&stale, &id).contains("stale"));
        let other = cert_id(&cert("other", 78, &leaf_key, Some(("Test CA", &ca_key))), &ca).unwrap();
        assert!(err(&good, &other).contains("no answer about this certificate"));
        assert!(err(b"garbage", &id).contains("not an OCSP response"));
        assert!(ocsp_urls(&leaf).is_empty(), "no AIA in this test certificate");
    }
}
