//! `privca-acme`: the ACME server protocol (RFC 8555), with tls-alpn-01 (RFC 8737), IP
//! identifiers (RFC 8738), renewal information (RFC 9773), external account binding and
//! profiles.
//!
//! The crate owns the wire: JWS verification ([`jws`]), nonces ([`nonce`]), the URL scheme
//! ([`links`]), the resources ([`resource`]), the status rules ([`order_state`]) and challenge
//! validation ([`validate`]). It owns no storage and signs nothing: accounts, orders,
//! authorizations, used nonces, issuance and revocation go through [`AcmeBackend`], which the
//! core implements over its ledger and HSM-backed issuance cycle.
#![warn(missing_docs)]

pub mod ari;
pub mod backend;
pub mod error;
pub mod jws;
pub mod links;
pub mod nonce;
pub mod order_state;
pub mod reply;
pub mod request;
pub mod resource;
pub mod router;
pub mod settings;
pub mod time;
pub mod validate;

pub use backend::AcmeBackend;
pub use error::{AcmeError, ErrorType};
pub use request::AcmeState;
pub use settings::AcmeSettings;
pub use validate::{ValidationSettings, Validator};
