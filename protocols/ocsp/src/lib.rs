//! `privca-ocsp`: the OCSP responder's wire side (RFC 6960, lightweight profile RFC 9919,
//! nonces RFC 9654).
//!
//! * [`request`] parses an `OCSPRequest` into the questions it asks (CertIDs with SHA-1,
//!   SHA-256, SHA-384 or SHA-512 hashes) and its nonce, refusing what the RFCs call malformed.
//! * [`response`] encodes `ResponseData` for the core to sign, assembles the signed
//!   `OCSPResponse`, and has the fixed unsigned error responses.
//! * [`router`] binds it to HTTP: POST, and GET with the base64 request in the raw path
//!   (slashes, `+`, `=` and `//` survive), always 200 `application/ocsp-response`, with RFC
//!   9919 caching headers on cacheable GET answers.
//!
//! Status lookups and signatures belong to the core, behind [`backend::OcspBackend`].
#![warn(missing_docs)]

pub mod backend;
pub mod error;
pub mod request;
pub mod response;
pub mod router;

pub use backend::{OcspBackend, OcspReply};
pub use error::OcspError;
pub use request::{CertRequest, HashAlgorithm, ParsedRequest};
