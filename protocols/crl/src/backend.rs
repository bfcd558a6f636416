//! The port: what the router needs from the core.

use std::{future::Future, time::SystemTime};

use crate::CrlError;

/// A signed CRL as published.
#[derive(Debug, Clone)]
pub struct PublishedCrl {
    /// DER `CertificateList`.
    pub der: std::sync::Arc<Vec<u8>>,
    /// thisUpdate.
    pub this_update: SystemTime,
    /// nextUpdate.
    pub next_update: SystemTime,
    /// cRLNumber.
    pub number: u64,
}

/// Looks up the current CRL for a published name: `<issuer>` (complete CRL) or
/// `<issuer>-delta` (delta CRL), `root` for the root's CRL.
pub trait CrlSource: Clone + Send + Sync + 'static {
    /// The newest CRL published under `name`, or `NotFound`.
    fn current(&self, name: &str) -> impl Future<Output = Result<PublishedCrl, CrlError>> + Send;
}
