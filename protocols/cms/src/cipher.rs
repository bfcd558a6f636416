//! Content-encryption algorithms (RFC 3565 AES-CBC, RFC 3370 §5.1 DES-EDE3-CBC, and the
//! single DES-CBC of old SCEP clients), CBC with PKCS #7 padding (RFC 5652 §6.3).

use cbc::cipher::{block_padding::Pkcs7, BlockCipher, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use const_oid::ObjectIdentifier;

/// aes128-CBC (RFC 3565).
pub const AES128_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.2");
/// aes192-CBC.
pub const AES192_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.22");
/// aes256-CBC.
pub const AES256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");
/// des-ede3-cbc (RFC 3370 §5.1).
pub const DES_EDE3_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");
/// desCBC (OIW; single DES, 56-bit keys).
pub const DES_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.7");

/// A CBC content-encryption algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCipher {
    /// AES-128-CBC.
    Aes128,
    /// AES-192-CBC.
    Aes192,
    /// AES-256-CBC.
    Aes256,
    /// DES-EDE3-CBC (three-key triple DES).
    Des3,
    /// Single DES-CBC: only legacy clients send it.
    Des,
}

impl ContentCipher {
    /// From the AlgorithmIdentifier OID.
    pub fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        Some(match oid {
            AES128_CBC => Self::Aes128,
            AES192_CBC => Self::Aes192,
            AES256_CBC => Self::Aes256,
            DES_EDE3_CBC => Self::Des3,
            DES_CBC => Self::Des,
            _ => return None,
        })
    }

    /// The AlgorithmIdentifier OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Aes128 => AES128_CBC,
            Self::Aes192 => AES192_CBC,
            Self::Aes256 => AES256_CBC,
            Self::Des3 => DES_EDE3_CBC,
            Self::Des => DES_CBC,
        }
    }

    /// Key size in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128 => 16,
            Self::Aes192 | Self::Des3 => 24,
            Self::Aes256 => 32,
            Self::Des => 8,
        }
    }

    /// IV (block) size in bytes.
    pub fn iv_len(self) -> usize {
        match self {
            Self::Aes128 | Self::Aes192 | Self::Aes256 => 16,
            Self::Des3 | Self::Des => 8,
        }
    }

    /// `plain` encrypted with `key` and `iv`; `None` if their sizes are wrong.
    pub fn encrypt(self, key: &[u8], iv: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
        fn run<C>(key: &[u8], iv: &[u8], plain: &[u8]) -> Option<Vec<u8>>
        where
            cbc::Encryptor<C>: KeyIvInit + BlockEncryptMut,
            C: BlockEncryptMut + BlockCipher,
        {
            Some(cbc::Encryptor::<C>::new_from_slices(key, iv).ok()?.encrypt_padded_vec_mut::<Pkcs7>(plain))
        }
        match self {
            Self::Aes128 => run::<aes::Aes128>(key, iv, plain),
            Self::Aes192 => run::<aes::Aes192>(key, iv, plain),
            Self::Aes256 => run::<aes::Aes256>(key, iv, plain),
            Self::Des3 => run::<des::TdesEde3>(key, iv, plain),
            Self::Des => run::<des::Des>(key, iv, plain),
        }
    }

    /// `ciphertext` decrypted with `key` and `iv`; `None` if their sizes are wrong or the
    /// padding does not check.
    pub fn decrypt(self, key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        fn run<C>(key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>>
        where
            cbc::Decryptor<C>: KeyIvInit + BlockDecryptMut,
            C: BlockDecryptMut + BlockCipher,
        {
            cbc::Decryptor::<C>::new_from_slices(key, iv).ok()?.decrypt_padded_vec_mut::<Pkcs7>(ciphertext).ok()
        }
        match self {
            Self::Aes128 => run::<aes::Aes128>(key, iv, ciphertext),
            Self::Aes192 => run::<aes::Aes192>(key, iv, ciphertext),
            Self::Aes256 => run::<aes::Aes256>(key, iv, ciphertext),
            Self::Des3 => run::<des::TdesEde3>(key, iv, ciphertext),
            Self::Des => run::<des::Des>(key, iv, ciphertext),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ContentCipher; 5] =
        [ContentCipher::Aes128, ContentCipher::Aes192, ContentCipher::Aes256, ContentCipher::Des3, ContentCipher::Des];

    #[test]
    fn every_cipher_round_trips_and_a_wrong_key_does_not_open() {
        for c in ALL {
            assert_eq!(ContentCipher::from_oid(c.oid()), Some(c));
            let (key, iv) = (vec![7u8; c.key_len()], vec![9u8; c.iv_len()]);
            let ct = c.encrypt(&key, &iv, b"a CSR").unwrap();
            assert_eq!(ct.len() % c.iv_len(), 0);
            assert_eq!(c.decrypt(&key, &iv, &ct).unwrap(), b"a CSR");
            assert!(c.decrypt(&vec![8u8; c.key_len()], &iv, &ct).is_none_or(|p| p != b"a CSR"));
            assert!(c.decrypt(&key, &iv, &ct[..ct.len() - 1]).is_none());
            assert!(c.encrypt(&key[1..], &iv, b"x").is_none());
        }
    }

    /// NIST SP 800-38A F.2.1 (CBC-AES128.Encrypt), first block; PKCS #7 adds a second.
    #[test]
    fn aes128_cbc_matches_the_nist_vector() {
        let key = hex("2b7e151628aed2a6abf7158809cf4f3c");
        let iv = hex("000102030405060708090a0b0c0d0e0f");
        let ct = ContentCipher::Aes128.encrypt(&key, &iv, &hex("6bc1bee22e409f96e93d7e117393172a")).unwrap();
        assert_eq!(&ct[..16], &hex("7649abac8119b246cee98e9b12e9197d")[..]);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
}
