//! CertRep (RFC 8894 §3.3.2): a SignedData signed by the RA key (in the HSM, through the port)
//! with the RA certificate included; signed attributes messageType 3, pkiStatus,
//! failInfo (+ failInfoText), the request's transactionID, recipientNonce = its senderNonce and
//! a fresh senderNonce. SUCCESS carries the certificates (or CRL) in a degenerate SignedData,
//! enveloped to the requester's certificate with the request's content cipher. FAILURE and
//! PENDING carry an empty id-data content: RFC 8894 omits the pkcsPKIEnvelope there, but
//! OpenSSL's PKCS7_verify (certmonger's scep-submit) refuses a SignedData without content.
//! The GetNextCACert response is the same kind of SignedData without the SCEP attributes.

use std::time::SystemTime;

use cms::content_info::ContentInfo;
use const_oid::{
    db::rfc5911::{ID_DATA, ID_SIGNED_DATA, ID_SIGNING_TIME},
    ObjectIdentifier,
};
use der::{
    asn1::{OctetString, PrintableStringRef, UtcTime},
    Any, Decode, Encode,
};
use privca_cms::{signed, CmsError};
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
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| ScepError::Internal("randomness".into()))?;
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
    let cms_err = |e: CmsError| ScepError::Internal(format!("SignedData encoding: {e}"));
    let digest = ring::digest::digest(&ring::digest::SHA256, &content);
    let now = UtcTime::from_system_time(SystemTime::now()).map_err(internal)?;
    let mut all = vec![attribute(ID_SIGNING_TIME, Any::encode_from(&now).map_err(internal)?)?];
    all.extend(attrs);
    let signed_attrs = signed::signed_attributes(ID_DATA, digest.as_ref(), all).map_err(cms_err)?;
    let signature = backend.ra_sign(&signed_attrs.to_der().map_err(internal)?).await?;
    let signer = signed::Signer {
        certificate: &ra.cert,
        digest: const_oid::db::rfc5912::ID_SHA_256,
        signature_algorithm: &AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
    };
    let signed = signed::signed_data(ID_DATA, content, signer, signed_attrs, signature, &[]).map_err(cms_err)?;
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
    signed::attribute(oid, value).map_err(|e| ScepError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::{future::Future, task::Poll};

    use rsa::{pkcs8::DecodePrivateKey, Pkcs1v15Sign, RsaPrivateKey};

    use super::*;
    use crate::backend::{CaCerts, Outcome, PkiRequest};

    /// Test keys and their self-signed certificates (made with `openssl req -x509`).
    const RSA1024: (&[u8], &[u8]) = (
        include_bytes!("../tests/vectors/test-rsa1024.key.der"),
        include_bytes!("../tests/vectors/test-rsa1024.crt.der"),
    );
    const RSA2048: (&[u8], &[u8]) = (
        include_bytes!("../tests/vectors/test-rsa2048.key.der"),
        include_bytes!("../tests/vectors/test-rsa2048.crt.der"),
    );
    const P256: (&[u8], &[u8]) =
        (include_bytes!("../tests/vectors/test-p256.key.der"), include_bytes!("../tests/vectors/test-p256.crt.der"));
    const NEXT_CA: &[u8] = include_bytes!("../tests/vectors/test-nextca.crt.der");

    /// A backend whose RA key is a software key (PKCS #8); only `ra_sign` is used here.
    #[derive(Clone)]
    struct Ra(&'static [u8]);

    impl Ra {
        /// SHA-256 and PKCS #1 v1.5 or ECDSA (DER), as the key's type asks.
        fn sign(&self, data: &[u8]) -> Vec<u8> {
            if let Ok(key) = RsaPrivateKey::from_pkcs8_der(self.0) {
                let digest = ring::digest::digest(&ring::digest::SHA256, data);
                return key.sign(Pkcs1v15Sign::new::<rsa::sha2::Sha256>(), digest.as_ref()).unwrap();
            }
            let rng = ring::rand::SystemRandom::new();
            let alg = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
            let key = ring::signature::EcdsaKeyPair::from_pkcs8(alg, self.0, &rng).unwrap();
            key.sign(&rng, data).unwrap().as_ref().to_vec()
        }
    }

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
            Ok(self.sign(data))
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

    /// A CertRep has every part `message::parse` needs (transactionID, messageType,
    /// senderNonce, the signer's certificate, an envelope), so it exercises
    /// `Request::verify`: RSA keys through ring (1024 and 2048 bits), an EC key through
    /// RustCrypto's ECDSA.
    #[test]
    fn a_signed_message_verifies_and_any_tampering_fails_the_check() {
        for (key, cert) in [RSA1024, RSA2048, P256] {
            let signer = RaCertificate::from_der(cert.to_vec()).unwrap();
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

    /// `openssl cms -verify` of `der` against the trust anchor `ca` (DER); the content if it
    /// verifies.
    fn openssl_verify(der: &[u8], ca: &[u8]) -> Option<Vec<u8>> {
        use der::{pem::LineEnding, EncodePem};
        let dir = std::env::temp_dir().join(format!("privca-scep-reply-{}-{}", std::process::id(), der.len()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("msg.der"), der).unwrap();
        std::fs::write(dir.join("ca.pem"), Certificate::from_der(ca).unwrap().to_pem(LineEnding::LF).unwrap()).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["cms", "-verify", "-binary", "-inform", "DER", "-in", "msg.der", "-CAfile", "ca.pem"])
            .current_dir(&dir)
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        out.status.success().then_some(out.stdout)
    }

    #[test]
    fn the_next_ca_response_verifies_with_the_ra_certificate_and_carries_the_new_certificates() {
        let (ra_key, ra) = RSA2048;
        let inner = crate::certs::degenerate(&[ra.to_vec(), NEXT_CA.to_vec()], &[]).unwrap();
        let ra_cert = RaCertificate::from_der(ra.to_vec()).unwrap();
        let der = ready(next_ca_cert(&Ra(ra_key), &ra_cert, inner.clone())).unwrap();
        let content = openssl_verify(&der, ra).expect("openssl cms -verify");
        assert_eq!(content, inner, "the signed content is the degenerate certs-only SignedData");

        let mut tampered = der.clone();
        let at = tampered.windows(inner.len()).position(|w| w == inner).unwrap() + inner.len() - 1;
        tampered[at] ^= 1;
        assert!(openssl_verify(&tampered, ra).is_none());
    }
}
