//! privca: a private certificate authority whose every signature happens in a PKCS#11 HSM.
//!
//! # Architecture
//!
//! * [`config`] parses the TOML once into typed, validated values.
//! * [`signer`] is the only module that touches key material: a PKCS#11 token behind a small
//!   synchronous [`signer::Signer`] trait, fronted by [`signer::SigningService`] for async code.
//! * [`ledger`] is the single source of truth and the only module with SQL. Most units of
//!   work run through sqlx's `Any` driver on both SQLite and PostgreSQL; two kinds take other
//!   paths: on SQLite the issuance units (reservation, commit), the audit sealer's links and
//!   the SCEP transaction lookup run on direct rusqlite connections to the same file
//!   (`ledger/direct.rs`), and on PostgreSQL the issuance units and ACME order creation are
//!   single data-modifying statements (`ledger/single_statement.rs`, `ledger/acme.rs`).
//! * [`sealing`] encrypts the secrets the ledger keeps (EAB HMAC keys) under an AES key that
//!   never leaves the token.
//! * [`policy`] holds profiles and the identifier and key rules.
//! * [`ca`] runs the issuance cycle prepare → reserve → sign → verify → commit, the approval
//!   gate, revocation and first-run bootstrap.
//! * [`audit`] defines audit events and the signed hash chain over them.
//! * [`adapters`] implement the protocol crates' port traits over the core.
//! * [`limit`] keeps failure budgets per client address or account.
//! * [`clm`] is certificate lifecycle management: the inventory, expiry policy and notifications,
//!   discovery scans and imports.
//! * [`admin`] is the admin surface; so far its compliance and access-review reports.
//! * [`metrics`] names the Prometheus metrics served on the admin listener; [`error`] holds
//!   [`error::CaError`], the core's error type.
//! * [`paths`] holds the path prefixes each protocol is mounted at, shared by [`server`] and
//!   [`adapters`].
//! * [`server`] and [`jobs`] run `privca serve`; [`cli`] is the command line; [`app`] wires
//!   everything together.
//!
//! Protocol crates (`protocols/*`) never depend on this crate, `sqlx` or `cryptoki`; they
//! declare port traits that [`adapters`] implement (see there for the other modules that use
//! the protocol crates' types and encoders).

pub mod adapters;
pub mod admin;
pub mod app;
pub mod audit;
pub mod backup;
pub mod ca;
pub mod cli;
pub mod clm;
pub mod config;
pub mod error;
pub mod jobs;
pub mod ledger;
pub mod limit;
pub mod metrics;
pub mod password;
pub mod paths;
pub mod policy;
pub mod sealing;
pub mod server;
pub mod signer;
