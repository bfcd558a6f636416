//! Certificate lifecycle management: the inventory over the issuance ledger, plus the
//! certificates privca did not issue, found by discovery scans ([`discover`]) or imported from
//! files ([`import`]). CLM reads and writes the ledger only through its units of work.

pub mod discover;
pub mod import;
