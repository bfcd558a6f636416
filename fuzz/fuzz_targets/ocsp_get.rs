//! OCSP GET paths (RFC 6960 Appendix A.1, RFC 9919 §5): the raw path as the router receives it,
//! percent-decoded and base64-decoded by `decode_get_path`, then parsed as a DER request.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else { return };
    if let Some(der) = privca_ocsp::router::decode_get_path(path) {
        let _ = privca_ocsp::request::parse(&der);
    }
});
