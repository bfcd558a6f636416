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

/// aes128-CBC.
pub const AES128_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.2");
/// aes192-CBC.
pub const AES192_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.22");
/// aes256-CBC.
pub const AES256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");
/// des-ede3-cbc.
pub const DES_EDE3_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");
/// desCBC (OIW, single DES: 56-bit keys; only where a name allows it).
pub const DES_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.7");
