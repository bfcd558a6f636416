//! Units of work for SCEP: one-time challenge passwords, and finding a transaction again by its
//! requester, `scep:<name>/<transactionID>` ([`Ledger::transaction_record`]).

use sqlx::Row;

use super::{audit, now, Approval, CertRecord, Ledger, LedgerError};
use crate::audit::AuditEvent;

/// What the ledger holds for a transaction.
#[derive(Debug, Clone)]
pub enum TransactionRecord {
    /// Its newest certificate.
    Certificate(CertRecord),
    /// No certificate: its newest approval request.
    Approval(Approval),
}

/// The newest certificate and the newest approval of a requester (each NULL when none). The
/// certificate is found through its committed reservation (index `reservations_requester`),
/// which is what a new transaction's reservation checks too
/// (`Reservation::one_per_requester`).
const TRANSACTION_MARKERS: &str =
    "SELECT (SELECT serial FROM reservations WHERE requester = $1 AND state = 'committed' \
     ORDER BY created_at DESC LIMIT 1) AS serial, \
     (SELECT id FROM approvals WHERE requester = $1 ORDER BY id DESC LIMIT 1) AS approval_id";

impl Ledger {
    /// The newest certificate issued to `requester` (a SCEP transaction), else the newest
    /// approval it asked for. One statement finds both markers (a new transaction costs one
    /// read); the row found is then read by key.
    pub async fn transaction_record(&self, requester: &str) -> Result<Option<TransactionRecord>, LedgerError> {
        let (serial, approval_id): (Option<String>, Option<i64>) = match self.sqlite() {
            Some(kept) => kept
                .direct
                .read_row(TRANSACTION_MARKERS, &[requester.into()], |r| Ok((r.get(0)?, r.get(1)?)))?
                .unwrap_or_default(),
            None => {
                let marks =
                    sqlx::query(TRANSACTION_MARKERS).bind(requester).fetch_one(&mut *self.reader().await?).await?;
                (marks.try_get("serial")?, marks.try_get("approval_id")?)
            }
        };
        if let Some(serial) = serial {
            if let Some(cert) = self.certificate(&serial).await? {
                return Ok(Some(TransactionRecord::Certificate(cert)));
            }
        }
        Ok(match approval_id {
            Some(id) => self.approval(id).await?.map(TransactionRecord::Approval),
            None => None,
        })
    }

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
        let mut tx = self.begin_single().await?;
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
