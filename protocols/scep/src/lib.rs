//! `privca-scep`: the SCEP server protocol (RFC 8894).
//!
//! The crate owns the wire: the HTTP binding with raw query parsing ([`router`]), capabilities
//! ([`caps`]), the pkiMessage codec — signed attributes, signature check, envelope decryption —
//! ([`message`], [`envelope`]), CertRep construction ([`reply`]) and degenerate certs-only
//! PKCS#7 in a fixed order ([`certs`]). It stores nothing and holds no private key: the RA key's
//! RSA decryption (content-encryption key; closed as an oracle by implicit rejection,
//! [`rejection`]) and CertRep signatures, the challenge check and
//! issuance go through [`ScepBackend`], which the core implements over the HSM and the ledger.
#![warn(missing_docs)]

pub mod backend;
pub mod caps;
pub mod certs;
pub mod envelope;
pub mod error;
mod keys;
pub mod message;
pub mod oids;
pub mod rejection;
pub mod reply;
pub mod router;

pub use backend::{CaCerts, Outcome, PkiRequest, ScepBackend};
pub use error::{FailInfo, ScepError};
pub use router::{router, ScepSettings};
