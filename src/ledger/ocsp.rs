//! Units of work on pre-signed OCSP responses and the status lookups behind them.

use sqlx::{AnyConnection, Row};

use super::{
    statement::{bind_values, Statement},
    AnyQuery, Ledger, LedgerError,
};

/// A stored OCSP response.
#[derive(Debug, Clone)]
pub struct OcspRecord {
    /// Serial, hex.
    pub serial: String,
    /// CertID hash algorithm (`sha1`, `sha256`, ...).
    pub hash_alg: String,
    /// Issuer id.
    pub issuer_id: String,
    /// Revocation sequence reflected.
    pub revocation_seq: i64,
    /// Unix seconds.
    pub this_update: i64,
    /// Unix seconds.
    pub next_update: i64,
    /// DER OCSPResponse.
    pub der: Vec<u8>,
}

/// What the status of a certificate is, for an OCSP answer.
#[derive(Debug, Clone)]
pub struct CertStatusRow {
    /// Issuer id.
    pub issuer_id: String,
    /// Currently revoked.
    pub revoked: bool,
    /// Reason name.
    pub reason: Option<String>,
    /// Unix seconds.
    pub revoked_at: Option<i64>,
    /// Revocation sequence (0 if never revoked).
    pub revocation_seq: i64,
}

/// A response the pre-signer must (re)sign.
#[derive(Debug, Clone)]
pub struct OcspWork {
    /// Serial, hex.
    pub serial: String,
    /// CertID hash algorithm.
    pub hash_alg: String,
    /// Issuer id.
    pub issuer_id: String,
    /// True when a revocation is not reflected yet (signed first).
    pub revocation_pending: bool,
}

/// `INSERT INTO ocsp_responses (…) <rows> ON CONFLICT … DO UPDATE`: inserts or replaces the
/// response for (serial, hash algorithm); `<rows>` supplies [`bind_response`]'s seven values.
macro_rules! upsert_response_sql {
    ($rows:expr) => {
        concat!(
            "INSERT INTO ocsp_responses (serial, hash_alg, issuer_id, revocation_seq, this_update, next_update, der) ",
            $rows,
            " ON CONFLICT (serial, hash_alg) DO UPDATE SET issuer_id = excluded.issuer_id, \
             revocation_seq = excluded.revocation_seq, this_update = excluded.this_update, \
             next_update = excluded.next_update, der = excluded.der"
        )
    };
}
pub(super) use upsert_response_sql;

/// Inserts or replaces the response for (serial, hash algorithm).
pub(super) async fn upsert_response(conn: &mut AnyConnection, r: &OcspRecord) -> Result<(), LedgerError> {
    upsert_statement(r).execute(conn).await
}

/// [`upsert_response`] as a statement of a unit of work.
pub(super) fn upsert_statement(r: &OcspRecord) -> Statement {
    Statement::new(upsert_response_sql!("VALUES ($1, $2, $3, $4, $5, $6, $7)"), response_values(r))
}

/// A response's seven values, in column order (`serial` … `der`).
fn response_values(r: &OcspRecord) -> Vec<super::statement::Value> {
    vec![
        (&r.serial).into(),
        (&r.hash_alg).into(),
        (&r.issuer_id).into(),
        r.revocation_seq.into(),
        r.this_update.into(),
        r.next_update.into(),
        r.der.as_slice().into(),
    ]
}

/// Binds a response's seven values.
pub(super) fn bind_response<'q>(q: AnyQuery<'q>, r: &OcspRecord) -> AnyQuery<'q> {
    bind_values(q, response_values(r))
}

/// The select list of the OCSP work queries (`pending`: a stored response misses a revocation).
macro_rules! ocsp_work_columns {
    () => {
        "SELECT c.serial AS serial, COALESCE(o.hash_alg, 'sha1') AS hash_alg, c.issuer_id AS issuer_id, \
         CASE WHEN o.serial IS NOT NULL AND COALESCE(c.revocation_seq, 0) > o.revocation_seq THEN 1 ELSE 0 END AS pending, \
         c.not_after AS not_after "
    };
}

impl Ledger {
    /// Inserts or replaces the stored response for (serial, hash algorithm).
    pub async fn store_ocsp_response(&self, r: &OcspRecord) -> Result<(), LedgerError> {
        let mut tx = self.begin_single().await?;
        upsert_response(&mut tx, r).await?;
        Ok(tx.commit().await?)
    }

    /// The stored response for (serial, hash algorithm).
    pub async fn ocsp_response(&self, serial: &str, hash_alg: &str) -> Result<Option<OcspRecord>, LedgerError> {
        let row = sqlx::query(
            "SELECT serial, hash_alg, issuer_id, revocation_seq, this_update, next_update, der FROM ocsp_responses \
             WHERE serial = $1 AND hash_alg = $2",
        )
        .bind(serial)
        .bind(hash_alg)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.as_ref().map(record_row).transpose()
    }

    /// The stored response for (serial, hash algorithm) if it reflects the certificate's latest
    /// revocation: what the responder may serve. One that misses a revocation (not re-signed
    /// yet) is `None`, as if there were none.
    pub async fn current_ocsp_response(&self, serial: &str, hash_alg: &str) -> Result<Option<OcspRecord>, LedgerError> {
        let row = sqlx::query(
            "SELECT o.serial, o.hash_alg, o.issuer_id, o.revocation_seq, o.this_update, o.next_update, o.der \
             FROM ocsp_responses o JOIN certificates c ON c.serial = o.serial \
             WHERE o.serial = $1 AND o.hash_alg = $2 AND COALESCE(c.revocation_seq, 0) <= o.revocation_seq",
        )
        .bind(serial)
        .bind(hash_alg)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        row.as_ref().map(record_row).transpose()
    }

    /// Serials of CA `issuer_id` revoked with a sequence above `after`, at most `limit`, in
    /// sequence order (index `certificates_revocation_seq`).
    pub async fn revoked_serials_after(
        &self,
        issuer_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<String>, LedgerError> {
        let rows = sqlx::query(
            "SELECT serial FROM certificates WHERE issuer_id = $1 AND revocation_seq > $2 \
             ORDER BY revocation_seq LIMIT $3",
        )
        .bind(issuer_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("serial")?)).collect()
    }

    /// Status of a certificate (None: never issued).
    pub async fn certificate_status(&self, serial: &str) -> Result<Option<CertStatusRow>, LedgerError> {
        let row = sqlx::query(
            "SELECT issuer_id, status, revocation_reason, revoked_at, revocation_seq FROM certificates WHERE serial = $1",
        )
        .bind(serial)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        row.map(|r| {
            let status: String = r.try_get("status")?;
            Ok(CertStatusRow {
                issuer_id: r.try_get("issuer_id")?,
                revoked: status == "revoked",
                reason: r.try_get("revocation_reason")?,
                revoked_at: r.try_get("revoked_at")?,
                revocation_seq: r.try_get::<Option<i64>, _>("revocation_seq")?.unwrap_or(0),
            })
        })
        .transpose()
    }

    /// Up to `limit` responses to (re)sign, revocations first: live certificates without a
    /// SHA-1 response, and stored responses that miss a revocation or expire before
    /// `refresh_before`. Reads every live certificate: the pre-signer's periodic full sweep.
    pub async fn ocsp_work(&self, now: i64, refresh_before: i64, limit: i64) -> Result<Vec<OcspWork>, LedgerError> {
        let rows = sqlx::query(concat!(
            ocsp_work_columns!(),
            "FROM certificates c LEFT JOIN ocsp_responses o ON o.serial = c.serial \
             WHERE c.not_after > $1 AND (o.serial IS NULL OR o.next_update < $2 OR COALESCE(c.revocation_seq, 0) > o.revocation_seq) \
             ORDER BY pending DESC, not_after LIMIT $3"
        ))
        .bind(now)
        .bind(refresh_before)
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(ocsp_work_row).collect()
    }

    /// The revocation counter: the sequence of the latest revocation committed. A revocation
    /// takes its sequence in its own transaction, under the counter's row lock, so revocations
    /// become visible in sequence order: all those up to the value read are visible after it.
    pub async fn revocation_counter(&self) -> Result<i64, LedgerError> {
        Ok(sqlx::query("SELECT value FROM counters WHERE name = 'revocation'")
            .fetch_optional(&mut *self.conn().await?)
            .await?
            .map(|r| r.try_get("value"))
            .transpose()?
            .unwrap_or(0))
    }

    /// The same work as [`Ledger::ocsp_work`] found through indexes, for every tick of the
    /// pre-signer: revocations with a sequence above `revoked_after` whose response misses them,
    /// certificates created at `created_since` or later without a response, and responses that
    /// expire before `refresh_before`.
    pub async fn ocsp_recent_work(
        &self,
        now: i64,
        refresh_before: i64,
        revoked_after: i64,
        created_since: i64,
        limit: i64,
    ) -> Result<Vec<OcspWork>, LedgerError> {
        let rows = sqlx::query(concat!(
            "SELECT serial, hash_alg, issuer_id, pending, not_after FROM (",
            ocsp_work_columns!(),
            "FROM certificates c LEFT JOIN ocsp_responses o ON o.serial = c.serial \
             WHERE c.revocation_seq > $1 AND c.not_after > $2 AND (o.serial IS NULL OR c.revocation_seq > o.revocation_seq) \
             UNION ",
            ocsp_work_columns!(),
            "FROM certificates c LEFT JOIN ocsp_responses o ON o.serial = c.serial \
             WHERE c.created_at >= $3 AND c.not_after > $4 AND o.serial IS NULL \
             UNION ",
            ocsp_work_columns!(),
            "FROM ocsp_responses o JOIN certificates c ON c.serial = o.serial \
             WHERE o.next_update < $5 AND c.not_after > $6) w \
             ORDER BY pending DESC, not_after LIMIT $7"
        ))
        .bind(revoked_after)
        .bind(now)
        .bind(created_since)
        .bind(now)
        .bind(refresh_before)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(ocsp_work_row).collect()
    }

    /// The serial of the newest certificate of `profile` under `issuer_id`, whatever its status
    /// (what a successor of privca's own certificates follows, `ca::own_cert`).
    pub async fn newest_serial(&self, issuer_id: &str, profile: &str) -> Result<Option<String>, LedgerError> {
        let row = sqlx::query(
            "SELECT serial FROM certificates WHERE issuer_id = $1 AND profile = $2 \
             ORDER BY not_after DESC, created_at DESC, serial DESC LIMIT 1",
        )
        .bind(issuer_id)
        .bind(profile)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(row.map(|r| r.try_get("serial")).transpose()?)
    }

    /// The newest valid certificate of `profile` under `issuer_id` (privca's own certificates:
    /// the OCSP responders', the SCEP RA's).
    pub async fn latest_certificate(
        &self,
        issuer_id: &str,
        profile: &str,
    ) -> Result<Option<super::CertRecord>, LedgerError> {
        let row = sqlx::query(
            "SELECT serial FROM certificates WHERE issuer_id = $1 AND profile = $2 AND status = 'valid' \
             ORDER BY not_after DESC LIMIT 1",
        )
        .bind(issuer_id)
        .bind(profile)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        match row {
            Some(r) => self.certificate(&r.try_get::<String, _>("serial")?).await,
            None => Ok(None),
        }
    }
}

fn ocsp_work_row(r: &sqlx::any::AnyRow) -> Result<OcspWork, LedgerError> {
    Ok(OcspWork {
        serial: r.try_get("serial")?,
        hash_alg: r.try_get("hash_alg")?,
        issuer_id: r.try_get("issuer_id")?,
        revocation_pending: r.try_get::<i64, _>("pending")? == 1,
    })
}

/// An `ocsp_responses` row.
fn record_row(r: &sqlx::any::AnyRow) -> Result<OcspRecord, LedgerError> {
    Ok(OcspRecord {
        serial: r.try_get("serial")?,
        hash_alg: r.try_get("hash_alg")?,
        issuer_id: r.try_get("issuer_id")?,
        revocation_seq: r.try_get("revocation_seq")?,
        this_update: r.try_get("this_update")?,
        next_update: r.try_get("next_update")?,
        der: r.try_get("der")?,
    })
}
