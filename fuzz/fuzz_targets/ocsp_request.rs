//! OCSP POST bodies (RFC 6960 §4.1, RFC 9654 nonces): `privca_ocsp::request::parse` of a DER
//! `OCSPRequest`, as the responder sees it before any lookup.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = privca_ocsp::request::parse(data) {
        assert!(!parsed.requests.is_empty() && parsed.requests.len() <= privca_ocsp::request::MAX_REQUESTS);
        assert!(parsed.nonce.as_ref().is_none_or(|n| !n.is_empty() && n.len() <= privca_ocsp::request::MAX_NONCE));
    }
});
