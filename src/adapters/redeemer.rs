//! ACME nonce redemption on a shared (PostgreSQL) ledger, batched. Every JWS request redeems
//! its nonce durably, so that no instance accepts it twice: one statement and one commit per
//! request would be most of an order's database work. Redemptions that arrive while one is
//! being written wait and go together in the next statement (group commit): under a light load
//! each goes alone and at once, under a heavy one a statement carries many.

use std::sync::{Arc, Mutex};

use privca_acme::{
    backend::{Account, Redeemed},
    AcmeError,
};
use tokio::sync::oneshot;

use crate::ledger::{Ledger, NonceUse, NONCES_PER_STATEMENT};

/// The redemptions waiting for a statement, and the right to write one.
#[derive(Default)]
pub(crate) struct Redeemer {
    waiting: Mutex<Vec<Waiting>>,
    /// Held while a batch is written (by a task of its own, so a cancelled request never
    /// leaves the others of its batch without an answer).
    turn: Arc<tokio::sync::Mutex<()>>,
}

struct Waiting {
    nonce: String,
    expires: i64,
    account: Option<Account>,
    answer: oneshot::Sender<Option<Redeemed>>,
}

impl Redeemer {
    fn waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Redeems `nonce` (see `Ledger::redeem_acme_nonce`); an internal error if the ledger
    /// failed (logged once per batch).
    pub(crate) async fn redeem(
        &self,
        ledger: &Ledger,
        nonce: &str,
        expires: i64,
        account: Option<&Account>,
    ) -> Result<Redeemed, AcmeError> {
        let (answer, mut rx) = oneshot::channel();
        {
            let mut waiting = self.waiting();
            // The same nonce twice at once: at most one of the two may succeed.
            if waiting.iter().any(|w| w.nonce == nonce) {
                return Ok(Redeemed::Used);
            }
            waiting.push(Waiting { nonce: nonce.to_owned(), expires, account: account.cloned(), answer });
        }
        loop {
            let turn = Arc::clone(&self.turn).lock_owned().await;
            if let Some(answer) = Self::answered(&mut rx)? {
                return Ok(answer);
            }
            let batch: Vec<Waiting> = {
                let mut waiting = self.waiting();
                let n = waiting.len().min(NONCES_PER_STATEMENT);
                waiting.drain(..n).collect()
            };
            let ledger = ledger.clone();
            let written = tokio::spawn(async move {
                let _turn = turn;
                write(&ledger, batch).await;
            });
            if written.await.is_err() {
                tracing::error!("writing a batch of ACME nonce redemptions panicked");
            }
            if let Some(answer) = Self::answered(&mut rx)? {
                return Ok(answer);
            }
        }
    }

    /// This request's answer if a batch carried it: `Ok(None)` while it still waits.
    fn answered(rx: &mut oneshot::Receiver<Option<Redeemed>>) -> Result<Option<Redeemed>, AcmeError> {
        match rx.try_recv() {
            Ok(Some(answer)) => Ok(Some(answer)),
            Ok(None) | Err(oneshot::error::TryRecvError::Closed) => Err(AcmeError::internal()),
            Err(oneshot::error::TryRecvError::Empty) => Ok(None),
        }
    }
}

/// One statement for `batch`; every member gets its answer (or `None` if the ledger failed).
async fn write(ledger: &Ledger, batch: Vec<Waiting>) {
    let uses: Vec<NonceUse<'_>> =
        batch.iter().map(|w| NonceUse { nonce: &w.nonce, expires: w.expires, account: w.account.as_ref() }).collect();
    let answers = match ledger.redeem_acme_nonces(&uses).await {
        Ok(answers) => answers.into_iter().map(Some).collect(),
        Err(e) => {
            tracing::error!(error = %e, nonces = batch.len(), "redeeming ACME nonces failed");
            vec![None; batch.len()]
        }
    };
    for (w, answer) in batch.into_iter().zip(answers) {
        let _ = w.answer.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use privca_acme::backend::Redeemed;

    use super::Redeemer;
    use crate::ledger::Ledger;

    /// Concurrent redemptions go in batches, each gets its own answer, and of several
    /// concurrent uses of one nonce exactly one succeeds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_redemptions_each_get_their_answer_and_a_nonce_is_used_once() {
        let dir = tempfile::tempdir().unwrap();
        let ledger =
            Ledger::connect(&format!("sqlite://{}/ledger.db?mode=rwc", dir.path().display()), 4).await.unwrap();
        let redeemer = Arc::new(Redeemer::default());
        let far = i64::MAX / 2;
        let nonces: Vec<String> =
            (0..60).map(|i| if i % 6 == 0 { "twice".to_owned() } else { format!("n{i}") }).collect();
        let run = |nonces: Vec<String>| {
            let tasks: Vec<_> = nonces
                .into_iter()
                .map(|n| {
                    let (ledger, redeemer) = (ledger.clone(), Arc::clone(&redeemer));
                    tokio::spawn(async move { (redeemer.redeem(&ledger, &n, far, None).await.unwrap(), n) })
                })
                .collect();
            async move {
                let mut out = Vec::new();
                for t in tasks {
                    out.push(t.await.unwrap());
                }
                out
            }
        };
        let first = run(nonces.clone()).await;
        let fresh = |name: &str, answers: &[(Redeemed, String)]| {
            answers.iter().filter(|(a, n)| n == name && *a == Redeemed::Fresh).count()
        };
        assert_eq!(fresh("twice", &first), 1);
        for n in nonces.iter().filter(|n| *n != "twice") {
            assert_eq!(fresh(n, &first), 1, "{n}");
        }
        let second = run(nonces).await;
        assert!(second.iter().all(|(a, _)| *a == Redeemed::Used));
    }
}
