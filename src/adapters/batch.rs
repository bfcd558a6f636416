//! Group statements for the ACME hot path: requests that arrive while one statement is
//! running wait and go together in the next one (group commit for nonce redemptions, one
//! `IN` list for reads by key). Under a light load each goes alone and at once; under a heavy
//! one a statement carries many, which on PostgreSQL saves the per-statement cost (round trip,
//! wake-up of the backend, transaction start and end) that dominates these small statements.

use std::{
    future::Future,
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;

/// What one member of a batch gets back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer<A> {
    /// The statement's answer for this member.
    Done(A),
    /// A waiting member conflicts with this one (see [`Batcher::run`]); nothing was sent.
    Conflict,
    /// The statement failed (the writer logs why) or the batch was lost.
    Failed,
}

/// The members waiting for a statement, and the right to run one.
pub(crate) struct Batcher<Q, A> {
    waiting: Mutex<Vec<Waiting<Q, A>>>,
    /// Held while a batch runs (in a task of its own, so a cancelled request never leaves the
    /// others of its batch without an answer).
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Members per statement at most.
    max: usize,
}

struct Waiting<Q, A> {
    query: Q,
    answer: oneshot::Sender<Option<A>>,
}

impl<Q: Send + 'static, A: Send + 'static> Batcher<Q, A> {
    /// A batcher that puts at most `max` members in one statement.
    pub(crate) fn new(max: usize) -> Self {
        Self { waiting: Mutex::new(Vec::new()), turn: Arc::default(), max: max.max(1) }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting<Q, A>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `query` in the next batch. `conflicts` is asked about every member still waiting:
    /// if it says yes for one, `query` is not queued ([`Answer::Conflict`]). `run` gets the
    /// batch's queries and returns one answer per query in the same order, or `None` if the
    /// statement failed; whichever member takes the turn runs the batch with its `run`, so
    /// every caller must pass an equivalent one.
    pub(crate) async fn run<R, F>(&self, query: Q, conflicts: impl Fn(&Q) -> bool, run: R) -> Answer<A>
    where
        R: FnOnce(Vec<Q>) -> F + Send + 'static,
        F: Future<Output = Option<Vec<A>>> + Send + 'static,
    {
        let (answer, mut rx) = oneshot::channel();
        {
            let mut waiting = self.waiting();
            if waiting.iter().any(|w| conflicts(&w.query)) {
                return Answer::Conflict;
            }
            waiting.push(Waiting { query, answer });
        }
        let mut run = Some(run);
        loop {
            let turn = Arc::clone(&self.turn).lock_owned().await;
            if let Some(answer) = answered(&mut rx) {
                return answer;
            }
            let batch: Vec<Waiting<Q, A>> = {
                let mut waiting = self.waiting();
                let n = waiting.len().min(self.max);
                waiting.drain(..n).collect()
            };
            let Some(run) = run.take() else {
                // Unreachable: a member whose batch ran has its answer (or its sender was
                // dropped), so it never takes the turn twice.
                return Answer::Failed;
            };
            let done = tokio::spawn(async move {
                let _turn = turn;
                let (queries, senders): (Vec<Q>, Vec<_>) = batch.into_iter().map(|w| (w.query, w.answer)).unzip();
                let n = senders.len();
                let answers = run(queries).await.filter(|a| a.len() == n);
                match answers {
                    Some(answers) => {
                        for (tx, a) in senders.into_iter().zip(answers) {
                            let _ = tx.send(Some(a));
                        }
                    }
                    None => {
                        for tx in senders {
                            let _ = tx.send(None);
                        }
                    }
                }
            });
            if done.await.is_err() {
                tracing::error!("a batched ledger statement panicked");
            }
            if let Some(answer) = answered(&mut rx) {
                return answer;
            }
        }
    }
}

/// This member's answer if a batch carried it; `None` while it still waits.
fn answered<A>(rx: &mut oneshot::Receiver<Option<A>>) -> Option<Answer<A>> {
    match rx.try_recv() {
        Ok(Some(a)) => Some(Answer::Done(a)),
        Ok(None) | Err(oneshot::error::TryRecvError::Closed) => Some(Answer::Failed),
        Err(oneshot::error::TryRecvError::Empty) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };

    use super::{Answer, Batcher};

    /// Concurrent members share statements, each gets the answer for its own query, a failed
    /// statement fails only its own members, and a conflicting member is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn members_share_statements_and_get_their_own_answers() {
        let batcher = Arc::new(Batcher::<u32, u32>::new(8));
        let statements = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64u32)
            .map(|i| {
                let (batcher, statements) = (Arc::clone(&batcher), Arc::clone(&statements));
                tokio::spawn(async move {
                    let answer = batcher
                        .run(
                            i,
                            |_| false,
                            move |qs: Vec<u32>| async move {
                                assert!(qs.len() <= 8);
                                statements.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                                // Queries that are multiples of 10 make their statement fail.
                                (!qs.iter().any(|q| q % 10 == 0)).then(|| qs.iter().map(|q| q * 2).collect())
                            },
                        )
                        .await;
                    (i, answer)
                })
            })
            .collect();
        let mut failed = 0;
        for t in tasks {
            let (i, answer) = t.await.unwrap();
            match answer {
                Answer::Done(a) => assert_eq!(a, i * 2),
                Answer::Failed => failed += 1,
                Answer::Conflict => panic!("no member conflicts"),
            }
        }
        let statements = statements.load(Ordering::SeqCst);
        assert!(statements < 64, "{statements} statements for 64 members: nothing was batched");
        assert!((7..64).contains(&failed), "{failed} members failed");

        let slow = Arc::clone(&batcher);
        let first = tokio::spawn(async move {
            slow.run(
                1,
                |_| false,
                |qs: Vec<u32>| async move {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Some(qs)
                },
            )
            .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let queued = Arc::clone(&batcher);
        let second =
            tokio::spawn(async move { queued.run(7, |_| false, |qs: Vec<u32>| async move { Some(qs) }).await });
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert_eq!(batcher.run(7, |q| *q == 7, |qs: Vec<u32>| async move { Some(qs) }).await, Answer::Conflict);
        assert_eq!(first.await.unwrap(), Answer::Done(1));
        assert_eq!(second.await.unwrap(), Answer::Done(7));
    }
}
