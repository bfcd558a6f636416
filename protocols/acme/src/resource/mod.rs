//! One file per ACME resource (§7). Handlers take the shared state and an authenticated
//! request and return a [`crate::reply::Reply`] or an [`crate::AcmeError`].

pub mod account;
pub mod authz;
pub mod certificate;
pub mod directory;
pub mod order;
pub mod renewal_info;
pub mod revoke;
