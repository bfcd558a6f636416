//! Adapters: where the protocol crates' port traits (`AcmeBackend`, `EstBackend`,
//! `ScepBackend`, `OcspBackend`, `CrlSource`) are implemented over core services. Each maps
//! `CaError` to the protocol's own error with an exhaustive match.
//!
//! This is the only place that implements the ports, but not the only module that uses the
//! protocol crates: the core also uses their types and encoders where they belong.
//!
//! * `server::routes` mounts their routers and hands the connection's TLS client chain
//!   (`server::listener::ClientChain`) to EST as `privca_est::auth::TlsClientChain`.
//! * `ca::crl` builds CRLs with `privca_crl::builder`; `ca::ocsp` encodes OCSP responses with
//!   `privca_ocsp`.
//! * `config::acme` and `config::est` parse settings into the crates' types (`IpRange`,
//!   `CertAuth`); `policy::client_cert` uses `privca_est::names` to compare a certificate's
//!   names with a CSR's.
//! * `ledger::acme` stores and returns `privca_acme::backend` types.
//!
//! None of these goes the other way: the protocol crates never depend on the core.

pub mod acme;
mod batch;
mod cache;
pub mod crl;
pub mod est;
mod est_auth;
pub mod ocsp;
mod redeemer;
pub mod scep;
