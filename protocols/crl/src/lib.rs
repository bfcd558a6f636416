//! `privca-crl`: certificate revocation lists (RFC 5280 §5) for privca.
//!
//! * [`builder`] encodes a `TBSCertList` entry by entry (a million revoked certificates are a
//!   stream of bytes, never a million objects) and assembles the signed `CertificateList`.
//! * [`router`] publishes CRLs over HTTP (`application/pkix-crl`, RFC 2585 §4) with caching
//!   and conditional GET, from whatever a [`backend::CrlSource`] has published.
//!
//! This crate never touches the ledger or the HSM: the core streams revoked entries in,
//! signs the TBS bytes in the HSM, and implements [`backend::CrlSource`].
#![warn(missing_docs)]

pub mod backend;
pub mod builder;
pub mod error;
pub mod router;

pub use backend::{CrlSource, PublishedCrl};
pub use builder::{CrlKind, CrlParams, CrlScope, RevokedEntry, TbsCrlBuilder};
pub use error::CrlError;
