//! Secrets the ledger keeps, sealed by the token: EAB HMAC keys, admin users' TOTP secrets and
//! the ACME nonce MAC key shared by every instance on a PostgreSQL ledger.
//!
//! **The choice.** Each secret is encrypted with AES-256-GCM (`CKM_AES_GCM`, PKCS#11 v2.40
//! parameters, 96-bit random IV, 128-bit tag) under one AES-256 secret key that `init`
//! generates in the token, [`SECRETS_WRAP_KEY`] (`CKO_SECRET_KEY`, sensitive, never
//! extractable, `CKA_ENCRYPT`/`CKA_DECRYPT` only), and only the sealed value reaches the
//! ledger. The key is opened in the token each time it is needed (an EAB check happens once per
//! newAccount; the nonce key once per start); the clear value lives in a [`Zeroizing`] buffer
//! for the length of that check. The alternative, one `CKK_GENERIC_SECRET` object per EAB key
//! with the MAC checked in the token (`CKM_SHA256_HMAC`), was not taken: EAB keys would then be
//! token objects created by the CLI, outside the ledger's transactions and backups, and every
//! instance would need to see objects created by the others. With one wrapping key, a ledger
//! backup is useless without the token, and the token holds one object however many keys exist.
//!
//! The additional authenticated data names what a sealed value is (`privca eab-hmac-key
//! <kid>`, `privca acme-nonce-key`), so a sealed value copied to another row or purpose does
//! not open. Stored form: `v1.<base64url IV>.<base64url ciphertext and tag>`.
//!
//! EAB keys stored in the clear by earlier versions are sealed at start-up
//! ([`seal_clear_eab_keys`], run by `init` and `serve` after the bootstrap), and their clear
//! column emptied (migration 11 dropped the clear nonce key).

use base64ct::{Base64UrlUnpadded, Encoding};
use zeroize::Zeroizing;

use crate::{
    error::{CaError, ErrorKind},
    ledger::Ledger,
    signer::{
        pkcs11::{GCM_IV_LEN, GCM_TAG_LEN},
        SignerError, SigningService,
    },
};

/// Label of the AES-256 key in the token that seals the ledger's secrets.
pub const SECRETS_WRAP_KEY: &str = "privca-secrets-wrap";

/// Version prefix of a sealed value.
const VERSION: &str = "v1";

/// What a sealed value is; bound into the AES-GCM additional data.
#[derive(Debug, Clone, Copy)]
pub enum Purpose<'a> {
    /// The HMAC key of EAB key `kid`.
    EabKey(&'a str),
    /// The ACME nonce MAC key shared by the instances on one ledger.
    AcmeNonceKey,
    /// The TOTP secret of admin user `name`.
    TotpSecret(&'a str),
}

impl Purpose<'_> {
    fn aad(self) -> Vec<u8> {
        match self {
            Purpose::EabKey(kid) => format!("privca eab-hmac-key {kid}").into_bytes(),
            Purpose::AcmeNonceKey => b"privca acme-nonce-key".to_vec(),
            Purpose::TotpSecret(name) => format!("privca totp-secret {name}").into_bytes(),
        }
    }
}

/// Seals `secret` for `purpose` in the token; returns the stored form.
pub async fn seal(signing: &SigningService, purpose: Purpose<'_>, secret: &[u8]) -> Result<String, CaError> {
    let mut iv = [0u8; GCM_IV_LEN];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut iv)
        .map_err(|_| CaError::internal("no randomness"))?;
    let sealed = signing
        .encrypt_secret(SECRETS_WRAP_KEY, iv.to_vec(), purpose.aad(), Zeroizing::new(secret.to_vec()))
        .await
        .map_err(|e| match e {
            SignerError::KeyNotFound(_) => CaError::new(
                ErrorKind::Unavailable,
                format!("the token has no key {SECRETS_WRAP_KEY} yet: run `privca init` (or `privca serve`) first"),
            ),
            e => e.into(),
        })?;
    Ok(format!("{VERSION}.{}.{}", Base64UrlUnpadded::encode_string(&iv), Base64UrlUnpadded::encode_string(&sealed)))
}

/// Opens a value sealed by [`seal`] for `purpose` (fails, without detail, on anything else).
pub async fn open(signing: &SigningService, purpose: Purpose<'_>, stored: &str) -> Result<Zeroizing<Vec<u8>>, CaError> {
    let (iv, sealed) = parse(stored).ok_or_else(|| CaError::internal("a sealed secret in the ledger is malformed"))?;
    signing
        .decrypt_secret(SECRETS_WRAP_KEY, iv, purpose.aad(), sealed)
        .await
        .map_err(|e| CaError::internal("a sealed secret in the ledger does not open").with_source(e))
}

fn parse(stored: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut parts = stored.split('.');
    let (version, iv, sealed) = (parts.next()?, parts.next()?, parts.next()?);
    if version != VERSION || parts.next().is_some() {
        return None;
    }
    let iv = Base64UrlUnpadded::decode_vec(iv).ok()?;
    let sealed = Base64UrlUnpadded::decode_vec(sealed).ok()?;
    (iv.len() == GCM_IV_LEN && sealed.len() >= GCM_TAG_LEN).then_some((iv, sealed))
}

/// Seals every EAB HMAC key the ledger still holds in the clear and empties its clear column;
/// returns how many this call sealed. A clear value that is not base64url is sealed as it is
/// (the check of an EAB then fails, as it did before).
pub async fn seal_clear_eab_keys(ledger: &Ledger, signing: &SigningService) -> Result<usize, CaError> {
    let mut sealed = 0;
    for (kid, clear) in ledger.clear_eab_keys().await? {
        let key = Zeroizing::new(Base64UrlUnpadded::decode_vec(&clear).unwrap_or_else(|_| clear.as_bytes().to_vec()));
        let stored = seal(signing, Purpose::EabKey(&kid), &key).await?;
        if ledger.seal_eab_key(&kid, &clear, &stored).await? {
            sealed += 1;
        }
    }
    if sealed > 0 {
        tracing::info!(keys = sealed, "sealed EAB HMAC keys stored in the clear by an earlier version");
    }
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_form_is_checked_before_the_token_is_asked() {
        let iv = Base64UrlUnpadded::encode_string(&[1u8; GCM_IV_LEN]);
        let ct = Base64UrlUnpadded::encode_string(&[2u8; GCM_TAG_LEN + 32]);
        assert!(parse(&format!("v1.{iv}.{ct}")).is_some());
        assert!(parse(&format!("v2.{iv}.{ct}")).is_none());
        assert!(parse(&format!("v1.{iv}.{ct}.x")).is_none());
        assert!(parse(&format!("v1.{ct}.{ct}")).is_none(), "IV of the wrong size");
        assert!(parse(&format!("v1.{iv}.{}", Base64UrlUnpadded::encode_string(&[0u8; 4]))).is_none());
        assert!(parse("c2VjcmV0").is_none(), "a clear base64url key is not a sealed one");
    }

    #[test]
    fn the_additional_data_names_the_purpose_and_the_key() {
        assert_ne!(Purpose::EabKey("kid-a").aad(), Purpose::EabKey("kid-b").aad());
        assert_ne!(Purpose::EabKey("").aad(), Purpose::AcmeNonceKey.aad());
    }
}
