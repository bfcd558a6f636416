//! PostgreSQL: the two issuance units (reserve, commit) as one data-modifying `WITH` statement
//! each, instead of `BEGIN`, three or five statements and `COMMIT`. (`acme.rs` writes a new
//! order and its authorizations the same way, with nothing to gate.)
//!
//! On PostgreSQL every statement costs a round trip, and most of the database's CPU per
//! statement is spent around it (protocol, wake-ups, transaction start and end) rather than in
//! the executor; these two units ran twelve of the thirty-odd statements of an ACME order. A
//! statement is its own transaction, so each unit stays atomic. The condition that the
//! multi-statement form checks between statements (the ACME order is `pending`; the SCEP
//! transaction is new; the reservation is `reserved`) gates every other part of the statement
//! instead (`… FROM gate`), so when it does not hold nothing changes, and the row count the
//! statement returns says so.
//! SQLite has no data-modifying `WITH` and no round trips; it keeps the transaction in
//! `certificates.rs`, which is the reference for what each unit writes.

use sqlx::{AssertSqlSafe, Row};

use super::{
    audit,
    certificates::{bind_certificate, certificate_insert_columns, new_transaction, not_new},
    now, ocsp, CertRecord, Ledger, LedgerError, OcspRecord, Reservation,
};
use crate::audit::AuditEvent;

/// The audit row of `from`'s row, its parameters from `$first` ([`audit::bind`]).
fn audit_insert(first: usize, from: &str) -> String {
    format!("{} SELECT {} FROM {from}", audit::audit_insert_sql!(), placeholders(first, 7))
}

/// `$first, …` for `n` parameters.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `$1..$6`: the reservation; `$7..$13`: its audit row; `$14`: the ACME order it claims.
fn reserve_statement(r: &Reservation) -> String {
    let new_transaction = if r.one_per_requester { concat!(" AND ", new_transaction!()) } else { "" };
    let gate = match r.acme_order {
        Some(_) => format!(
            "gate AS (UPDATE acme_orders SET status = 'processing', approval_id = NULL \
             WHERE id = $14 AND status = 'pending'{new_transaction} RETURNING id)"
        ),
        None => format!("gate AS (SELECT 1 WHERE TRUE{new_transaction})"),
    };
    format!(
        "WITH {gate}, \
         reserved AS (INSERT INTO reservations (serial, issuer_id, profile, requester, tbs_sha256, state, \
         created_at, updated_at, one_per_requester) SELECT $1, $2, $3, $4, $5, 'reserved', $6, $6, {flag} FROM gate \
         RETURNING serial), \
         audited AS ({}) \
         SELECT COUNT(*) AS n FROM reserved",
        audit_insert(7, "reserved"),
        flag = i64::from(r.one_per_requester),
    )
}

/// `$1..$15`: the certificate (`$15` its time of commit); `$16..$22`: its audit row; then its
/// first OCSP response (seven) and the ACME order it completes (one), when present.
fn record_statement(first_ocsp: bool, order: bool) -> String {
    let mut parts = vec![
        "gate AS (UPDATE reservations SET state = 'committed', updated_at = $15 \
         WHERE serial = $1 AND state = 'reserved' RETURNING serial)"
            .to_owned(),
        concat!(
            "certified AS (INSERT INTO certificates (",
            certificate_insert_columns!(),
            ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM gate)"
        )
        .to_owned(),
        format!("audited AS ({})", audit_insert(16, "gate")),
    ];
    let mut next = 23;
    if first_ocsp {
        parts.push(format!(
            concat!("answered AS (", ocsp::upsert_response_sql!("SELECT {} FROM gate"), ")"),
            placeholders(next, 7)
        ));
        next += 7;
    }
    if order {
        parts.push(format!(
            "completed AS (UPDATE acme_orders SET status = 'valid', certificate_serial = $1 \
             WHERE id = ${next} AND EXISTS (SELECT 1 FROM gate))"
        ));
    }
    format!("WITH {} SELECT COUNT(*) AS n FROM gate", parts.join(", "))
}

impl Ledger {
    /// [`Ledger::reserve_issuance`] on PostgreSQL.
    pub(super) async fn reserve_issuance_pg(&self, r: &Reservation, event: &AuditEvent) -> Result<(), LedgerError> {
        let sql = reserve_statement(r);
        let t = now();
        let q = sqlx::query(AssertSqlSafe(sql))
            .bind(&r.serial)
            .bind(&r.issuer_id)
            .bind(&r.profile)
            .bind(&r.requester)
            .bind(&r.tbs_sha256)
            .bind(t);
        let mut q = audit::bind(q, event);
        if let Some(order) = &r.acme_order {
            q = q.bind(order);
        }
        let mut tx = self.begin_single().await?;
        if r.one_per_requester {
            sqlx::query(super::certificates::ABORT_INTERRUPTED_OF_REQUESTER)
                .bind(&r.requester)
                .bind(t)
                .execute(&mut *tx)
                .await?;
        }
        let row =
            q.fetch_one(&mut *tx).await.map_err(|e| super::certificates::one_per_requester_conflict(r, e.into()))?;
        let n: i64 = row.try_get("n")?;
        tx.commit().await?;
        match (n, &r.acme_order) {
            (1, _) => {
                event.trace();
                Ok(())
            }
            (_, Some(order)) => Err(LedgerError::Conflict(format!("ACME order {order} is not pending"))),
            (_, None) if r.one_per_requester => Err(LedgerError::Conflict(not_new(r))),
            (_, None) => Err(LedgerError::Corrupt(format!("reservation {} was not written", r.serial))),
        }
    }

    /// [`Ledger::record_issued`] on PostgreSQL.
    pub(super) async fn record_issued_pg(
        &self,
        c: &CertRecord,
        event: &AuditEvent,
        acme_order: Option<&str>,
        first_ocsp: Option<&OcspRecord>,
    ) -> Result<(), LedgerError> {
        let sql = record_statement(first_ocsp.is_some(), acme_order.is_some());
        let q = bind_certificate(sqlx::query(AssertSqlSafe(sql)), c, now());
        let mut q = audit::bind(q, event);
        if let Some(r) = first_ocsp {
            q = ocsp::bind_response(q, r);
        }
        if let Some(order) = acme_order {
            q = q.bind(order);
        }
        let mut tx = self.begin_single().await?;
        let n: i64 = q.fetch_one(&mut *tx).await?.try_get("n")?;
        tx.commit().await?;
        if n != 1 {
            return Err(LedgerError::Conflict(format!("reservation {} is not open", c.serial)));
        }
        event.trace();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$n` a statement names is bound, in order, and none is skipped.
    fn numbered(sql: &str) -> Vec<usize> {
        let mut seen: Vec<usize> = sql
            .split('$')
            .skip(1)
            .filter_map(|s| s.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok())
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen
    }

    fn reservation(order: bool, one_per_requester: bool) -> Reservation {
        Reservation {
            serial: "01".into(),
            issuer_id: "ec".into(),
            profile: "p".into(),
            requester: "scep:lab/1".into(),
            tbs_sha256: "00".into(),
            acme_order: order.then(|| "o".to_owned()),
            one_per_requester,
        }
    }

    #[test]
    fn statements_number_their_parameters_without_gaps() {
        for (sql, expected) in [
            (reserve_statement(&reservation(false, false)), 13),
            (reserve_statement(&reservation(false, true)), 13),
            (reserve_statement(&reservation(true, false)), 14),
            (reserve_statement(&reservation(true, true)), 14),
            (record_statement(false, false), 22),
            (record_statement(true, false), 29),
            (record_statement(false, true), 23),
            (record_statement(true, true), 30),
        ] {
            assert_eq!(numbered(&sql), (1..=expected).collect::<Vec<_>>(), "{sql}");
        }
    }
}
