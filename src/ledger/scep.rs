//! Units of work for SCEP: one-time challenge passwords. (A transaction is found again by its
//! requester, `scep:<name>/<transactionID>`: `certificate_by_requester`, `approval_by_requester`.)

use sqlx::Row;

use super::{audit, now, Ledger, LedgerError};
use crate::audit::AuditEvent;

impl Ledger {
    /// Stores a challenge (its SHA-256, hex) for `profile`, usable `uses` times until `expires_at`.
    pub async fn create_scep_challenge(
        &self,
        hash: &str,
        profile: &str,
        owner: Option<&str>,
        uses: i64,
        expires_at: i64,
        event: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO scep_challenges (challenge_hash, profile, owner, uses_left, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(hash)
        .bind(profile)
        .bind(owner.map(str::to_owned))
        .bind(uses)
        .bind(expires_at)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uses the challenge once if it exists for `profile`, has uses left and has not expired.
    /// `None` if refused; `Some(owner)` (the owner may be unset) if accepted.
    pub async fn use_scep_challenge(&self, hash: &str, profile: &str) -> Result<Option<Option<String>>, LedgerError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE scep_challenges SET uses_left = uses_left - 1 \
             WHERE challenge_hash = $1 AND profile = $2 AND uses_left > 0 AND expires_at > $3 RETURNING owner",
        )
        .bind(hash)
        .bind(profile)
        .bind(now())
        .fetch_optional(&mut *tx)
        .await?;
        let owner = row.map(|r| r.try_get::<Option<String>, _>("owner")).transpose()?;
        tx.commit().await?;
        Ok(owner)
    }
}
