//! Checking argon2 password hashes (PHC strings: EST users, admin users) in memory that is kept.
//!
//! An argon2id check with the default parameters works in ~19 MiB. Allocated and freed per
//! check, that block stays in the checking thread's malloc arena, and the arena's small
//! allocations in between fragment it, so the next check takes another ~19 MiB: the server's
//! resident set grew by that much every few checks (measured by `interop/soak/soak.sh`, one EST
//! password re-checked every `est.password_cache`). A [`Verifier`] allocates its memory once, at
//! its first check, and reuses it; each checking thread (or each permit of a bounded pool) owns
//! one, so the memory is bounded by the number of concurrent checks.

use argon2::{password_hash::phc::PasswordHash, Algorithm, Argon2, Block, Params, Version};

/// Checks PHC strings in memory it keeps from one check to the next.
#[derive(Default)]
pub struct Verifier {
    memory: Vec<Block>,
}

impl Verifier {
    /// Whether `password` matches the argon2 PHC string `phc` (false for a malformed one).
    pub fn verify(&mut self, phc: &str, password: &[u8]) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else { return false };
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else { return false };
        let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else { return false };
        let version = match hash.version.map(Version::try_from).transpose() {
            Ok(v) => v.unwrap_or_default(),
            Err(_) => return false,
        };
        let Ok(params) = Params::try_from(&hash) else { return false };
        let blocks = params.block_count();
        if self.memory.len() < blocks {
            self.memory.resize(blocks, Block::default());
        }
        let mut out = zeroize::Zeroizing::new(vec![0u8; expected.as_bytes().len()]);
        let argon2 = Argon2::new(algorithm, version, params);
        argon2.hash_password_into_with_memory(password, salt, &mut out, &mut self.memory[..blocks]).is_ok()
            && bool::from(subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_like_argon2_and_reuses_its_memory() {
        let phc = crate::adapters::est::hash_password("correct horse battery staple").unwrap();
        let mut verifier = Verifier::default();
        assert!(verifier.verify(&phc, b"correct horse battery staple"));
        let kept = verifier.memory.as_ptr();
        assert!(!verifier.verify(&phc, b"correct horse battery stapl"));
        assert!(verifier.verify(&phc, b"correct horse battery staple"));
        assert_eq!(verifier.memory.as_ptr(), kept, "the same memory");
        assert_eq!(verifier.memory.len(), Params::default().block_count());
        assert!(!verifier.verify("$argon2id$v=19$garbage", b"x"));
        assert!(!verifier.verify("not a hash", b"x"));
        // A hash made with other parameters (argon2i, m=8 MiB, t=3) still checks.
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::new(8192, 3, 1, None).unwrap());
        let phc = argon2::password_hash::PasswordHasher::hash_password_with_salt(&other, b"pw", b"saltsaltsalt")
            .unwrap()
            .to_string();
        assert!(verifier.verify(&phc, b"pw"));
        assert!(!verifier.verify(&phc, b"pW"));
    }
}
