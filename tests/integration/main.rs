//! privca's one integration test binary (the kanidm and rustls rule): real SoftHSM2 tokens,
//! real SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, unreachable_pub)]

mod acme_cluster;
mod admin_api;
mod admin_client;
mod admin_mtls;
mod architecture;
mod backup;
mod certificate_sort;
mod clm;
mod clm_renewal;
mod crl;
mod dashboard;
mod est_keygen;
mod harness;
mod issuance_cycle;
mod keystore;
mod ledger_battery;
mod ocsp_nonce;
mod ocsp_presign;
mod openapi;
mod outage;
mod own_cert;
mod pg_tls;
mod readme;
mod reports;
mod rollover;
mod scep_challenge;
mod scep_ra;
mod server_tls;
mod signer;
