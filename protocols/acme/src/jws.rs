//! JWS (RFC 7515) as ACME restricts it (§6.2): flattened JSON serialization only, protected
//! header with `alg`, `nonce`, `url` and exactly one of `jwk`/`kid`, an algorithm allowlist
//! (ES256, ES384, RS256, PS256, EdDSA; HS256/384/512 only inside EAB), strict unpadded
//! base64url. Account-key signatures are checked with `ring` straight from the JWK members
//! (building an OpenSSL 3 key per request through `josekit` was a quarter of the server's CPU
//! per order in the ACME benchmark); EAB MACs with `ring::hmac::verify`, which compares in
//! constant time. RFC 7638 thumbprints and SPKI → JWK conversion live here too.

use base64ct::{Base64UrlUnpadded, Encoding};
use der::{asn1::UintRef, Decode, Sequence};
use ring::signature as sig;
use serde_json::{Map, Value};
use spki::SubjectPublicKeyInfoRef;

use crate::error::{AcmeError, ErrorType};

/// Smallest RSA modulus accepted for account keys.
const MIN_RSA_BITS: usize = 2048;

/// A parsed, not yet verified, flattened JWS.
#[derive(Debug)]
pub struct Jws {
    /// Protected header.
    pub header: Map<String, Value>,
    /// `alg`.
    pub alg: String,
    /// `url`.
    pub url: String,
    /// `nonce` (absent only in inner JWSs).
    pub nonce: Option<String>,
    /// Signer identity.
    pub key: KeyRef,
    /// Decoded payload (empty for POST-as-GET).
    pub payload: Vec<u8>,
    signing_input: String,
    signature: Vec<u8>,
}

/// Who signed: a key in the header or an account URL.
#[derive(Debug, Clone)]
pub enum KeyRef {
    /// `jwk` (newAccount, revocation by certificate key, inner keyChange JWS).
    Jwk(Value),
    /// `kid`.
    Kid(String),
}

/// Strict base64url without padding (§6.1).
pub fn b64url(s: &str, what: &str) -> Result<Vec<u8>, AcmeError> {
    Base64UrlUnpadded::decode_vec(s).map_err(|_| AcmeError::malformed(format!("{what} is not unpadded base64url")))
}

impl Jws {
    /// Parses a flattened JWS from a request body.
    pub fn parse(body: &[u8]) -> Result<Self, AcmeError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|_| AcmeError::malformed("request body is not a JSON object"))?;
        Self::from_value(&v)
    }

    /// Parses a flattened JWS (a request, or the inner JWS of a keyChange).
    pub fn from_value(v: &Value) -> Result<Self, AcmeError> {
        let obj = v.as_object().ok_or_else(|| AcmeError::malformed("JWS is not a JSON object"))?;
        if obj.contains_key("signatures") {
            return Err(AcmeError::malformed("JWS must use the flattened JSON serialization"));
        }
        if obj.contains_key("header") {
            return Err(AcmeError::malformed("JWS must not have an unprotected header"));
        }
        let field = |name: &str| {
            obj.get(name).and_then(Value::as_str).ok_or_else(|| AcmeError::malformed(format!("JWS has no `{name}`")))
        };
        let (protected, payload, signature) = (field("protected")?, field("payload")?, field("signature")?);
        let header: Map<String, Value> = serde_json::from_slice(&b64url(protected, "protected header")?)
            .map_err(|_| AcmeError::malformed("protected header is not a JSON object"))?;
        if header.contains_key("b64") || header.contains_key("crit") {
            return Err(AcmeError::malformed("`b64` and `crit` are not supported"));
        }
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default().to_owned();
        if alg.is_empty() {
            return Err(AcmeError::malformed("protected header has no `alg`"));
        }
        if !crate::error::ALGORITHMS.contains(&alg.as_str()) {
            return Err(AcmeError::new(ErrorType::BadSignatureAlgorithm, format!("algorithm `{alg}` is not accepted")));
        }
        let url = header
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| AcmeError::malformed("protected header has no `url`"))?
            .to_owned();
        let nonce = header.get("nonce").and_then(Value::as_str).map(str::to_owned);
        let key = match (header.get("jwk"), header.get("kid")) {
            (Some(jwk), None) => KeyRef::Jwk(public_jwk(jwk)?),
            (None, Some(Value::String(kid))) => KeyRef::Kid(kid.clone()),
            (Some(_), Some(_)) => return Err(AcmeError::malformed("protected header has both `jwk` and `kid`")),
            _ => return Err(AcmeError::malformed("protected header needs one of `jwk` and `kid`")),
        };
        Ok(Self {
            alg,
            url,
            nonce,
            key,
            payload: b64url(payload, "payload")?,
            signing_input: format!("{protected}.{payload}"),
            signature: b64url(signature, "signature")?,
            header,
        })
    }

    /// Verifies the signature with the public `jwk` (already reduced by [`public_jwk`]).
    pub fn verify(&self, jwk: &Value) -> Result<(), AcmeError> {
        let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or_default();
        let crv = jwk.get("crv").and_then(Value::as_str).unwrap_or_default();
        let fits = matches!(
            (self.alg.as_str(), kty, crv),
            ("ES256", "EC", "P-256")
                | ("ES384", "EC", "P-384")
                | ("RS256" | "PS256", "RSA", _)
                | ("EdDSA", "OKP", "Ed25519")
        );
        if !fits {
            return Err(AcmeError::new(ErrorType::BadPublicKey, format!("a {kty} key cannot sign {}", self.alg)));
        }
        let member = |n: &str| -> Result<Vec<u8>, AcmeError> {
            let v = jwk.get(n).and_then(Value::as_str).unwrap_or_default();
            b64url(v, n).map_err(|_| AcmeError::new(ErrorType::BadPublicKey, "the JWK is not a usable public key"))
        };
        let point = |x: Vec<u8>, y: Vec<u8>| [&[0x04][..], &x, &y].concat();
        let verified = match self.alg.as_str() {
            "ES256" => sig::UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point(member("x")?, member("y")?))
                .verify(self.signing_input.as_bytes(), &self.signature),
            "ES384" => sig::UnparsedPublicKey::new(&sig::ECDSA_P384_SHA384_FIXED, point(member("x")?, member("y")?))
                .verify(self.signing_input.as_bytes(), &self.signature),
            "RS256" | "PS256" => {
                let params =
                    if self.alg == "RS256" { &sig::RSA_PKCS1_2048_8192_SHA256 } else { &sig::RSA_PSS_2048_8192_SHA256 };
                let (n, e) = (member("n")?, member("e")?);
                let n = n.iter().position(|b| *b != 0).map_or(&n[..0], |i| &n[i..]);
                sig::RsaPublicKeyComponents { n, e: &e[..] }.verify(
                    params,
                    self.signing_input.as_bytes(),
                    &self.signature,
                )
            }
            "EdDSA" => sig::UnparsedPublicKey::new(&sig::ED25519, member("x")?)
                .verify(self.signing_input.as_bytes(), &self.signature),
            other => {
                return Err(AcmeError::new(
                    ErrorType::BadSignatureAlgorithm,
                    format!("algorithm `{other}` is not accepted"),
                ))
            }
        };
        verified.map_err(|_| AcmeError::malformed("JWS signature does not verify"))
    }

    /// Verifies an External Account Binding JWS (§7.3.4) with `hmac_key`.
    pub fn verify_eab(v: &Value, hmac_key: &[u8]) -> Result<(), AcmeError> {
        let (protected, payload, signature) = eab_parts(v)?;
        let header: Map<String, Value> = serde_json::from_slice(&b64url(protected, "EAB protected header")?)
            .map_err(|_| AcmeError::malformed("EAB protected header is not a JSON object"))?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default();
        let algorithm = match alg {
            "HS256" => ring::hmac::HMAC_SHA256,
            "HS384" => ring::hmac::HMAC_SHA384,
            "HS512" => ring::hmac::HMAC_SHA512,
            _ => return Err(AcmeError::malformed("external account binding must use HS256, HS384 or HS512")),
        };
        let key = ring::hmac::Key::new(algorithm, hmac_key);
        ring::hmac::verify(&key, format!("{protected}.{payload}").as_bytes(), &b64url(signature, "EAB signature")?)
            .map_err(|_| AcmeError::unauthorized("external account binding does not verify"))
    }
}

/// The EAB JWS's header fields that the server checks before looking up the key: `kid`,
/// `url`, and that there is no `nonce`; also the payload (the account JWK).
pub fn eab_header(v: &Value) -> Result<(String, String, Value), AcmeError> {
    let (protected, payload, _) = eab_parts(v)?;
    let header: Map<String, Value> = serde_json::from_slice(&b64url(protected, "EAB protected header")?)
        .map_err(|_| AcmeError::malformed("EAB protected header is not a JSON object"))?;
    if header.contains_key("nonce") {
        return Err(AcmeError::malformed("external account binding must not carry a nonce"));
    }
    let kid = header.get("kid").and_then(Value::as_str).ok_or_else(|| AcmeError::malformed("EAB has no `kid`"))?;
    let url = header.get("url").and_then(Value::as_str).ok_or_else(|| AcmeError::malformed("EAB has no `url`"))?;
    let jwk: Value = serde_json::from_slice(&b64url(payload, "EAB payload")?)
        .map_err(|_| AcmeError::malformed("EAB payload is not a JWK"))?;
    Ok((kid.to_owned(), url.to_owned(), public_jwk(&jwk)?))
}

fn eab_parts(v: &Value) -> Result<(&str, &str, &str), AcmeError> {
    let obj = v.as_object().ok_or_else(|| AcmeError::malformed("externalAccountBinding is not a JWS"))?;
    let field =
        |n: &str| obj.get(n).and_then(Value::as_str).ok_or_else(|| AcmeError::malformed(format!("EAB has no `{n}`")));
    Ok((field("protected")?, field("payload")?, field("signature")?))
}

/// Reduces a JWK to its RFC 7638 required public members, refusing private keys, unknown key
/// types and RSA moduli under 2048 bits.
pub fn public_jwk(jwk: &Value) -> Result<Value, AcmeError> {
    let bad = |d: &str| AcmeError::new(ErrorType::BadPublicKey, d.to_owned());
    let obj = jwk.as_object().ok_or_else(|| bad("`jwk` is not an object"))?;
    if obj.contains_key("d") || obj.contains_key("p") {
        return Err(bad("`jwk` holds a private key"));
    }
    let member = |n: &str| -> Result<String, AcmeError> {
        let s = obj.get(n).and_then(Value::as_str).ok_or_else(|| bad(&format!("JWK has no `{n}`")))?;
        b64url(s, n).map_err(|_| bad(&format!("JWK member `{n}` is not base64url")))?;
        Ok(s.to_owned())
    };
    let kty = obj.get("kty").and_then(Value::as_str).unwrap_or_default();
    let crv = obj.get("crv").and_then(Value::as_str).unwrap_or_default();
    match (kty, crv) {
        ("EC", "P-256" | "P-384") => {
            let len = if crv == "P-256" { 32 } else { 48 };
            let (x, y) = (member("x")?, member("y")?);
            if b64url(&x, "x")?.len() != len || b64url(&y, "y")?.len() != len {
                return Err(bad("EC coordinates have the wrong length"));
            }
            Ok(serde_json::json!({"crv": crv, "kty": "EC", "x": x, "y": y}))
        }
        ("RSA", _) => {
            let (n, e) = (member("n")?, member("e")?);
            let modulus = b64url(&n, "n")?;
            let bits = modulus.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < MIN_RSA_BITS {
                return Err(bad("RSA keys must have at least 2048 bits"));
            }
            Ok(serde_json::json!({"e": e, "kty": "RSA", "n": n}))
        }
        ("OKP", "Ed25519") => {
            let x = member("x")?;
            if b64url(&x, "x")?.len() != 32 {
                return Err(bad("Ed25519 key has the wrong length"));
            }
            Ok(serde_json::json!({"crv": crv, "kty": "OKP", "x": x}))
        }
        _ => Err(bad("only EC P-256/P-384, RSA and Ed25519 keys are accepted")),
    }
}

/// RFC 7638 thumbprint (SHA-256, base64url) of a key reduced by [`public_jwk`]: the required
/// members in lexicographic order, no whitespace.
pub fn thumbprint(jwk: &Value) -> String {
    let m = |n: &str| jwk.get(n).and_then(Value::as_str).unwrap_or_default();
    let canonical = match m("kty") {
        "EC" => format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, m("crv"), m("x"), m("y")),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, m("e"), m("n")),
        kty => format!(r#"{{"crv":"{}","kty":"{kty}","x":"{}"}}"#, m("crv"), m("x")),
    };
    Base64UrlUnpadded::encode_string(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
}

#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// The public JWK of a DER SubjectPublicKeyInfo (EC P-256/P-384, RSA, Ed25519).
pub fn jwk_from_spki(spki_der: &[u8]) -> Option<Value> {
    const EC: &str = "1.2.840.10045.2.1";
    const P256: &str = "1.2.840.10045.3.1.7";
    const P384: &str = "1.3.132.0.34";
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der).ok()?;
    let key = spki.subject_public_key.as_bytes()?;
    let enc = Base64UrlUnpadded::encode_string;
    match spki.algorithm.oid.to_string().as_str() {
        EC => {
            let curve = spki.algorithm.parameters.and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())?;
            let (crv, len) = match curve.to_string().as_str() {
                P256 => ("P-256", 32),
                P384 => ("P-384", 48),
                _ => return None,
            };
            if key.len() != 1 + 2 * len || key[0] != 4 {
                return None;
            }
            Some(serde_json::json!({"crv": crv, "kty": "EC", "x": enc(&key[1..=len]), "y": enc(&key[1 + len..])}))
        }
        "1.2.840.113549.1.1.1" => {
            let rsa = RsaPublicKey::from_der(key).ok()?;
            Some(serde_json::json!({
                "e": enc(rsa.public_exponent.as_bytes()),
                "kty": "RSA",
                "n": enc(rsa.modulus.as_bytes()),
            }))
        }
        "1.3.101.112" => Some(serde_json::json!({"crv": "Ed25519", "kty": "OKP", "x": enc(key)})),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint_vector() {
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(thumbprint(&public_jwk(&jwk).unwrap()), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    fn flattened(header: &Value, payload: &str) -> Value {
        serde_json::json!({
            "protected": Base64UrlUnpadded::encode_string(header.to_string().as_bytes()),
            "payload": Base64UrlUnpadded::encode_string(payload.as_bytes()),
            "signature": "AAAA",
        })
    }

    #[test]
    fn header_rules() {
        let jwk =
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let both = serde_json::json!({"alg": "EdDSA", "nonce": "n", "url": "u", "jwk": jwk, "kid": "k"});
        assert_eq!(Jws::from_value(&flattened(&both, "")).unwrap_err().kind, ErrorType::Malformed);
        let none = serde_json::json!({"alg": "none", "nonce": "n", "url": "u", "kid": "k"});
        assert_eq!(Jws::from_value(&flattened(&none, "")).unwrap_err().kind, ErrorType::BadSignatureAlgorithm);
        let hmac = serde_json::json!({"alg": "HS256", "nonce": "n", "url": "u", "kid": "k"});
        assert_eq!(Jws::from_value(&flattened(&hmac, "")).unwrap_err().kind, ErrorType::BadSignatureAlgorithm);
        let ok = serde_json::json!({"alg": "EdDSA", "nonce": "n", "url": "u", "jwk": jwk});
        let jws = Jws::from_value(&flattened(&ok, "{}")).unwrap();
        assert_eq!(jws.payload, b"{}");
        assert!(matches!(jws.key, KeyRef::Jwk(_)));
        let mut padded = flattened(&ok, "{}");
        padded["payload"] = Value::String("e30=".into());
        assert!(Jws::from_value(&padded).is_err());
        let mut general = flattened(&ok, "{}");
        general["signatures"] = serde_json::json!([]);
        assert!(Jws::from_value(&general).is_err());
    }

    /// A 2048-bit RSA key (PKCS#8 DER), made once with `openssl genpkey`: ring signs with RSA
    /// keys but does not generate them.
    const RSA_PKCS8: &[u8] = include_bytes!("../tests/data/rsa2048.pk8");

    /// (alg, public JWK, signer) for every account-key algorithm, keys from ring.
    #[allow(clippy::type_complexity)]
    fn signers() -> Vec<(&'static str, Value, Box<dyn Fn(&[u8]) -> Vec<u8>>)> {
        use ring::{rand::SystemRandom, signature::KeyPair};
        let rng = SystemRandom::new();
        let enc = Base64UrlUnpadded::encode_string;
        let ec = |alg: &'static str, signing: &'static sig::EcdsaSigningAlgorithm, crv: &str| {
            let pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap();
            let key = sig::EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), &rng).unwrap();
            let point = key.public_key().as_ref().to_vec();
            let len = (point.len() - 1) / 2;
            let jwk =
                serde_json::json!({"kty": "EC", "crv": crv, "x": enc(&point[1..=len]), "y": enc(&point[1 + len..])});
            let signer: Box<dyn Fn(&[u8]) -> Vec<u8>> =
                Box::new(move |m| key.sign(&SystemRandom::new(), m).unwrap().as_ref().to_vec());
            (alg, jwk, signer)
        };
        let rsa = |alg: &'static str, padding: &'static dyn sig::RsaEncoding| {
            let key = std::sync::Arc::new(sig::RsaKeyPair::from_pkcs8(RSA_PKCS8).unwrap());
            let public = sig::RsaPublicKeyComponents::<Vec<u8>>::from(key.public());
            let jwk = serde_json::json!({"kty": "RSA", "n": enc(&public.n), "e": enc(&public.e)});
            let signer: Box<dyn Fn(&[u8]) -> Vec<u8>> = Box::new(move |m| {
                let mut out = vec![0; key.public().modulus_len()];
                key.sign(padding, &SystemRandom::new(), m, &mut out).unwrap();
                out
            });
            (alg, jwk, signer)
        };
        let ed = sig::Ed25519KeyPair::from_pkcs8(sig::Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref()).unwrap();
        let ed_jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": enc(ed.public_key().as_ref())});
        vec![
            ec("ES256", &sig::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256"),
            ec("ES384", &sig::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384"),
            rsa("RS256", &sig::RSA_PKCS1_SHA256),
            rsa("PS256", &sig::RSA_PSS_SHA256),
            ("EdDSA", ed_jwk, Box::new(move |m| ed.sign(m).as_ref().to_vec())),
        ]
    }

    #[test]
    fn signatures_of_every_algorithm_verify_and_tampering_is_caught() {
        for (alg, public, sign) in signers() {
            let jwk = public_jwk(&public).unwrap();
            let header = serde_json::json!({"alg": alg, "nonce": "n", "url": "https://x/acme/new-order", "jwk": jwk});
            let protected = Base64UrlUnpadded::encode_string(header.to_string().as_bytes());
            let payload = Base64UrlUnpadded::encode_string(b"{}");
            let signature = sign(format!("{protected}.{payload}").as_bytes());
            let body = |sig: &[u8]| serde_json::json!({"protected": protected, "payload": payload, "signature": Base64UrlUnpadded::encode_string(sig)});
            Jws::from_value(&body(&signature)).unwrap().verify(&jwk).unwrap_or_else(|e| panic!("{alg}: {e:?}"));
            let mut bad = signature.clone();
            bad[5] ^= 1;
            assert!(Jws::from_value(&body(&bad)).unwrap().verify(&jwk).is_err(), "{alg}: tampered signature accepted");
        }
    }

    /// An EAB JWS over `jwk` with `alg`, MACed with `key` by `mac_alg` (independent of
    /// `verify_eab`: ring's HMAC signing).
    fn eab(alg: &str, mac_alg: ring::hmac::Algorithm, key: &[u8], jwk: &Value) -> Value {
        let header = serde_json::json!({"alg": alg, "kid": "kid-1", "url": "https://x/acme/new-account"});
        let protected = Base64UrlUnpadded::encode_string(header.to_string().as_bytes());
        let payload = Base64UrlUnpadded::encode_string(jwk.to_string().as_bytes());
        let mac = ring::hmac::sign(&ring::hmac::Key::new(mac_alg, key), format!("{protected}.{payload}").as_bytes());
        serde_json::json!({"protected": protected, "payload": payload, "signature": Base64UrlUnpadded::encode_string(mac.as_ref())})
    }

    #[test]
    fn external_account_binding_mac() {
        use ring::hmac::{HMAC_SHA256, HMAC_SHA384, HMAC_SHA512};
        let key = [0x5au8; 32];
        let jwk =
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        for (alg, mac_alg) in [("HS256", HMAC_SHA256), ("HS384", HMAC_SHA384), ("HS512", HMAC_SHA512)] {
            let good = eab(alg, mac_alg, &key, &jwk);
            Jws::verify_eab(&good, &key).unwrap_or_else(|e| panic!("{alg}: {e:?}"));
            let (kid, url, payload) = eab_header(&good).unwrap();
            assert_eq!((kid.as_str(), url.as_str(), payload), ("kid-1", "https://x/acme/new-account", jwk.clone()));
            // One flipped MAC byte, anywhere.
            let mac = b64url(good["signature"].as_str().unwrap(), "mac").unwrap();
            for i in [0, mac.len() / 2, mac.len() - 1] {
                let mut flipped = mac.clone();
                flipped[i] ^= 0x01;
                let mut bad = good.clone();
                bad["signature"] = Value::String(Base64UrlUnpadded::encode_string(&flipped));
                assert_eq!(Jws::verify_eab(&bad, &key).unwrap_err().kind, ErrorType::Unauthorized, "{alg} byte {i}");
            }
            // A truncated MAC and the wrong key.
            let mut short = good.clone();
            short["signature"] = Value::String(Base64UrlUnpadded::encode_string(&mac[..mac.len() - 1]));
            assert_eq!(Jws::verify_eab(&short, &key).unwrap_err().kind, ErrorType::Unauthorized);
            assert_eq!(Jws::verify_eab(&good, &[0x5b; 32]).unwrap_err().kind, ErrorType::Unauthorized);
        }
        // The header names one algorithm, the MAC was made with another: it does not verify.
        let mismatched = eab("HS384", HMAC_SHA256, &key, &jwk);
        assert_eq!(Jws::verify_eab(&mismatched, &key).unwrap_err().kind, ErrorType::Unauthorized);
        // Algorithms other than HS256/384/512 are refused outright.
        for alg in ["none", "ES256", "HS1", ""] {
            let bad = eab(alg, HMAC_SHA256, &key, &jwk);
            assert_eq!(Jws::verify_eab(&bad, &key).unwrap_err().kind, ErrorType::Malformed, "{alg}");
        }
    }

    #[test]
    fn small_rsa_keys_are_refused() {
        let jwk = serde_json::json!({"kty": "RSA", "e": "AQAB", "n": Base64UrlUnpadded::encode_string(&[0xc1; 128])});
        assert_eq!(public_jwk(&jwk).unwrap_err().kind, ErrorType::BadPublicKey);
    }
}
