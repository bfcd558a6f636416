//! Ledger changes made by this process that the OCSP pre-signer acts on at once: a committed
//! certificate gets its first response signed right after commit, a revocation wakes the
//! re-signing pass. The feed is bounded and best-effort: when it is full (or no pre-signer
//! listens, as in CLI commands) the pre-signer's periodic ledger sweep still finds the work.

use tokio::sync::mpsc;

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerChange {
    /// A certificate was committed.
    Committed {
        /// Serial, hex.
        serial: String,
        /// Issuer id.
        issuer_id: String,
    },
    /// A certificate was revoked or released from hold.
    Revoked,
}

/// Changes queued before the pre-signer drops them (the sweep picks up the rest).
pub const FEED_CAPACITY: usize = 4096;

/// The sending side, held by the CA.
#[derive(Debug, Clone, Default)]
pub struct ChangeFeed(Option<mpsc::Sender<LedgerChange>>);

impl ChangeFeed {
    /// A feed and the receiver the pre-signer reads.
    pub fn channel() -> (Self, mpsc::Receiver<LedgerChange>) {
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        (Self(Some(tx)), rx)
    }

    /// Queues `change` if there is room; never waits.
    pub fn send(&self, change: LedgerChange) {
        if let Some(tx) = &self.0 {
            if tx.try_send(change).is_err() {
                metrics::counter!("privca_ledger_changes_dropped_total").increment(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_never_blocking() {
        let (feed, mut rx) = ChangeFeed::channel();
        for _ in 0..FEED_CAPACITY + 10 {
            feed.send(LedgerChange::Revoked);
        }
        let mut n = 0;
        while rx.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, FEED_CAPACITY);
        ChangeFeed::default().send(LedgerChange::Revoked);
    }
}
