//! The `/serverkeygen` answer (RFC 7030 §4.4.2): `multipart/mixed` with the private key first
//! (`application/pkcs8`) and the certificate second (certs-only), each part base64 with its own
//! Content-Type and Content-Transfer-Encoding (quirk E1: libest requires both in every part).

use crate::wire::{encode_body, CERTS_ONLY};

/// `(content type, body)` of the multipart answer. The boundary is derived from the content so
/// it cannot occur in a base64 part.
pub fn server_keygen_body(key_pkcs8: &[u8], certs_only: &[u8]) -> (String, Vec<u8>) {
    // Base64 never contains '_' or '.', so this boundary cannot appear inside a part.
    let boundary = format!("privca_est_{}.boundary", key_pkcs8.len() ^ certs_only.len());
    let mut body = String::new();
    for (content_type, der) in [("application/pkcs8", key_pkcs8), (CERTS_ONLY, certs_only)] {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
            encode_body(der)
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (format!("multipart/mixed; boundary={boundary}"), body.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_parts_key_first_with_transfer_encoding() {
        let (ct, body) = server_keygen_body(&[1, 2, 3], &[4, 5]);
        let boundary = ct.strip_prefix("multipart/mixed; boundary=").unwrap();
        let body = String::from_utf8(body).unwrap();
        let parts: Vec<&str> = body.split(&format!("--{boundary}")).collect();
        // preamble (empty), key, cert, epilogue marker "--\r\n"
        assert_eq!(parts.len(), 4);
        assert!(parts[1].contains("Content-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\nAQID\n"));
        assert!(parts[2].contains("smime-type=certs-only\r\nContent-Transfer-Encoding: base64\r\n\r\nBAU=\n"));
        assert_eq!(parts[3], "--\r\n");
    }
}
