//! Units of work on the approval queue (the core's approval gate).

use sqlx::{any::AnyRow, Row};

use super::{audit, now, Approval, ApprovalStatus, Ledger, LedgerError, NewApproval};
use crate::audit::AuditEvent;

/// The columns [`approval`] reads, for `concat!` into static SQL.
macro_rules! approval_columns {
    () => {
        "id, profile, requester, owner, subject, sans, csr_der, status, reason, decided_by, serial, created_at"
    };
}

/// What a decision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// The request is now approved or denied.
    Final,
    /// Recorded; more distinct approvers are needed.
    Waiting {
        /// Approvals so far.
        approvals: i64,
        /// Approvals needed.
        required: i64,
    },
}

fn approval(r: &AnyRow) -> Result<Approval, LedgerError> {
    let sans: String = r.try_get("sans")?;
    let status: String = r.try_get("status")?;
    Ok(Approval {
        id: r.try_get("id")?,
        profile: r.try_get("profile")?,
        requester: r.try_get("requester")?,
        owner: r.try_get("owner")?,
        subject: r.try_get("subject")?,
        sans: serde_json::from_str(&sans).map_err(|e| LedgerError::Corrupt(format!("sans: {e}")))?,
        csr_der: r.try_get("csr_der")?,
        status: ApprovalStatus::parse(&status).ok_or_else(|| LedgerError::Corrupt(format!("status `{status}`")))?,
        reason: r.try_get("reason")?,
        decided_by: r.try_get("decided_by")?,
        serial: r.try_get("serial")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Ledger {
    /// Queues a request for approval, with its audit row; returns the approval id.
    pub async fn create_approval(&self, a: &NewApproval, event: &AuditEvent) -> Result<i64, LedgerError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "INSERT INTO approvals (profile, requester, owner, subject, sans, csr_der, status, created_at, approvals_required) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8) RETURNING id",
        )
        .bind(&a.profile)
        .bind(&a.requester)
        .bind(a.owner.clone())
        .bind(&a.subject)
        .bind(serde_json::to_string(&a.sans).unwrap_or_else(|_| "[]".into()))
        .bind(a.csr_der.clone())
        .bind(now())
        .bind(i64::from(a.approvals_required.max(1)))
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        if let Some(order) = &a.acme_order {
            super::acme::claim_order(&mut tx, order, Some(id)).await?;
        }
        let mut event = event.clone();
        event.detail["approval_id"] = serde_json::json!(id);
        audit::insert(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// One approval by id.
    pub async fn approval(&self, id: i64) -> Result<Option<Approval>, LedgerError> {
        let row = sqlx::query(concat!("SELECT ", approval_columns!(), " FROM approvals WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref().map(approval).transpose()
    }

    /// The latest approval `requester` asked for with exactly this CSR (EST and SCEP clients
    /// resend the same request until it is decided).
    pub async fn approval_for_csr(&self, requester: &str, csr_der: &[u8]) -> Result<Option<Approval>, LedgerError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            approval_columns!(),
            " FROM approvals WHERE requester = $1 AND csr_der = $2 ORDER BY id DESC LIMIT 1"
        ))
        .bind(requester)
        .bind(csr_der.to_vec())
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.as_ref().map(approval).transpose()
    }

    /// Approvals, optionally only those with `status`, oldest first.
    pub async fn approvals(&self, status: Option<ApprovalStatus>) -> Result<Vec<Approval>, LedgerError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            approval_columns!(),
            " FROM approvals WHERE ($1 IS NULL OR status = $2) ORDER BY id"
        ))
        .bind(status.map(|s| s.as_str()))
        .bind(status.map(|s| s.as_str()).unwrap_or(""))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(approval).collect()
    }

    /// Records `by`'s decision on pending request `id`, with its audit row. A denial decides at
    /// once; an approval decides once `approvals_required` distinct approvers have approved
    /// (the row is locked first, so two approvers deciding at the same moment on two instances
    /// are counted one after the other). `Conflict` when the request is not pending or `by`
    /// already decided it.
    pub async fn decide_approval(
        &self,
        id: i64,
        approve: bool,
        by: &str,
        reason: Option<&str>,
        event: &AuditEvent,
    ) -> Result<Decided, LedgerError> {
        let mut tx = self.begin().await?;
        let t = now();
        // Locks the row (PostgreSQL) and checks it is still pending.
        let locked = sqlx::query("UPDATE approvals SET status = status WHERE id = $1 AND status = 'pending'")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() != 1 {
            return Err(LedgerError::Conflict(format!("approval {id} is not pending")));
        }
        let inserted = sqlx::query(
            "INSERT INTO approval_decisions (approval_id, approver, decision, reason, decided_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (approval_id, approver) DO NOTHING",
        )
        .bind(id)
        .bind(by)
        .bind(if approve { "approve" } else { "deny" })
        .bind(reason)
        .bind(t)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() != 1 {
            return Err(LedgerError::Conflict(format!("approval {id} was already decided by {by}")));
        }
        let row = sqlx::query(
            "SELECT a.approvals_required AS required, \
             (SELECT COUNT(*) FROM approval_decisions d WHERE d.approval_id = a.id AND d.decision = 'approve') AS approvals \
             FROM approvals a WHERE a.id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let (required, approvals): (i64, i64) = (row.try_get("required")?, row.try_get("approvals")?);
        let outcome = if !approve || approvals >= required {
            let status = if approve { ApprovalStatus::Approved } else { ApprovalStatus::Denied };
            sqlx::query(
                "UPDATE approvals SET status = $1, decided_by = $2, reason = $3, decided_at = $4 WHERE id = $5",
            )
            .bind(status.as_str())
            .bind(by)
            .bind(reason)
            .bind(t)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            Decided::Final
        } else {
            Decided::Waiting { approvals, required }
        };
        let mut event = event.clone();
        event.detail["approvals"] = serde_json::json!(approvals);
        event.detail["required"] = serde_json::json!(required);
        audit::insert(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Links an approved request to the certificate issued for it.
    pub async fn mark_approval_issued(&self, id: i64, serial: &str) -> Result<(), LedgerError> {
        let mut tx = self.begin_single().await?;
        let done =
            sqlx::query("UPDATE approvals SET status = 'issued', serial = $1 WHERE id = $2 AND status = 'approved'")
                .bind(serial)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            return Err(LedgerError::Conflict(format!("approval {id} is not approved")));
        }
        Ok(tx.commit().await?)
    }
}
