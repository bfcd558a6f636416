//! SCEP PKIOperation requests (RFC 8894 §3, §4.3): the GET query (`operation`, `message`
//! percent- and base64-decoded the router's way) or the POST body, then what the router does
//! before the HSM: `message::parse` (ContentInfo, SignedData, signed attributes, signer
//! certificate), `Request::verify` (messageDigest, RSA or ECDSA signature), and
//! `envelope::decode` of the pkcsPKIEnvelope (recipients in any order, BER content). The RA
//! key's decryption is the HSM's: here it recovers nothing, as for a forged envelope, and the
//! implicit-rejection key opens it (`Sealed::open`), as in production.
//!
//! What a real envelope holds once decrypted is whatever its sender encrypted to the RA's public
//! key; an input starting with `content:` is such a plaintext and goes to the content decoders
//! (PKCS#10, IssuerAndSubject, IssuerAndSerialNumber).
#![no_main]

use std::sync::OnceLock;

use der::Decode;
use libfuzzer_sys::fuzz_target;
use privca_scep::{
    envelope,
    message::{self, MessageType},
    rejection::ImplicitRejection,
    router::{decode_message, query_param},
};
use x509_cert::Certificate;

/// An RA certificate (RSA-2048) requests are addressed to.
const RA: &[u8] = include_bytes!("../../protocols/scep/tests/vectors/test-rsa2048.crt.der");

const TYPES: [MessageType; 5] =
    [MessageType::PkcsReq, MessageType::RenewalReq, MessageType::CertPoll, MessageType::GetCert, MessageType::GetCrl];

fn fixture() -> &'static (Certificate, ImplicitRejection) {
    static FIXTURE: OnceLock<(Certificate, ImplicitRejection)> = OnceLock::new();
    FIXTURE
        .get_or_init(|| (Certificate::from_der(RA).expect("RA fixture"), ImplicitRejection::new().expect("randomness")))
}

fn pki_operation(der: &[u8]) {
    let (ra, rejection) = fixture();
    let Ok(request) = message::parse(der) else { return };
    let _ = request.verify();
    let Some(env) = request.envelope.as_deref() else { return };
    let Ok(sealed) = envelope::decode(env, ra, true) else { return };
    if let (Ok(content), Ok(kind)) = (sealed.open(None, rejection), &request.message_type) {
        let _ = kind.content_decodes(&content);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(content) = data.strip_prefix(b"content:") {
        for kind in TYPES {
            let _ = kind.content_decodes(content);
        }
        let _ = message::issuer_and_serial(content);
        return;
    }
    pki_operation(data);
    // The same bytes as a raw GET query.
    if let Ok(query) = std::str::from_utf8(data) {
        let _ = query_param(query, "operation");
        if let Some(Ok(der)) = query_param(query, "message").map(|m| decode_message(&m)) {
            pki_operation(&der);
        }
    }
});
