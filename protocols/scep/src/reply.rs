//! CertRep (RFC 8894 §3.3.2): a SignedData signed by the RA key (in the HSM, through the port)
//! with the RA certificate included; signed attributes messageType 3, pkiStatus,
//! failInfo (+ failInfoText), the request's transactionID, recipientNonce = its senderNonce and
//! a fresh senderNonce. SUCCESS carries the certificates (or CRL) in a degenerate SignedData,
//! enveloped to the requester's certificate with the request's content cipher. FAILURE and
//! PENDING carry an empty id-data content: RFC 8894 omits the pkcsPKIEnvelope there, but
//! OpenSSL's PKCS7_verify (certmonger's scep-submit) refuses a SignedData without content.
//! The GetNextCACert response is the same kind of SignedData without the SCEP attributes.

use std::time::SystemTime;

use cms::{
    cert::{CertificateChoices, IssuerAndSerialNumber},
    content_info::{CmsVersion, ContentInfo},
    signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos},
};
use const_oid::{
    db::rfc5911::{ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SIGNED_DATA, ID_SIGNING_TIME},
    ObjectIdentifier,
};
use der::{
    asn1::{OctetString, PrintableStringRef, SetOfVec, UtcTime},
    Any, Decode, Encode,
};
use x509_cert::{attr::Attribute, spki::AlgorithmIdentifierOwned, Certificate};

use crate::{backend::ScepBackend, error::FailInfo, error::ScepError, oids};

/// The RA certificate as CertReps carry it, decoded once (it changes only when the RA
/// certificate is renewed).
#[derive(Debug)]
pub struct RaCertificate {
    der: Vec<u8>,
    cert: Certificate,
}

impl RaCertificate {
    /// Decodes `der`.
    pub fn from_der(der: Vec<u8>) -> Result<Self, ScepError> {
        let cert = Certificate::from_der(&der).map_err(|e| ScepError::Internal(format!("RA certificate: {e}")))?;
        Ok(Self { der, cert })
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The decoded certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }
}

/// pkiStatus of a CertRep.
#[derive(Debug, Clone)]
pub enum Status {
    /// 0, with the sealed pkcsPKIEnvelope (DER EnvelopedData).
    Success(Vec<u8>),
    /// 2.
    Failure(FailInfo, String),
    /// 3.
    Pending,
}

/// Builds and signs a CertRep for `transaction_id` / `recipient_nonce`.
pub async fn cert_rep<B: ScepBackend>(
    backend: &B,
    ra: &RaCertificate,
    transaction_id: &str,
    recipient_nonce: &[u8],
    status: Status,
) -> Result<Vec<u8>, ScepError> {
    let internal = |e: der::Error| ScepError::Internal(format!("CertRep encoding: {e}"));
    let content = match &status {
        Status::Success(envelope) => envelope.clone(),
        _ => Vec::new(),
    };
    let mut nonce = [0u8; 16];
    openssl::rand::rand_bytes(&mut nonce).map_err(|_| ScepError::Internal("randomness".into()))?;
    let (code, fail) = match &status {
        Status::Success(_) => ("0", None),
        Status::Failure(info, text) => ("2", Some((*info, text.as_str()))),
        Status::Pending => ("3", None),
    };
    let mut attrs = vec![
        attribute(oids::MESSAGE_TYPE, printable("3")?)?,
        attribute(oids::PKI_STATUS, printable(code)?)?,
        attribute(oids::TRANSACTION_ID, printable(transaction_id).or_else(|_| utf8(transaction_id))?)?,
        attribute(
            oids::SENDER_NONCE,
            Any::encode_from(&OctetString::new(nonce.to_vec()).map_err(internal)?).map_err(internal)?,
        )?,
        attribute(
            oids::RECIPIENT_NONCE,
            Any::encode_from(&OctetString::new(recipient_nonce.to_vec()).map_err(internal)?).map_err(internal)?,
        )?,
    ];
    if let Some((info, text)) = fail {
        attrs.push(attribute(oids::FAIL_INFO, printable(info.code())?)?);
        attrs.push(attribute(oids::FAIL_INFO_TEXT, Any::encode_from(&text.to_owned()).map_err(internal)?)?);
    }
    signed_by_ra(backend, ra, content, attrs).await
}

/// The GetNextCACert response (RFC 8894 §4.7.1): the degenerate certs-only SignedData `certs`
/// as the id-data content of a SignedData signed with the key whose certificate GetCACert
/// serves now (the RA key; its certificate chains to the current CA), so a client can check
/// the new CA certificates against what it already trusts.
pub async fn next_ca_cert<B: ScepBackend>(
    backend: &B,
    ra: &RaCertificate,
    certs: Vec<u8>,
) -> Result<Vec<u8>, ScepError> {
    signed_by_ra(backend, ra, certs, Vec::new()).await
}

/// `ContentInfo { SignedData }` over the id-data `content`, signed by the RA key (SHA-256,
/// RSA PKCS#1 v1.5) with contentType, messageDigest, signingTime and `attrs` as signed
/// attributes, and the RA certificate included.
async fn signed_by_ra<B: ScepBackend>(
    backend: &B,
    ra: &RaCertificate,
    content: Vec<u8>,
    attrs: Vec<Attribute>,
) -> Result<Vec<u8>, ScepError> {
    let internal = |e: der::Error| ScepError::Internal(format!("SignedData encoding: {e}"));
    let digest = ring::digest::digest(&ring::digest::SHA256, &content);
    let now = UtcTime::from_system_time(SystemTime::now()).map_err(internal)?;
    let mut all = vec![
        attribute(ID_CONTENT_TYPE, Any::encode_from(&ID_DATA).map_err(internal)?)?,
        attribute(
            ID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(digest.as_ref().to_vec()).map_err(internal)?).map_err(internal)?,
        )?,
        attribute(ID_SIGNING_TIME, Any::encode_from(&now).map_err(internal)?)?,
    ];
    all.extend(attrs);
    let signed_attrs = SetOfVec::try_from(all).map_err(internal)?;
    let signature = backend.ra_sign(&signed_attrs.to_der().map_err(internal)?).await?;
    let ra = &ra.cert;
    let sha256 = AlgorithmIdentifierOwned { oid: const_oid::db::rfc5912::ID_SHA_256, parameters: None };
    let signer = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: ra.tbs_certificate.issuer.clone(),
            serial_number: ra.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: sha256.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        signature: OctetString::new(signature).map_err(internal)?,
        unsigned_attrs: None,
    };
    let mut certs = SetOfVec::new();
    certs.insert(CertificateChoices::Certificate(ra.clone())).map_err(internal)?;
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![sha256]).map_err(internal)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: Some(Any::encode_from(&OctetString::new(content).map_err(internal)?).map_err(internal)?),
        },
        certificates: Some(CertificateSet(certs)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer]).map_err(internal)?),
    };
    ContentInfo { content_type: ID_SIGNED_DATA, content: Any::encode_from(&signed).map_err(internal)? }
        .to_der()
        .map_err(internal)
}

fn printable(s: &str) -> Result<Any, ScepError> {
    PrintableStringRef::new(s)
        .and_then(|p| Any::encode_from(&p))
        .map_err(|_| ScepError::Internal(format!("`{s}` is not a PrintableString")))
}

/// A transactionID outside the PrintableString alphabet is echoed as the UTF8String it came in.
fn utf8(s: &str) -> Result<Any, ScepError> {
    Any::encode_from(&s.to_owned()).map_err(|e| ScepError::Internal(e.to_string()))
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, ScepError> {
    let mut values = SetOfVec::new();
    values.insert(value).map_err(|e| ScepError::Internal(e.to_string()))?;
    Ok(Attribute { oid, values })
}

#[cfg(test)]
mod tests {
    use std::{future::Future, task::Poll};

    use openssl::{
        cms::{CMSOptions, CmsContentInfo},
        pkey::{PKey, Private},
        x509::{store::X509StoreBuilder, X509},
    };

    use super::*;
    use crate::backend::{CaCerts, Outcome, PkiRequest};

    /// A backend whose RA key is an OpenSSL key; only `ra_sign` is used here.
    #[derive(Clone)]
    struct Ra(PKey<Private>);

    impl ScepBackend for Ra {
        fn knows(&self, _: &str) -> bool {
            true
        }
        async fn ca_certs(&self, _: &str) -> Result<CaCerts, ScepError> {
            Err(ScepError::Internal("unused".into()))
        }
        async fn next_ca_certs(&self, _: &str) -> Result<Option<CaCerts>, ScepError> {
            Ok(None)
        }
        async fn ra_decrypt(&self, _: &[u8]) -> Result<Vec<u8>, ScepError> {
            Err(ScepError::Internal("unused".into()))
        }
        fn envelope_failed(&self, _: Option<std::net::IpAddr>) {}
        fn envelopes_limited(&self, _: Option<std::net::IpAddr>) -> bool {
            false
        }
        async fn ra_sign(&self, data: &[u8]) -> Result<Vec<u8>, ScepError> {
            let mut s = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &self.0).unwrap();
            Ok(s.sign_oneshot_to_vec(data).unwrap())
        }
        async fn enroll(&self, _: PkiRequest) -> Result<Outcome, ScepError> {
            Err(ScepError::Internal("unused".into()))
        }
        async fn poll(&self, _: &str, _: &str) -> Result<Outcome, ScepError> {
            Err(ScepError::Internal("unused".into()))
        }
        async fn get_cert(&self, _: &[u8], _: &[u8]) -> Result<Outcome, ScepError> {
            Err(ScepError::Internal("unused".into()))
        }
        async fn get_crl(&self, _: &[u8], _: &[u8]) -> Result<Outcome, ScepError> {
            Err(ScepError::Internal("unused".into()))
        }
    }

    /// The mock never waits, so one poll finishes the future.
    fn ready<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the mock backend never waits"),
        }
    }

    fn self_signed(cn: &str, key: &PKey<Private>) -> X509 {
        let mut name = openssl::x509::X509Name::builder().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap()).unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap()).unwrap();
        b.sign(key, openssl::hash::MessageDigest::sha256()).unwrap();
        b.build()
    }

    /// A CertRep has every part `message::parse` needs (transactionID, messageType,
    /// senderNonce, the signer's certificate, an envelope), so it exercises
    /// `Request::verify`: RSA keys through ring (1024 and 2048 bits), EC keys through OpenSSL.
    #[test]
    fn a_signed_message_verifies_and_any_tampering_fails_the_check() {
        let p256 = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let keys = [
            PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap(),
            PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap(),
            PKey::from_ec_key(openssl::ec::EcKey::generate(&p256).unwrap()).unwrap(),
        ];
        for key in keys {
            let signer = RaCertificate::from_der(self_signed("client", &key).to_der().unwrap()).unwrap();
            let envelope = b"pkcsPKIEnvelope stand-in".to_vec();
            let der = ready(cert_rep(&Ra(key), &signer, "tx-1", b"nonce", Status::Success(envelope.clone()))).unwrap();
            let request = crate::message::parse(&der).unwrap();
            assert_eq!((request.transaction_id.as_str(), request.envelope.as_deref()), ("tx-1", Some(&envelope[..])));
            request.verify().unwrap();

            // The envelope (messageDigest) and the signed attributes (signature) are covered.
            for target in [envelope.as_slice(), b"tx-1".as_slice()] {
                let mut tampered = der.clone();
                let at = tampered.windows(target.len()).position(|w| w == target).unwrap();
                tampered[at] ^= 1;
                let err = crate::message::parse(&tampered).unwrap().verify().unwrap_err();
                assert!(matches!(err, ScepError::Fail(FailInfo::BadMessageCheck, _)), "{err:?}");
            }
        }
    }

    #[test]
    fn the_next_ca_response_verifies_with_the_ra_certificate_and_carries_the_new_certificates() {
        let ra_key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let ra = self_signed("RA", &ra_key);
        let next_ca = self_signed("next CA", &PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap());
        let inner = crate::certs::degenerate(&[ra.to_der().unwrap(), next_ca.to_der().unwrap()], &[]).unwrap();
        let ra_cert = RaCertificate::from_der(ra.to_der().unwrap()).unwrap();
        let der = ready(next_ca_cert(&Ra(ra_key), &ra_cert, inner.clone())).unwrap();

        let mut trust = X509StoreBuilder::new().unwrap();
        trust.add_cert(ra.clone()).unwrap();
        let mut cms = CmsContentInfo::from_der(&der).unwrap();
        let mut content = Vec::new();
        cms.verify(None, Some(&trust.build()), None, Some(&mut content), CMSOptions::empty()).unwrap();
        assert_eq!(content, inner, "the signed content is the degenerate certs-only SignedData");

        let mut tampered = der.clone();
        let at = tampered.windows(inner.len()).position(|w| w == inner).unwrap() + inner.len() - 1;
        tampered[at] ^= 1;
        let mut cms = CmsContentInfo::from_der(&tampered).unwrap();
        let mut trust = X509StoreBuilder::new().unwrap();
        trust.add_cert(ra).unwrap();
        assert!(cms.verify(None, Some(&trust.build()), None, None, CMSOptions::empty()).is_err());
    }
}
