//! ACME request bodies (RFC 8555 §6.2): the flattened JWS, its protected header and `jwk`
//! (`Jws::parse`, `public_jwk`), the signature check with the header's key, the RFC 7638
//! thumbprint, and what a payload may carry that is itself a JWS or a JWK: the inner JWS of a
//! keyChange with its `oldKey` (§7.3.5) and an externalAccountBinding (§7.3.4).
#![no_main]

use libfuzzer_sys::fuzz_target;
use privca_acme::jws::{self, Jws, KeyRef};
use serde_json::Value;

fn check(jws: &Jws) {
    if let KeyRef::Jwk(jwk) = &jws.key {
        let _ = jws.verify(jwk);
        let _ = jws::thumbprint(jwk);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(outer) = Jws::parse(data) else { return };
    check(&outer);
    let Ok(payload) = serde_json::from_slice::<Value>(&outer.payload) else { return };
    // newAccount: externalAccountBinding, checked before and after the key lookup.
    if let Some(eab) = payload.get("externalAccountBinding") {
        if let Ok((_, _, jwk)) = jws::eab_header(eab) {
            let _ = jws::thumbprint(&jwk);
        }
        let _ = Jws::verify_eab(eab, &[0x5a; 32]);
    }
    // keyChange: the payload is a JWS signed by the new key, whose payload names the old one.
    if let Ok(inner) = Jws::from_value(&payload) {
        check(&inner);
        if let Ok(inner_payload) = serde_json::from_slice::<Value>(&inner.payload) {
            if let Ok(old) = jws::public_jwk(inner_payload.get("oldKey").unwrap_or(&Value::Null)) {
                let _ = jws::thumbprint(&old);
            }
        }
    }
});
