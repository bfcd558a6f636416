//! `privca-cms`: the CMS structures (RFC 5652) privca's enrollment servers emit, shared by
//! EST (server-generated keys, Full PKI Responses) and SCEP (CertRep).
//!
//! - [`cipher`]: the content-encryption algorithms (AES-128/192/256-CBC, DES-EDE3-CBC, and
//!   single DES-CBC for decrypting legacy SCEP requests), on RustCrypto's `aes`, `des` and `cbc`.
//! - [`enveloped`]: EnvelopedData with one KeyTransRecipientInfo (rsaEncryption, PKCS #1 v1.5)
//!   to a client's public key, with RustCrypto's `rsa`. Only public-key operations happen here:
//!   every RSA private-key operation (the SCEP RA key's decryption) stays in the HSM, behind
//!   the protocol crates' ports, so the Marvin timing issue of `rsa`'s decryption does not apply.
//! - [`signed`]: SignedData with one SignerInfo whose signature over the signed attributes was
//!   made elsewhere (in the HSM, through a port).
//!
//! The structures are built from the `cms` crate's types rather than its `builder` feature: the
//! builder writes rsaEncryption without its NULL parameters (RFC 3370 §4.2.1 requires them),
//! has no DES-EDE3-CBC, and fixes the enveloped content type to id-data, while EST envelopes a
//! SignedData. The crate stores nothing and holds no private key.
#![warn(missing_docs)]

pub mod cipher;
pub mod enveloped;
pub mod error;
pub mod signed;

pub use cipher::ContentCipher;
pub use enveloped::{envelope, KeyTransRecipient};
pub use error::CmsError;
