//! API tokens. A token reads `pca_<id>_<secret>`: `id` (16 hex digits) is public and names the
//! ledger row; `secret` (32 random bytes, base64url) is shown once and only its SHA-256 is
//! stored, compared in constant time. A leaked ledger therefore yields no usable token.

use base64ct::{Base64UrlUnpadded, Encoding};
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{error::CaError, ledger::AdminToken};

/// The prefix every token starts with (lets secret scanners find leaked ones).
pub const PREFIX: &str = "pca_";

/// A freshly made token: the text to show once and the row to store.
pub struct NewToken {
    /// `pca_<id>_<secret>`.
    pub text: Zeroizing<String>,
    /// The ledger row (hash only).
    pub row: AdminToken,
}

/// Makes a token for `role`, expiring at `expires_at`.
pub fn generate(
    role: &str,
    user: Option<String>,
    owner: Option<String>,
    note: Option<String>,
    expires_at: i64,
) -> Result<NewToken, CaError> {
    let rng = SystemRandom::new();
    let (mut id, mut secret) = ([0u8; 8], Zeroizing::new([0u8; 32]));
    rng.fill(&mut id).map_err(|_| CaError::internal("no randomness"))?;
    rng.fill(secret.as_mut()).map_err(|_| CaError::internal("no randomness"))?;
    let id = hex::encode(id);
    let secret = Zeroizing::new(Base64UrlUnpadded::encode_string(secret.as_ref()));
    let row = AdminToken {
        id: id.clone(),
        user_name: user,
        role: role.to_owned(),
        owner,
        secret_hash: digest(&secret),
        note,
        created_at: crate::ledger::now(),
        expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    Ok(NewToken { text: Zeroizing::new(format!("{PREFIX}{id}_{}", secret.as_str())), row })
}

/// Splits a presented token into `(id, secret)`; `None` when it is not one.
pub fn parse(text: &str) -> Option<(&str, &str)> {
    let (id, secret) = text.strip_prefix(PREFIX)?.split_once('_')?;
    let well_formed = id.len() == 16
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && secret.len() == 43
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then_some((id, secret))
}

/// Whether `secret` is the one whose hash `row` stores.
pub fn matches(row: &AdminToken, secret: &str) -> bool {
    bool::from(digest(secret).ct_eq(&row.secret_hash))
}

fn digest(secret: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_parses_and_matches_only_its_own_row() {
        let t = generate("operator", None, None, None, 10).unwrap();
        let (id, secret) = parse(&t.text).unwrap();
        assert_eq!(id, t.row.id);
        assert!(matches(&t.row, secret));
        let other = generate("operator", None, None, None, 10).unwrap();
        assert!(!matches(&other.row, secret));
        assert!(parse("pca_zz_abc").is_none());
        assert!(parse(&t.text.replace("pca_", "pcb_")).is_none());
        assert!(!t.row.secret_hash.is_empty() && !t.text.contains(&hex::encode(&t.row.secret_hash)));
    }
}
