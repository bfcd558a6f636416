//! `privca_crl::CrlSource` over the ledger. Published CRLs are cached in memory; a request
//! costs one cheap "newest number" query at most every [`RECHECK`], and the DER body is read
//! from the ledger only when a new CRL was published (by this or another instance). While the
//! ledger is down, the last CRL read is served (it stays valid until its nextUpdate).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use privca_crl::{CrlError, CrlSource, PublishedCrl};

use crate::ledger::{CrlKind, Ledger, LedgerError};

/// How long a cached CRL is served before the ledger is asked for a newer number.
const RECHECK: Duration = Duration::from_secs(1);

/// The CRL source of `privca serve`.
#[derive(Clone)]
pub struct CrlAdapter {
    ledger: Ledger,
    cache: Arc<Mutex<HashMap<String, (Instant, PublishedCrl)>>>,
}

impl CrlAdapter {
    /// A source over `ledger` with an empty cache.
    pub fn new(ledger: Ledger) -> Self {
        Self { ledger, cache: Arc::new(Mutex::new(HashMap::new())) }
    }

    fn cached(&self, name: &str) -> Option<(Instant, PublishedCrl)> {
        self.cache.lock().ok()?.get(name).cloned()
    }

    fn store(&self, name: &str, crl: &PublishedCrl) {
        if let Ok(mut c) = self.cache.lock() {
            c.insert(name.to_owned(), (Instant::now(), crl.clone()));
        }
    }
}

fn unavailable(e: LedgerError) -> CrlError {
    tracing::error!(error = %e, "ledger unavailable for CRL publication");
    CrlError::Unavailable
}

impl CrlSource for CrlAdapter {
    async fn current(&self, name: &str) -> Result<PublishedCrl, CrlError> {
        let (issuer, kind) = match name.strip_suffix("-delta") {
            Some(issuer) => (issuer, CrlKind::Delta),
            None => (name, CrlKind::Full),
        };
        let cached = self.cached(name);
        if let Some((at, crl)) = &cached {
            if at.elapsed() < RECHECK {
                return Ok(crl.clone());
            }
        }
        let newest = match self.ledger.latest_crl(issuer, kind, false).await {
            Ok(newest) => newest.ok_or(CrlError::NotFound)?,
            // The ledger is down: the last good CRL is still signed and current until its
            // nextUpdate, and relying parties need it more than ever.
            Err(e) => match cached {
                Some((_, crl)) => {
                    tracing::warn!(error = %e, crl = name, number = crl.number, "ledger unavailable: serving the last CRL read");
                    return Ok(crl);
                }
                None => return Err(unavailable(e)),
            },
        };
        if let Some((_, crl)) = cached.filter(|(_, c)| c.number == newest.number as u64) {
            self.store(name, &crl);
            return Ok(crl);
        }
        let record = match self.ledger.latest_crl(issuer, kind, true).await {
            Ok(record) => record.ok_or(CrlError::NotFound)?,
            Err(e) => match self.cached(name) {
                Some((_, crl)) => {
                    tracing::warn!(error = %e, crl = name, number = crl.number, "ledger unavailable: serving the last CRL read");
                    return Ok(crl);
                }
                None => return Err(unavailable(e)),
            },
        };
        let at = |s: i64| UNIX_EPOCH + Duration::from_secs(s.max(0) as u64);
        let crl = PublishedCrl {
            der: Arc::new(record.der),
            this_update: at(record.this_update),
            next_update: at(record.next_update).max(SystemTime::UNIX_EPOCH),
            number: record.number as u64,
        };
        self.store(name, &crl);
        Ok(crl)
    }
}
