//! EST request bodies (RFC 7030 §4.2, §4.3, §4.4; RFC 8951 §3): `wire::decode_body` (base64
//! with any wrapping, PEM armour, optional padding), then a PKCS#10 request as
//! `/simpleenroll`, `/simplereenroll` and `/serverkeygen` read it (SANs, the names a
//! re-enrollment must keep, the serverkeygen recipient), and a Full PKI Request as `/fullcmc`
//! decodes and checks it (`cmc::decode_request`: SignedData, PKIData, TaggedCertificationRequest,
//! messageDigest, proof-of-possession signature). The same bytes are also tried as an
//! `Authorization: Basic` header value. Issuance and the CMC answer's signature (HSM) are not
//! reached.
#![no_main]

use std::sync::OnceLock;

use der::Decode;
use libfuzzer_sys::fuzz_target;
use privca_est::{auth, cmc, names, serverkey, wire};
use x509_cert::{request::CertReq, Certificate};

/// The TLS client certificate of a re-enrollment or of a serverkeygen asking for encryption.
const CLIENT: &[u8] = include_bytes!("../../protocols/est/tests/vectors/rsa2048.crt.der");

fn client() -> &'static Certificate {
    static CLIENT_CERT: OnceLock<Certificate> = OnceLock::new();
    CLIENT_CERT.get_or_init(|| Certificate::from_der(CLIENT).expect("client fixture"))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = axum::http::HeaderValue::from_bytes(data) {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(axum::http::header::AUTHORIZATION, value);
        let _ = auth::basic_credentials(&headers);
    }
    let Ok(der) = wire::decode_body(data) else { return };
    if let Ok(csr) = CertReq::from_der(&der) {
        let _ = names::csr_has_sans(&csr);
        let _ = names::same_names(client(), &csr);
        let _ = serverkey::requested_recipient(&csr, None);
        let _ = serverkey::requested_recipient(&csr, Some(CLIENT));
    }
    if let Ok(Ok((_, csr_der))) = cmc::decode_request(&der) {
        assert!(CertReq::from_der(&csr_der).is_ok(), "an accepted Full PKI Request carries a PKCS#10 request");
    }
});
