//! A password-protected PKCS#12 (RFC 7292) holding a server-generated private key and its
//! certificate chain, for owners whose systems cannot make a CSR. The key is a
//! `pkcs8ShroudedKeyBag` encrypted with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC, RFC 8018); the
//! certificates are plain `certBag`s (public data, as `openssl pkcs12 -export -certpbe NONE`
//! writes them); the whole is integrity-protected by an HMAC-SHA-256 MAC keyed by the RFC 7292
//! appendix B KDF. Leaf and key carry the same `localKeyId` (the leaf's SHA-256) so that
//! readers pair them. The key's bytes live in [`Zeroizing`] buffers and are never logged.

use const_oid::{db::rfc5911::ID_DATA, db::rfc5912::ID_SHA_256, ObjectIdentifier};
use der::{
    asn1::{OctetString, OctetStringRef, SetOfVec},
    Any, Encode, Sequence,
};
use pkcs12::{
    digest_info::DigestInfo,
    kdf::{derive_key_utf8, Pkcs12KeyType},
    mac_data::MacData,
    pfx::{Pfx, Version},
    safe_bag::SafeBag,
};
use ring::rand::SecureRandom;
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use zeroize::Zeroizing;

use crate::error::CaError;

/// PBKDF2 iterations of the key's encryption and the MAC KDF's.
pub const ITERATIONS: u32 = 100_000;
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 12;
/// Longest password accepted (bounds the KDF's input).
pub const MAX_PASSWORD: usize = 256;

/// `localKeyId` (PKCS #9).
const LOCAL_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");

/// One of the key's encryption: PBES2 (RFC 8018 appendix A.4) around a PKCS#8 key.
#[derive(Sequence)]
struct EncryptedPrivateKeyInfo<'a> {
    encryption_algorithm: pkcs5::EncryptionScheme<'a>,
    encrypted_data: OctetStringRef<'a>,
}

/// Checks a keystore password's length (in characters).
pub fn check_password(password: &str) -> Result<(), CaError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Err(CaError::bad_request(format!(
            "the keystore password has {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    Ok(())
}

/// The PKCS#12 of `key_pkcs8` and `chain` (DER, leaf first), protected by `password`.
/// CPU-bound (two key derivations of [`ITERATIONS`]): call it off the async workers.
pub fn build(key_pkcs8: &[u8], chain: &[Vec<u8>], password: &str) -> Result<Vec<u8>, CaError> {
    check_password(password)?;
    let fail = |what: &'static str| move |e: der::Error| CaError::internal(format!("PKCS#12: {what}")).with_source(e);
    let leaf = chain.first().ok_or_else(|| CaError::internal("PKCS#12: no certificate"))?;
    let key_id = ring::digest::digest(&ring::digest::SHA256, leaf);
    let key_id_attr = || -> der::Result<SetOfVec<Attribute>> {
        let values = SetOfVec::try_from(vec![Any::encode_from(&OctetString::new(key_id.as_ref())?)?])?;
        SetOfVec::try_from(vec![Attribute { oid: LOCAL_KEY_ID, values }])
    };
    let rng = ring::rand::SystemRandom::new();
    let random = |n: usize| -> Result<Vec<u8>, CaError> {
        let mut b = vec![0u8; n];
        rng.fill(&mut b).map_err(|_| CaError::internal("no randomness"))?;
        Ok(b)
    };

    // The certificates: leaf (with the key's id), then the chain above it.
    let mut cert_bags = Vec::new();
    for (i, der) in chain.iter().enumerate() {
        let bag = pkcs12::cert_type::CertBag {
            cert_id: pkcs12::PKCS_12_X509_CERT_OID,
            cert_value: OctetString::new(der.clone()).map_err(fail("certificate"))?,
        };
        cert_bags.push(SafeBag {
            bag_id: pkcs12::PKCS_12_CERT_BAG_OID,
            bag_value: bag.to_der().map_err(fail("certBag"))?,
            bag_attributes: if i == 0 { Some(key_id_attr().map_err(fail("localKeyId"))?) } else { None },
        });
    }

    // The key, shrouded.
    let salt = random(16)?;
    let iv: [u8; 16] = random(16)?.try_into().map_err(|_| CaError::internal("PKCS#12: IV"))?;
    let scheme = pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(ITERATIONS, &salt, &iv)
        .map_err(|_| CaError::internal("PKCS#12: PBES2 parameters"))?;
    let encrypted =
        scheme.encrypt(password.as_bytes(), key_pkcs8).map_err(|_| CaError::internal("PKCS#12: key encryption"))?;
    let shrouded = EncryptedPrivateKeyInfo {
        encryption_algorithm: scheme.into(),
        encrypted_data: OctetStringRef::new(&encrypted).map_err(fail("encrypted key"))?,
    };
    let key_bag = SafeBag {
        bag_id: pkcs12::PKCS_12_PKCS8_KEY_BAG_OID,
        bag_value: shrouded.to_der().map_err(fail("pkcs8ShroudedKeyBag"))?,
        bag_attributes: Some(key_id_attr().map_err(fail("localKeyId"))?),
    };

    // AuthenticatedSafe: one data ContentInfo per SafeContents.
    let data = |der: Vec<u8>| -> der::Result<cms::content_info::ContentInfo> {
        Ok(cms::content_info::ContentInfo {
            content_type: ID_DATA,
            content: Any::encode_from(&OctetString::new(der)?)?,
        })
    };
    let certs = cert_bags.to_der().map_err(fail("certificates"))?;
    let keys = vec![key_bag].to_der().map_err(fail("key"))?;
    let auth_safe =
        vec![data(certs).map_err(fail("data"))?, data(keys).map_err(fail("data"))?].to_der().map_err(fail("safe"))?;

    // MAC over the AuthenticatedSafe's octets (RFC 7292 §5.1, appendix B).
    let mac_salt = random(16)?;
    let mac_key = Zeroizing::new(
        derive_key_utf8::<sha2::Sha256>(password, &mac_salt, Pkcs12KeyType::Mac, ITERATIONS as i32, 32)
            .map_err(fail("MAC key"))?,
    );
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &mac_key), &auth_safe);
    let mac_data = MacData {
        mac: DigestInfo {
            algorithm: AlgorithmIdentifierOwned { oid: ID_SHA_256, parameters: Some(Any::null()) },
            digest: OctetString::new(tag.as_ref()).map_err(fail("MAC"))?,
        },
        mac_salt: OctetString::new(mac_salt).map_err(fail("MAC salt"))?,
        iterations: ITERATIONS as i32,
    };
    let pfx = Pfx { version: Version::V3, auth_safe: data(auth_safe).map_err(fail("data"))?, mac_data: Some(mac_data) };
    pfx.to_der().map_err(fail("PFX"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_passwords_are_refused() {
        assert!(check_password("short").is_err());
        assert!(check_password(&"é".repeat(12)).is_ok());
        assert!(check_password(&"x".repeat(257)).is_err());
        assert!(build(b"k", &[vec![0x30, 0]], "short").is_err());
    }
}
