//! Object identifiers SCEP uses (RFC 8894 §3.2.1; CMS and algorithm OIDs from RFC 5652/3565).

use const_oid::ObjectIdentifier;

/// `messageType` (PrintableString, decimal).
pub const MESSAGE_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.2");
/// `pkiStatus`.
pub const PKI_STATUS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.3");
/// `failInfo`.
pub const FAIL_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.4");
/// `senderNonce`.
pub const SENDER_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.5");
/// `recipientNonce`.
pub const RECIPIENT_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.6");
/// `transactionID`.
pub const TRANSACTION_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.7");
/// `id-scep-failInfoText` (UTF8String).
pub const FAIL_INFO_TEXT: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.24.1");
/// PKCS#9 challengePassword.
pub const CHALLENGE_PASSWORD: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");

/// Content-encryption algorithms (RFC 3565, RFC 3370; desCBC only where a name allows it).
pub use privca_cms::cipher::{AES128_CBC, AES192_CBC, AES256_CBC, DES_CBC, DES_EDE3_CBC};
