//! The admin surface on the admin listener: the JSON API under `/api/v1/` ([`api`]), the
//! dashboard under `/ui/` ([`dashboard`]), who may call them ([`auth`]), the `privca admin`
//! commands that create users and tokens ([`cli`]), the compliance and access-review
//! reports ([`reports`]), the certificate list's order and cursors ([`sort`]) and issuance
//! with a server-generated key as a PKCS#12 ([`keystore`], [`pkcs12`]).
//! Every action goes through the same core services as the CLI (the CA, the ledger's units of
//! work, the approval gate) and leaves its row in the audit chain.

pub mod access;
pub mod api;
pub mod auth;
pub mod cli;
pub mod dashboard;
pub mod keystore;
pub mod pkcs12;
pub mod problem;
pub mod reports;
pub mod sort;

use crate::ca::CertificateAuthority;

/// What every admin handler reads.
#[derive(Clone)]
pub struct AdminState {
    /// The CA (config, ledger, signing service).
    pub ca: CertificateAuthority,
}
