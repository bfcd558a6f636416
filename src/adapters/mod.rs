//! Adapters: the only place where protocol crates' ports meet core services. Each maps
//! `CaError` to the protocol's own error with an exhaustive match.

pub mod acme;
mod batch;
mod cache;
pub mod crl;
pub mod est;
mod est_auth;
pub mod ocsp;
mod redeemer;
pub mod scep;
