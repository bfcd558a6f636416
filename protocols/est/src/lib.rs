//! `privca-est`: the EST server protocol (RFC 7030 as updated by RFC 8951), all six operations:
//! `/cacerts`, `/simpleenroll`, `/simplereenroll`, `/csrattrs` (RFC 9908 form), `/serverkeygen`
//! and `/fullcmc` (RFC 5272 Full PKI Request with one PKCS#10 request).
//!
//! The crate owns the wire: paths and labels ([`router`]), base64 bodies and certs-only
//! PKCS#7 ([`wire`]), the CsrAttrs encoding ([`csrattrs`]), the serverkeygen multipart body
//! ([`multipart`]) and its encrypted key part ([`serverkey`]), CMC ([`cmc`]), the SignedData
//! privca signs ([`signed`]) and HTTP Basic parsing ([`auth`]). It stores nothing and signs
//! nothing: authentication, issuance and CMS signatures go through [`EstBackend`], which the
//! core implements over its ledger and its HSM-backed issuance cycle.
//!
//! Proof-of-possession linking (§3.5): tls-unique does not exist in TLS 1.3 and rustls does not
//! expose it for TLS 1.2, so a CSR's challengePassword is not compared with the channel. The
//! CSR's own signature proves possession of its key; the TLS client certificate or the Basic
//! credentials of the same connection authorise the request, and for re-enrollment the CSR must
//! name the same subject and SANs as the client certificate that authenticated the connection.
#![warn(missing_docs)]

pub mod auth;
pub mod backend;
pub mod cmc;
pub mod csrattrs;
pub mod error;
pub mod multipart;
pub mod names;
pub mod router;
pub mod serverkey;
pub mod signed;
pub mod wire;

pub use backend::{
    CertAuth, ClientCertificate, CmsDigest, CmsSigner, EnrollOutcome, EnrollRequest, EstBackend, Identity,
    KeygenOutcome, LabelPolicy,
};
pub use error::EstError;
pub use router::{router, EstSettings};
