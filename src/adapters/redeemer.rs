//! ACME nonce redemption on a shared (PostgreSQL) ledger, batched. Every JWS request redeems
//! its nonce durably, so that no instance accepts it twice: one statement and one commit per
//! request would be most of an order's database work. Redemptions that arrive while one is
//! being written wait and go together in the next statement (group commit): under a light load
//! each goes alone and at once, under a heavy one a statement carries many.

use privca_acme::{
    backend::{Account, Redeemed},
    AcmeError,
};

use super::batch::{Answer, Batcher};
use crate::ledger::{Ledger, NonceUse, NONCES_PER_STATEMENT};

/// The redemptions waiting for a statement.
pub(crate) struct Redeemer {
    batcher: Batcher<Waiting, Redeemed>,
}

impl Default for Redeemer {
    fn default() -> Self {
        Self { batcher: Batcher::new(NONCES_PER_STATEMENT) }
    }
}

struct Waiting {
    nonce: String,
    expires: i64,
    account: Option<Account>,
}

impl Redeemer {
    /// Redeems `nonce` (see `Ledger::redeem_acme_nonce`); an internal error if the ledger
    /// failed (logged once per batch).
    pub(crate) async fn redeem(
        &self,
        ledger: &Ledger,
        nonce: &str,
        expires: i64,
        account: Option<&Account>,
    ) -> Result<Redeemed, AcmeError> {
        let waiting = Waiting { nonce: nonce.to_owned(), expires, account: account.cloned() };
        let ledger = ledger.clone();
        // The same nonce twice at once: at most one of the two may succeed.
        match self
            .batcher
            .run(waiting, |w| w.nonce == nonce, move |batch| async move { write(&ledger, batch).await })
            .await
        {
            Answer::Done(redeemed) => Ok(redeemed),
            Answer::Conflict => Ok(Redeemed::Used),
            // The batch's ledger write failed (logged by it): retry once the database is back.
            Answer::Failed => Err(AcmeError::unavailable()),
        }
    }
}

/// One statement for `batch`: an answer per member, or `None` if the ledger failed.
async fn write(ledger: &Ledger, batch: Vec<Waiting>) -> Option<Vec<Redeemed>> {
    let uses: Vec<NonceUse<'_>> =
        batch.iter().map(|w| NonceUse { nonce: &w.nonce, expires: w.expires, account: w.account.as_ref() }).collect();
    match ledger.redeem_acme_nonces(&uses).await {
        Ok(answers) => Some(answers),
        Err(e) => {
            tracing::error!(error = %e, nonces = batch.len(), "redeeming ACME nonces failed");
            None
        }
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
