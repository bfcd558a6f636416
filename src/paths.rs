//! Where each protocol is mounted: the path prefixes that `server::routes` composes, that the
//! adapters hand to their protocol crates (which build absolute URLs from them) and that
//! `ca::chain` writes into certificates. A module of its own so that the server and the
//! adapters both import it and neither imports the other.

/// ACME (RFC 8555): the directory is `<prefix>/directory`.
pub const ACME_PREFIX: &str = "/acme";

/// EST (RFC 7030 §3.2.2).
pub const EST_PREFIX: &str = "/.well-known/est";

/// SCEP (RFC 8894); devices append their own path below it.
pub const SCEP_PREFIX: &str = "/scep";

/// CRLs: `<prefix>/<issuer>.crl` and `<prefix>/<issuer>-delta.crl`.
pub const CRL_PREFIX: &str = "/crl";

/// The OCSP responder (POST, and GET below it).
pub const OCSP_PREFIX: &str = "/ocsp";
