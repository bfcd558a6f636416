//! Units of work on EST users (HTTP Basic credentials per label).

use sqlx::Row;

use super::{audit, now, Ledger, LedgerError};
use crate::audit::AuditEvent;

impl Ledger {
    /// Creates or replaces the EST user `name` of `label` with its audit row.
    pub async fn put_est_user(
        &self,
        label: &str,
        name: &str,
        password_hash: &str,
        event: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO est_users (label, name, password_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (label, name) DO UPDATE SET password_hash = excluded.password_hash, created_at = excluded.created_at",
        )
        .bind(label)
        .bind(name)
        .bind(password_hash)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The password hash (PHC string) of EST user `name` of `label`.
    pub async fn est_password_hash(&self, label: &str, name: &str) -> Result<Option<String>, LedgerError> {
        let row = sqlx::query("SELECT password_hash FROM est_users WHERE label = $1 AND name = $2")
            .bind(label)
            .bind(name)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|r| r.try_get("password_hash")).transpose().map_err(Into::into)
    }
}
