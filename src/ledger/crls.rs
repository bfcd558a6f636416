//! Units of work on CRLs: number reservation (before signing), streaming the revoked entries,
//! publication, and the lookups the HTTP publisher and the CRL job need.

use futures_util::TryStreamExt;
use sqlx::{any::AnyRow, Row};

use super::{audit, now, Ledger, LedgerError};
use crate::audit::AuditEvent;

/// Complete or delta CRL, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlKind {
    /// Complete CRL.
    Full,
    /// Delta CRL.
    Delta,
}

impl CrlKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Delta => "delta",
        }
    }
}

/// A reserved CRL number and the revocation sequence it reflects.
#[derive(Debug, Clone, Copy)]
pub struct CrlReservation {
    /// cRLNumber.
    pub number: i64,
    /// Revocations with a sequence up to this one are included.
    pub revocation_seq: i64,
}

/// A published CRL.
#[derive(Debug, Clone)]
pub struct CrlRecord {
    /// cRLNumber.
    pub number: i64,
    /// Base cRLNumber (delta CRLs).
    pub base_number: Option<i64>,
    /// Revocation sequence reflected.
    pub revocation_seq: i64,
    /// Unix seconds.
    pub this_update: i64,
    /// Unix seconds.
    pub next_update: i64,
    /// DER (absent when only the header was asked for).
    pub der: Vec<u8>,
}

/// One revocation-relevant row, streamed into the CRL builder.
#[derive(Debug, Clone)]
pub struct RevokedRow {
    /// Serial, hex.
    pub serial: String,
    /// Still revoked (false: released from hold, listed as removeFromCRL in deltas).
    pub revoked: bool,
    /// Reason name.
    pub reason: Option<String>,
    /// Unix seconds.
    pub revoked_at: Option<i64>,
    /// Unix seconds.
    pub invalidity_date: Option<i64>,
}

impl Ledger {
    /// Takes the issuer's next cRLNumber (never reused, even if signing then fails) and records
    /// the CRL as `reserved`, with its audit row, before anything is signed.
    pub async fn reserve_crl(
        &self,
        issuer_id: &str,
        kind: CrlKind,
        base_number: Option<i64>,
        this_update: i64,
        next_update: i64,
        event: &AuditEvent,
    ) -> Result<CrlReservation, LedgerError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO crl_numbers (issuer_id, last_number) VALUES ($1, 0) ON CONFLICT (issuer_id) DO NOTHING",
        )
        .bind(issuer_id)
        .execute(&mut *tx)
        .await?;
        let number: i64 = sqlx::query(
            "UPDATE crl_numbers SET last_number = last_number + 1 WHERE issuer_id = $1 RETURNING last_number",
        )
        .bind(issuer_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("last_number")?;
        let revocation_seq: i64 = sqlx::query("SELECT value FROM counters WHERE name = 'revocation'")
            .fetch_one(&mut *tx)
            .await?
            .try_get("value")?;
        sqlx::query(
            "INSERT INTO crls (issuer_id, crl_number, kind, base_number, revocation_seq, state, this_update, next_update, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'reserved', $6, $7, $8)",
        )
        .bind(issuer_id)
        .bind(number)
        .bind(kind.as_str())
        .bind(base_number)
        .bind(revocation_seq)
        .bind(this_update)
        .bind(next_update)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        let mut event = event.clone();
        event.detail["crl_number"] = serde_json::json!(number);
        audit::insert(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(CrlReservation { number, revocation_seq })
    }

    /// Streams the issuer's certificates whose revocation state changed in
    /// `(after_seq, upto_seq]` and that expire at or after `not_after_min`, in revocation order,
    /// into `f` without collecting them. `without_entry` limits it to revoked certificates
    /// whose CRL entry was not precomputed (revoked before the entries were stored).
    pub async fn stream_revoked<E: From<LedgerError>>(
        &self,
        issuer_id: &str,
        after_seq: i64,
        upto_seq: i64,
        not_after_min: i64,
        without_entry: bool,
        mut f: impl FnMut(RevokedRow) -> Result<(), E>,
    ) -> Result<(), E> {
        let sql = if without_entry {
            "SELECT serial, status, revocation_reason, revoked_at, invalidity_date FROM certificates \
             WHERE issuer_id = $1 AND revocation_seq > $2 AND revocation_seq <= $3 AND not_after >= $4 \
             AND status = 'revoked' AND crl_entry IS NULL ORDER BY revocation_seq"
        } else {
            "SELECT serial, status, revocation_reason, revoked_at, invalidity_date FROM certificates \
             WHERE issuer_id = $1 AND revocation_seq > $2 AND revocation_seq <= $3 AND not_after >= $4 \
             ORDER BY revocation_seq"
        };
        let mut conn = self.conn().await.map_err(LedgerError::from)?;
        let mut rows =
            sqlx::query(sql).bind(issuer_id).bind(after_seq).bind(upto_seq).bind(not_after_min).fetch(&mut *conn);
        while let Some(row) = rows.try_next().await.map_err(LedgerError::from)? {
            f(revoked_row(&row)?)?;
        }
        Ok(())
    }

    /// One chunk of precomputed CRL entries of currently revoked certificates with a revocation
    /// sequence in `(after_seq, upto_seq]`, concatenated by the database (one row crosses the
    /// driver per `limit` entries). Returns the bytes, how many entries they hold and the last
    /// sequence included (the next chunk's `after_seq`), or `None` when nothing is left.
    pub async fn revoked_entries_chunk(
        &self,
        issuer_id: &str,
        after_seq: i64,
        upto_seq: i64,
        not_after_min: i64,
        limit: i64,
    ) -> Result<Option<(Vec<u8>, i64, i64)>, LedgerError> {
        let sql = match self.dialect {
            super::Dialect::Sqlite => {
                "SELECT CAST(group_concat(crl_entry, '') AS BLOB) AS entries, COUNT(*) AS n, MAX(revocation_seq) AS last \
                 FROM (SELECT crl_entry, revocation_seq FROM certificates WHERE issuer_id = $1 AND revocation_seq > $2 \
                 AND revocation_seq <= $3 AND not_after >= $4 AND status = 'revoked' AND crl_entry IS NOT NULL \
                 ORDER BY revocation_seq LIMIT $5) t"
            }
            super::Dialect::Postgres => {
                "SELECT string_agg(crl_entry, ''::bytea ORDER BY revocation_seq) AS entries, COUNT(*) AS n, \
                 MAX(revocation_seq) AS last \
                 FROM (SELECT crl_entry, revocation_seq FROM certificates WHERE issuer_id = $1 AND revocation_seq > $2 \
                 AND revocation_seq <= $3 AND not_after >= $4 AND status = 'revoked' AND crl_entry IS NOT NULL \
                 ORDER BY revocation_seq LIMIT $5) t"
            }
        };
        let row = sqlx::query(sql)
            .bind(issuer_id)
            .bind(after_seq)
            .bind(upto_seq)
            .bind(not_after_min)
            .bind(limit)
            .fetch_one(&mut *self.conn().await?)
            .await?;
        let n: i64 = row.try_get("n")?;
        if n == 0 {
            return Ok(None);
        }
        let entries: Option<Vec<u8>> = row.try_get("entries")?;
        let last: Option<i64> = row.try_get("last")?;
        Ok(Some((entries.unwrap_or_default(), n, last.unwrap_or(upto_seq))))
    }

    /// Stores the signed CRL and marks it published, with its audit row.
    pub async fn publish_crl(
        &self,
        issuer_id: &str,
        number: i64,
        der: &[u8],
        entries: i64,
        event: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE crls SET state = 'published', der = $1, entries = $2 WHERE issuer_id = $3 AND crl_number = $4 AND state = 'reserved'",
        )
        .bind(der.to_vec())
        .bind(entries)
        .bind(issuer_id)
        .bind(number)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(LedgerError::Conflict(format!("CRL {issuer_id}/{number} is not reserved")));
        }
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Aborts every CRL still `reserved` that was reserved before `before` (its process stopped
    /// between the cRLNumber's reservation and the publication), with one audit row naming them;
    /// returns how many. Their numbers stay used, so cRLNumbers still only go up. Run with the
    /// cleanup of interrupted certificate reservations (at start and periodically).
    pub async fn abort_interrupted_crls(&self, before: i64, event: &AuditEvent) -> Result<u64, LedgerError> {
        let mut tx = self.begin().await?;
        let rows = sqlx::query(
            "SELECT issuer_id, crl_number FROM crls WHERE state = 'reserved' AND created_at < $1 \
             ORDER BY issuer_id, crl_number",
        )
        .bind(before)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut aborted = Vec::with_capacity(rows.len());
        for r in &rows {
            let (issuer_id, number): (String, i64) = (r.try_get("issuer_id")?, r.try_get("crl_number")?);
            sqlx::query(
                "UPDATE crls SET state = 'aborted' WHERE issuer_id = $1 AND crl_number = $2 AND state = 'reserved'",
            )
            .bind(&issuer_id)
            .bind(number)
            .execute(&mut *tx)
            .await?;
            aborted.push(serde_json::json!({ "ca": issuer_id, "crl_number": number }));
        }
        let mut event = event.clone();
        event.detail = serde_json::json!({ "stage": "interrupted", "aborted_crls": aborted });
        audit::insert(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(aborted.len() as u64)
    }

    /// Marks a reserved CRL aborted (its number stays used), with its audit row.
    pub async fn abort_crl(&self, issuer_id: &str, number: i64, event: &AuditEvent) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE crls SET state = 'aborted' WHERE issuer_id = $1 AND crl_number = $2 AND state = 'reserved'",
        )
        .bind(issuer_id)
        .bind(number)
        .execute(&mut *tx)
        .await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest published CRL of `kind` for the issuer; `with_der` false skips the body.
    pub async fn latest_crl(
        &self,
        issuer_id: &str,
        kind: CrlKind,
        with_der: bool,
    ) -> Result<Option<CrlRecord>, LedgerError> {
        let sql = if with_der {
            "SELECT crl_number, base_number, revocation_seq, this_update, next_update, der FROM crls \
             WHERE issuer_id = $1 AND kind = $2 AND state = 'published' ORDER BY crl_number DESC LIMIT 1"
        } else {
            "SELECT crl_number, base_number, revocation_seq, this_update, next_update FROM crls \
             WHERE issuer_id = $1 AND kind = $2 AND state = 'published' ORDER BY crl_number DESC LIMIT 1"
        };
        let row = sqlx::query(sql).bind(issuer_id).bind(kind.as_str()).fetch_optional(&mut *self.conn().await?).await?;
        row.map(|r| {
            Ok(CrlRecord {
                number: r.try_get("crl_number")?,
                base_number: r.try_get("base_number")?,
                revocation_seq: r.try_get("revocation_seq")?,
                this_update: r.try_get("this_update")?,
                next_update: r.try_get("next_update")?,
                der: if with_der { r.try_get::<Option<Vec<u8>>, _>("der")?.unwrap_or_default() } else { Vec::new() },
            })
        })
        .transpose()
    }

    /// Every cRLNumber ever reserved for the issuer, in order (for audits and tests).
    pub async fn crl_numbers(&self, issuer_id: &str) -> Result<Vec<(i64, String)>, LedgerError> {
        let rows = sqlx::query("SELECT crl_number, state FROM crls WHERE issuer_id = $1 ORDER BY crl_number")
            .bind(issuer_id)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("crl_number")?, r.try_get("state")?))).collect()
    }

    /// The newest revocation sequence among the issuer's certificates (0 if none).
    pub async fn latest_revocation_seq(&self, issuer_id: &str) -> Result<i64, LedgerError> {
        let row = sqlx::query("SELECT MAX(revocation_seq) AS m FROM certificates WHERE issuer_id = $1")
            .bind(issuer_id)
            .fetch_one(&mut *self.conn().await?)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("m")?.unwrap_or(0))
    }
}

fn revoked_row(r: &AnyRow) -> Result<RevokedRow, LedgerError> {
    let status: String = r.try_get("status")?;
    Ok(RevokedRow {
        serial: r.try_get("serial")?,
        revoked: status == "revoked",
        reason: r.try_get("revocation_reason")?,
        revoked_at: r.try_get("revoked_at")?,
        invalidity_date: r.try_get("invalidity_date")?,
    })
}
