//! Units of work on reservations, certificates and CA certificates.

use sqlx::{any::AnyRow, Row};

use super::{
    audit, now,
    statement::{bind_values, Statement, Value},
    AnyQuery, CaCertificate, CertFilter, CertRecord, CertStatus, Ledger, LedgerError, Reservation, RevokeOutcome,
};
use crate::{audit::AuditEvent, policy::Tier};

/// The columns [`cert_record`] reads, for `concat!` into static SQL.
macro_rules! cert_columns {
    () => {
        "serial, issuer_id, subject, sans, fingerprint_sha256, not_before, not_after, profile, requester, owner, \
         tier, status, revocation_reason, revoked_at, invalidity_date, renews_serial, renew_early_at, der"
    };
}

fn cert_record(r: &AnyRow) -> Result<CertRecord, LedgerError> {
    let sans: String = r.try_get("sans")?;
    let tier: String = r.try_get("tier")?;
    let status: String = r.try_get("status")?;
    Ok(CertRecord {
        serial: r.try_get("serial")?,
        issuer_id: r.try_get("issuer_id")?,
        subject: r.try_get("subject")?,
        sans: serde_json::from_str(&sans).map_err(|e| LedgerError::Corrupt(format!("sans: {e}")))?,
        fingerprint_sha256: r.try_get("fingerprint_sha256")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        profile: r.try_get("profile")?,
        requester: r.try_get("requester")?,
        owner: r.try_get("owner")?,
        tier: Tier::stored(tier),
        status: CertStatus::parse(&status).ok_or_else(|| LedgerError::Corrupt(format!("status `{status}`")))?,
        revocation_reason: r.try_get("revocation_reason")?,
        revoked_at: r.try_get("revoked_at")?,
        invalidity_date: r.try_get("invalidity_date")?,
        renews_serial: r.try_get("renews_serial")?,
        renew_early_at: r.try_get("renew_early_at")?,
        der: r.try_get("der")?,
    })
}

/// The columns a new certificate row fills, in [`bind_certificate`]'s order.
macro_rules! certificate_insert_columns {
    () => {
        "serial, issuer_id, subject, sans, fingerprint_sha256, not_before, not_after, profile, requester, owner, \
         tier, status, renews_serial, der, created_at"
    };
}
pub(super) use certificate_insert_columns;

/// The condition of a reservation with `one_per_requester` (`$4` is its requester, `$6` the
/// time of the reservation): the requester has no committed reservation, none in flight, and
/// no approval request. A reservation still `reserved` after ten minutes was interrupted (the
/// process stopped between reservation and commit) and no longer counts.
macro_rules! new_transaction {
    () => {
        "NOT EXISTS (SELECT 1 FROM reservations WHERE requester = $4 \
         AND (state = 'committed' OR (state = 'reserved' AND created_at > $6 - 600))) \
         AND NOT EXISTS (SELECT 1 FROM approvals WHERE requester = $4)"
    };
}
pub(super) use new_transaction;

/// Before a `one_per_requester` reservation: its requester's interrupted reservation (still
/// `reserved` ten minutes after it was made, `$2` = the new one's time) is aborted, so that the
/// unique index lets the transaction be retried. `$1` is the requester.
pub(super) const ABORT_INTERRUPTED_OF_REQUESTER: &str = "UPDATE reservations SET state = 'aborted', \
     failure = 'interrupted before commit', updated_at = $2 \
     WHERE requester = $1 AND one_per_requester = 1 AND state = 'reserved' AND created_at <= $2 - 600";

/// The conflict of a reservation with `one_per_requester` that was refused.
pub(super) fn not_new(r: &Reservation) -> String {
    format!("{} already has a certificate, one in flight or an approval request", r.requester)
}

/// A unique violation of a `one_per_requester` reservation (the index of migration 15: another
/// copy of the transaction won a race) is the same refusal as the check's.
pub(super) fn one_per_requester_conflict(r: &Reservation, e: LedgerError) -> LedgerError {
    match e {
        LedgerError::Conflict(_) if r.one_per_requester => LedgerError::Conflict(not_new(r)),
        e => e,
    }
}

/// A new certificate row's fifteen values (`created_at` = `t`).
fn certificate_values(c: &CertRecord, t: i64) -> Vec<Value> {
    vec![
        (&c.serial).into(),
        (&c.issuer_id).into(),
        (&c.subject).into(),
        serde_json::to_string(&c.sans).unwrap_or_else(|_| "[]".into()).into(),
        (&c.fingerprint_sha256).into(),
        c.not_before.into(),
        c.not_after.into(),
        (&c.profile).into(),
        (&c.requester).into(),
        (&c.owner).into(),
        c.tier.as_str().into(),
        c.status.as_str().into(),
        c.renews_serial.clone().into(),
        c.der.as_slice().into(),
        t.into(),
    ]
}

/// Binds a new certificate row's fifteen values (`created_at` = `t`).
pub(super) fn bind_certificate<'q>(q: AnyQuery<'q>, c: &CertRecord, t: i64) -> AnyQuery<'q> {
    bind_values(q, certificate_values(c, t))
}

impl Ledger {
    /// Records the reservation (state `reserved`) and its audit row before any signature, and
    /// claims its ACME order. A duplicate serial, an order that is not `pending`, or a
    /// requester that is not new when `one_per_requester` is set, is a `Conflict`. (On
    /// PostgreSQL as one statement: `single_statement.rs`.)
    pub async fn reserve_issuance(&self, r: &Reservation, event: &AuditEvent) -> Result<(), LedgerError> {
        let Some(kept) = self.sqlite() else {
            return self.reserve_issuance_pg(r, event).await;
        };
        let mut unit = Vec::with_capacity(3);
        if let Some(order) = &r.acme_order {
            unit.push(super::acme::claim_order_statement(order, None));
        }
        let values = vec![
            (&r.serial).into(),
            (&r.issuer_id).into(),
            (&r.profile).into(),
            (&r.requester).into(),
            (&r.tbs_sha256).into(),
            now().into(),
        ];
        if r.one_per_requester {
            unit.push(Statement::new(ABORT_INTERRUPTED_OF_REQUESTER, vec![(&r.requester).into(), now().into()]));
        }
        unit.push(if r.one_per_requester {
            Statement::new(
                concat!(
                    "INSERT INTO reservations (serial, issuer_id, profile, requester, tbs_sha256, state, created_at, updated_at, \
                     one_per_requester) SELECT $1, $2, $3, $4, $5, 'reserved', $6, $6, 1 WHERE ",
                    new_transaction!()
                ),
                values,
            )
            .one_row(not_new(r))
        } else {
            Statement::new(
                "INSERT INTO reservations (serial, issuer_id, profile, requester, tbs_sha256, state, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 'reserved', $6, $6)",
                values,
            )
        });
        unit.push(audit::insert_statement(event));
        kept.run_direct(&unit).await.map_err(|e| one_per_requester_conflict(r, e))?;
        event.trace();
        Ok(())
    }

    /// Aborts every reservation still `reserved` that was made before `before` (its process
    /// stopped between reservation and commit), with one audit row naming them; returns how
    /// many. Run at start and periodically, so that an interrupted SCEP transaction can be
    /// retried (the unique index of migration 15 holds its `reserved` row until then).
    pub async fn abort_interrupted_reservations(&self, before: i64, event: &AuditEvent) -> Result<u64, LedgerError> {
        let mut tx = self.begin().await?;
        let rows = sqlx::query(
            "SELECT serial FROM reservations WHERE state = 'reserved' AND created_at < $1 ORDER BY serial LIMIT 1000",
        )
        .bind(before)
        .fetch_all(&mut *tx)
        .await?;
        let serials: Vec<String> = rows.iter().map(|r| r.try_get("serial")).collect::<Result<_, _>>()?;
        if serials.is_empty() {
            return Ok(0);
        }
        let done = sqlx::query(
            "UPDATE reservations SET state = 'aborted', failure = 'interrupted before commit', updated_at = $1 \
             WHERE state = 'reserved' AND created_at < $2 AND serial <= $3",
        )
        .bind(now())
        .bind(before)
        .bind(serials.last().cloned().unwrap_or_default())
        .execute(&mut *tx)
        .await?;
        let mut event = event.clone();
        event.detail = serde_json::json!({ "stage": "interrupted", "aborted": serials });
        audit::insert(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Marks a reservation `aborted` with `failure`, plus its audit row, and hands its ACME
    /// order back (`pending`). The serial is never reused.
    pub async fn abort_reservation(
        &self,
        serial: &str,
        failure: &str,
        event: &AuditEvent,
        acme_order: Option<&str>,
    ) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        if let Some(order) = acme_order {
            super::acme::release_order(&mut tx, order).await?;
        }
        sqlx::query("UPDATE reservations SET state = 'aborted', failure = $1, updated_at = $2 WHERE serial = $3 AND state = 'reserved'")
            .bind(failure)
            .bind(now())
            .bind(serial)
            .execute(&mut *tx)
            .await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Commits an issued certificate: the certificate row, the reservation's `committed` state,
    /// the audit row, its first OCSP response and its ACME order's `valid` state, in one
    /// transaction. Fails with `Conflict` unless the reservation is still `reserved`. (On
    /// PostgreSQL as one statement: `single_statement.rs`.)
    pub async fn record_issued(
        &self,
        c: &CertRecord,
        event: &AuditEvent,
        acme_order: Option<&str>,
        ocsp: Option<&super::OcspRecord>,
    ) -> Result<(), LedgerError> {
        let Some(kept) = self.sqlite() else {
            return self.record_issued_pg(c, event, acme_order, ocsp).await;
        };
        let mut unit = Vec::with_capacity(5);
        if let Some(r) = ocsp {
            unit.push(super::ocsp::upsert_statement(r));
        }
        if let Some(order) = acme_order {
            unit.push(super::acme::complete_order_statement(order, &c.serial));
        }
        let t = now();
        unit.push(commit_reservation(&c.serial, t));
        unit.push(Statement::new(
            concat!(
                "INSERT INTO certificates (",
                certificate_insert_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ),
            certificate_values(c, t),
        ));
        unit.push(audit::insert_statement(event));
        kept.run_direct(&unit).await?;
        event.trace();
        Ok(())
    }

    /// One certificate by serial.
    pub async fn certificate(&self, serial: &str) -> Result<Option<CertRecord>, LedgerError> {
        Ok(self.certificates(&[serial.to_owned()]).await?.pop().flatten())
    }

    /// The certificates `serials` (answers in the same order; see [`Ledger::rows_by_key`]).
    pub async fn certificates(&self, serials: &[String]) -> Result<Vec<Option<CertRecord>>, LedgerError> {
        let select = concat!("SELECT ", cert_columns!(), " FROM certificates WHERE serial IN ");
        self.rows_by_key(select, "serial", serials, cert_record).await
    }

    /// The certificate whose SHA-256 fingerprint (lower-case hex) is `fingerprint`.
    pub async fn certificate_by_fingerprint(&self, fingerprint: &str) -> Result<Option<CertRecord>, LedgerError> {
        let row = sqlx::query(concat!("SELECT ", cert_columns!(), " FROM certificates WHERE fingerprint_sha256 = $1"))
            .bind(fingerprint)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref().map(cert_record).transpose()
    }

    /// Certificates matching `filter`, newest expiry last.
    pub async fn list_certificates(&self, filter: &CertFilter) -> Result<Vec<CertRecord>, LedgerError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            cert_columns!(),
            " FROM certificates \
             WHERE ($1 IS NULL OR (not_after <= $2 AND not_after > $3)) AND ($4 IS NULL OR owner = $5) \
             ORDER BY not_after, serial LIMIT $6"
        ))
        .bind(filter.expiring_before)
        .bind(filter.expiring_before.unwrap_or(0))
        .bind(now())
        .bind(filter.owner.clone())
        .bind(filter.owner.clone().unwrap_or_default())
        .bind(filter.limit.unwrap_or(i64::MAX))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(cert_record).collect()
    }

    /// Number of certificate rows.
    pub async fn count_certificates(&self) -> Result<i64, LedgerError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM certificates")
            .fetch_one(&mut *self.conn().await?)
            .await?
            .try_get("n")?)
    }

    /// State of a reservation (`reserved`, `committed`, `aborted`).
    pub async fn reservation_state(&self, serial: &str) -> Result<Option<String>, LedgerError> {
        let row = sqlx::query("SELECT state FROM reservations WHERE serial = $1")
            .bind(serial)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row.map(|r| r.try_get("state")).transpose()?)
    }

    /// Revokes `serial` with RFC 5280 `reason` at `at`, with its audit row. Idempotent:
    /// a second call reports [`RevokeOutcome::AlreadyRevoked`] and changes nothing.
    pub async fn revoke(
        &self,
        serial: &str,
        reason: &str,
        at: i64,
        invalidity_date: Option<i64>,
        crl_entry: &[u8],
        event: &AuditEvent,
    ) -> Result<RevokeOutcome, LedgerError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT status, revocation_reason FROM certificates WHERE serial = $1")
            .bind(serial)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| LedgerError::NotFound(format!("certificate {serial}")))?;
        let status: String = row.try_get("status")?;
        if status == CertStatus::Revoked.as_str() {
            let reason: Option<String> = row.try_get("revocation_reason")?;
            return Ok(RevokeOutcome::AlreadyRevoked(reason.unwrap_or_default()));
        }
        let seq = next_revocation_seq(&mut tx).await?;
        sqlx::query(
            "UPDATE certificates SET status = 'revoked', revocation_reason = $1, revoked_at = $2, invalidity_date = $3, \
             revocation_seq = $4, crl_entry = $5 WHERE serial = $6 AND status = 'valid'",
        )
        .bind(reason)
        .bind(at)
        .bind(invalidity_date)
        .bind(seq)
        .bind(crl_entry.to_vec())
        .bind(serial)
        .execute(&mut *tx)
        .await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(RevokeOutcome::Revoked)
    }

    /// Flags a valid certificate for early renewal at `at` (ACME ARI then suggests renewing
    /// now). False if it was already flagged or is not valid; `NotFound` if there is no such
    /// certificate.
    pub async fn flag_renew_early(&self, serial: &str, at: i64, event: &AuditEvent) -> Result<bool, LedgerError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE certificates SET renew_early_at = $1 WHERE serial = $2 \
             AND status = 'valid' AND renew_early_at IS NULL",
        )
        .bind(at)
        .bind(serial)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM certificates WHERE serial = $1")
                .bind(serial)
                .fetch_optional(&mut *tx)
                .await?;
            return match exists {
                Some(_) => Ok(false),
                None => Err(LedgerError::NotFound(format!("certificate {serial}"))),
            };
        }
        // The policy job looks at it at its next run.
        sqlx::query(
            "DELETE FROM clm_looks WHERE fingerprint = (SELECT fingerprint_sha256 FROM certificates WHERE serial = $1)",
        )
        .bind(serial)
        .execute(&mut *tx)
        .await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Lifts a `certificateHold` (RFC 5280 `removeFromCRL`): the certificate is valid again and
    /// the next delta CRL lists it with reason removeFromCRL. `Conflict` unless it is on hold.
    pub async fn release_hold(&self, serial: &str, event: &AuditEvent) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        let seq = next_revocation_seq(&mut tx).await?;
        let done = sqlx::query(
            "UPDATE certificates SET status = 'valid', revocation_reason = 'removeFromCRL', revocation_seq = $1, \
             crl_entry = NULL WHERE serial = $2 AND status = 'revoked' AND revocation_reason = 'certificateHold'",
        )
        .bind(seq)
        .bind(serial)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(LedgerError::Conflict(format!("certificate {serial} is not on hold")));
        }
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A CA certificate (`root` or an issuer id).
    pub async fn ca_certificate(&self, id: &str) -> Result<Option<CaCertificate>, LedgerError> {
        let row =
            sqlx::query("SELECT id, key_label, subject, der, chain_pem, not_after FROM ca_certificates WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *self.conn().await?)
                .await?;
        row.map(|r| {
            Ok(CaCertificate {
                id: r.try_get("id")?,
                key_label: r.try_get("key_label")?,
                subject: r.try_get("subject")?,
                der: r.try_get("der")?,
                chain_pem: r.try_get("chain_pem")?,
                not_after: r.try_get("not_after")?,
            })
        })
        .transpose()
    }

    /// Stores a CA certificate (first time only: a second store of the same id is a `Conflict`)
    /// and commits the reservation `serial` it was signed under, if privca signed it.
    pub async fn store_ca_certificate(
        &self,
        c: &CaCertificate,
        serial: Option<&str>,
        event: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        if let Some(serial) = serial {
            commit_reservation(serial, now()).execute(&mut tx).await?;
        }
        sqlx::query(
            "INSERT INTO ca_certificates (id, key_label, subject, der, chain_pem, not_after, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.id)
        .bind(&c.key_label)
        .bind(&c.subject)
        .bind(c.der.clone())
        .bind(&c.chain_pem)
        .bind(c.not_after)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Takes the next revocation sequence number. The counter row stays locked until the caller's
/// transaction commits, so sequence order is commit order (what delta CRLs rely on).
async fn next_revocation_seq(conn: &mut sqlx::AnyConnection) -> Result<i64, LedgerError> {
    Ok(sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'revocation' RETURNING value")
        .fetch_one(conn)
        .await?
        .try_get("value")?)
}

/// Moves a reservation from `reserved` to `committed` at `t`; `Conflict` if it is not open.
fn commit_reservation(serial: &str, t: i64) -> Statement {
    Statement::new(
        "UPDATE reservations SET state = 'committed', updated_at = $1 WHERE serial = $2 AND state = 'reserved'",
        vec![t.into(), serial.into()],
    )
    .one_row(format!("reservation {serial} is not open"))
}
