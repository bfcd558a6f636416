//! HTTP Basic credentials (RFC 7617) and the TLS client chain handed over by the server.

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use base64ct::{Base64, Encoding};

/// The TLS client certificate chain (DER, leaf first) of the connection, inserted into each
/// request's extensions by the HTTPS listener when the client presented one.
#[derive(Debug, Clone)]
pub struct TlsClientChain(pub Arc<Vec<Vec<u8>>>);

/// `(user, password)` from `Authorization: Basic …`, if present and well-formed.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = Base64::decode_vec(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_parsed_case_insensitively() {
        let mut h = HeaderMap::new();
        // "router1:s3cr:et" — the password may contain colons.
        h.insert(header::AUTHORIZATION, "basic cm91dGVyMTpzM2NyOmV0".parse().unwrap());
        assert_eq!(basic_credentials(&h), Some(("router1".into(), "s3cr:et".into())));
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(basic_credentials(&h), None);
        h.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(basic_credentials(&h), None);
    }
}
