//! Job leases (migration 19): which instance runs each cluster-wide background job
//! ([`crate::jobs::lease`]). A lease is taken or renewed in one statement, so two instances
//! asking at once get one answer; its fencing number grows with every change of holder.

use sqlx::Row;

use super::{Ledger, LedgerError};

/// One row of `job_leases`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobLease {
    /// Job name.
    pub job: String,
    /// Instance holding it.
    pub holder: String,
    /// Grows with every change of holder.
    pub fence: i64,
    /// Unix seconds (the holder's clock) after which another instance may take it.
    pub expires_at: i64,
}

impl Ledger {
    /// Takes or renews `job`'s lease for `holder` until `until`: granted when nobody holds it,
    /// when `holder` already does, or when the other holder's lease ran out by `now`. Returns the
    /// fencing number, or `None` while another holder's lease is live.
    pub async fn take_lease(&self, job: &str, holder: &str, now: i64, until: i64) -> Result<Option<i64>, LedgerError> {
        let mut tx = self.begin_single().await?;
        let row = sqlx::query(
            "INSERT INTO job_leases (job, holder, fence, expires_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (job) DO UPDATE SET \
               fence = CASE WHEN job_leases.holder = excluded.holder THEN job_leases.fence ELSE job_leases.fence + 1 END, \
               holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= $4 \
             RETURNING fence",
        )
        .bind(job)
        .bind(holder)
        .bind(until)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.map(|r| r.try_get("fence")).transpose()?)
    }

    /// Takes `job`'s lease over from `from` (a holder known to be gone) for `holder` until
    /// `until`, whether or not it ran out; the fence grows. `None` if `from` no longer holds it
    /// (compare-and-set on the holder).
    pub async fn take_over_lease(
        &self,
        job: &str,
        from: &str,
        holder: &str,
        until: i64,
    ) -> Result<Option<i64>, LedgerError> {
        let mut tx = self.begin_single().await?;
        let row = sqlx::query(
            "UPDATE job_leases SET holder = $1, fence = fence + 1, expires_at = $2 \
             WHERE job = $3 AND holder = $4 RETURNING fence",
        )
        .bind(holder)
        .bind(until)
        .bind(job)
        .bind(from)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.map(|r| r.try_get("fence")).transpose()?)
    }

    /// Ends `holder`'s lease of `job` now (graceful shutdown: another instance takes the job
    /// over at its next try instead of after the lease ran out). Nothing if it holds none.
    pub async fn give_up_lease(&self, job: &str, holder: &str) -> Result<(), LedgerError> {
        let mut tx = self.begin_single().await?;
        sqlx::query("UPDATE job_leases SET expires_at = 0 WHERE job = $1 AND holder = $2")
            .bind(job)
            .bind(holder)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every lease, by job.
    pub async fn job_leases(&self) -> Result<Vec<JobLease>, LedgerError> {
        let rows = sqlx::query("SELECT job, holder, fence, expires_at FROM job_leases ORDER BY job")
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(JobLease {
                    job: r.try_get("job")?,
                    holder: r.try_get("holder")?,
                    fence: r.try_get("fence")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn leases_hand_over(ledger: &Ledger) {
        let (a, b) = ("a/1", "b/2");
        assert_eq!(ledger.take_lease("crl-publish", a, 100, 130).await.unwrap(), Some(1));
        // Renewed by its holder: same fence.
        assert_eq!(ledger.take_lease("crl-publish", a, 110, 140).await.unwrap(), Some(1));
        // Refused to another while live, including at the last second.
        assert_eq!(ledger.take_lease("crl-publish", b, 139, 169).await.unwrap(), None);
        // Taken over once it ran out: the fence grows.
        assert_eq!(ledger.take_lease("crl-publish", b, 140, 170).await.unwrap(), Some(2));
        // The old holder cannot renew it now.
        assert_eq!(ledger.take_lease("crl-publish", a, 141, 171).await.unwrap(), None);
        // Another job is separate.
        assert_eq!(ledger.take_lease("audit-seal", a, 141, 171).await.unwrap(), Some(1));
        // Taken over from a holder known to be gone, whatever its expiry; only from that holder.
        assert_eq!(ledger.take_over_lease("audit-seal", "c/3", b, 180).await.unwrap(), None);
        assert_eq!(ledger.take_over_lease("audit-seal", a, b, 180).await.unwrap(), Some(2));
        assert_eq!(ledger.take_lease("audit-seal", a, 142, 172).await.unwrap(), None);
        assert_eq!(ledger.take_lease("audit-seal", b, 142, 180).await.unwrap(), Some(2));
        // Given up: free at once, and only by its holder.
        ledger.give_up_lease("crl-publish", a).await.unwrap();
        assert_eq!(ledger.take_lease("crl-publish", a, 142, 172).await.unwrap(), None);
        ledger.give_up_lease("crl-publish", b).await.unwrap();
        assert_eq!(ledger.take_lease("crl-publish", a, 142, 172).await.unwrap(), Some(3));
        let all = ledger.job_leases().await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1], JobLease { job: "crl-publish".into(), holder: a.into(), fence: 3, expires_at: 172 });
    }

    async fn one_winner_among_racers(ledger: &Ledger) {
        let takes = (0..8).map(|i| {
            let ledger = ledger.clone();
            async move { ledger.take_lease("race", &format!("i/{i}"), 1000, 1030).await.unwrap() }
        });
        let won: Vec<_> = futures_util::future::join_all(takes).await.into_iter().flatten().collect();
        assert_eq!(won, [1], "one instance holds the lease");
    }

    #[tokio::test]
    async fn leases_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::connect(&format!("sqlite://{}/l.db?mode=rwc", dir.path().display()), 4).await.unwrap();
        leases_hand_over(&ledger).await;
        one_winner_among_racers(&ledger).await;
    }

    #[tokio::test]
    async fn leases_on_postgres() {
        let Some(db) = super::super::test_db::TestPg::create().await else { return };
        let ledger = Ledger::connect(&db.url, 4).await.unwrap();
        leases_hand_over(&ledger).await;
        one_winner_among_racers(&ledger).await;
        ledger.close().await;
    }
}
