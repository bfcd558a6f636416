//! The `/serverkeygen` answer (RFC 7030 §4.4.2): `multipart/mixed` with the private key first
//! (`application/pkcs8`, or [`SERVER_GENERATED_KEY`] when encrypted to the client) and the
//! certificate second (certs-only), each part base64 with its own Content-Type and
//! Content-Transfer-Encoding (libest requires both in every part).

use crate::wire::{encode_body, CERTS_ONLY};

/// The key part in clear (inside TLS).
pub const PKCS8: &str = "application/pkcs8";
/// The key part encrypted to the client (§4.4.2).
pub const SERVER_GENERATED_KEY: &str = "application/pkcs7-mime; smime-type=server-generated-key";

/// `(content type, body)` of the multipart answer: the key part (`key_type`, [`PKCS8`] or
/// [`SERVER_GENERATED_KEY`]) and the certs-only part. The boundary cannot occur in a base64 part.
pub fn server_keygen_body(key_type: &str, key: &[u8], certs_only: &[u8]) -> (String, Vec<u8>) {
    // Base64 never contains '_' or '.', so this boundary cannot appear inside a part.
    let boundary = format!("privca_est_{}.boundary", key.len() ^ certs_only.len());
    let mut body = String::new();
    for (content_type, der) in [(key_type, key), (CERTS_ONLY, certs_only)] {
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
        let (ct, body) = server_keygen_body(PKCS8, &[1, 2, 3], &[4, 5]);
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
