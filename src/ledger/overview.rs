//! Aggregates for the dashboard's overview and discovery pages: live certificates expiring per
//! day over the next quarter (one range on the notAfter index), unowned certificates,
//! discovery findings, renewal figures per tier, and the endpoints discovery has seen. Counts
//! only: no certificate row leaves the database.

use serde::Serialize;
use sqlx::Row;

use super::{Ledger, LedgerError};

/// Days the expiry histogram covers (13 weeks).
pub const HORIZON_DAYS: i64 = 91;

/// The overview's aggregates besides the status × tier counts of `inventory_stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OverviewCounts {
    /// Live (valid, unsuperseded) certificates whose notAfter falls on day `i` after now
    /// (`(now + i·86400, now + (i+1)·86400]`), for `i` in `0..HORIZON_DAYS`.
    pub expiring_per_day: Vec<i64>,
    /// Certificates whose owner no owner record claims.
    pub unowned: i64,
    /// Certificates found by discovery scans.
    pub discovered: i64,
    /// Endpoints whose last scan had findings.
    pub endpoints_with_findings: i64,
    /// Endpoints scanned.
    pub endpoints: i64,
    /// Per tier: (tier, renewed certificates, average seconds between the successor's
    /// notBefore and the predecessor's notAfter).
    pub renewals: Vec<(String, i64, Option<f64>)>,
}

/// One endpoint discovery has seen.
#[derive(Debug, Clone, Serialize)]
pub struct SeenEndpoint {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: i64,
    /// SNI sent ('' for none).
    pub sni: String,
    /// Fingerprint of the leaf served at the last scan.
    pub fingerprint: String,
    /// Subject of that leaf, when it is in the inventory.
    pub subject: Option<String>,
    /// Its notAfter, when it is in the inventory.
    pub not_after: Option<i64>,
    /// TLS version negotiated.
    pub tls_version: Option<String>,
    /// Findings of the last scan.
    pub findings: Vec<String>,
    /// Last scan.
    pub last_seen: i64,
}

impl Ledger {
    /// The overview's aggregates at `now`.
    pub async fn overview_counts(&self, now: i64) -> Result<OverviewCounts, LedgerError> {
        let mut conn = self.conn().await?;
        let end = now + HORIZON_DAYS * 86_400;
        // The notAfter indexes bound both scans to the horizon.
        let rows = sqlx::query(
            "SELECT d, COUNT(*) AS n FROM (\
               SELECT (not_after - $1 - 1) / 86400 AS d FROM certificates \
                 WHERE not_after > $1 AND not_after <= $2 AND status = 'valid' AND superseded_by IS NULL \
               UNION ALL \
               SELECT (not_after - $1 - 1) / 86400 AS d FROM external_certificates \
                 WHERE not_after > $1 AND not_after <= $2\
             ) e GROUP BY d ORDER BY d",
        )
        .bind(now)
        .bind(end)
        .fetch_all(&mut *conn)
        .await?;
        let mut per_day = vec![0i64; HORIZON_DAYS as usize];
        for r in &rows {
            let d: i64 = r.try_get("d")?;
            let n: i64 = r.try_get("n")?;
            if let Some(slot) = usize::try_from(d).ok().and_then(|d| per_day.get_mut(d)) {
                *slot += n;
            }
        }
        let count = |r: &sqlx::any::AnyRow| -> Result<i64, LedgerError> { Ok(r.try_get::<i64, _>("n")?) };
        let unowned = count(
            &sqlx::query(
                "SELECT (SELECT COUNT(*) FROM certificates WHERE owner NOT IN (SELECT name FROM owners)) + \
                 (SELECT COUNT(*) FROM external_certificates WHERE owner NOT IN (SELECT name FROM owners)) AS n",
            )
            .fetch_one(&mut *conn)
            .await?,
        )?;
        let discovered = count(
            &sqlx::query("SELECT COUNT(*) AS n FROM external_certificates WHERE source = 'discovery'")
                .fetch_one(&mut *conn)
                .await?,
        )?;
        let endpoints = count(&sqlx::query("SELECT COUNT(*) AS n FROM endpoints").fetch_one(&mut *conn).await?)?;
        let endpoints_with_findings = count(
            &sqlx::query("SELECT COUNT(*) AS n FROM endpoints WHERE findings <> '[]'").fetch_one(&mut *conn).await?,
        )?;
        // Renewals: the successor links of `renews_serial` (a partial index holds only those).
        let rows = sqlx::query(
            "SELECT s.tier AS tier, COUNT(*) AS n, AVG(CAST(p.not_after - s.not_before AS DOUBLE PRECISION)) AS lead \
             FROM certificates s JOIN certificates p ON p.serial = s.renews_serial \
             WHERE s.renews_serial IS NOT NULL GROUP BY s.tier ORDER BY s.tier",
        )
        .fetch_all(&mut *conn)
        .await?;
        let renewals = rows
            .iter()
            .map(|r| Ok((r.try_get("tier")?, r.try_get("n")?, r.try_get::<Option<f64>, _>("lead")?)))
            .collect::<Result<Vec<_>, LedgerError>>()?;
        Ok(OverviewCounts {
            expiring_per_day: per_day,
            unowned,
            discovered,
            endpoints_with_findings,
            endpoints,
            renewals,
        })
    }

    /// Up to `limit` endpoints, those with findings first, then by host.
    pub async fn seen_endpoints(&self, limit: i64) -> Result<Vec<SeenEndpoint>, LedgerError> {
        let rows = sqlx::query(
            "SELECT e.host, e.port, e.sni, e.fingerprint_sha256, e.tls_version, e.findings, e.last_seen, \
             COALESCE(c.subject, x.subject) AS subject, COALESCE(c.not_after, x.not_after) AS not_after \
             FROM endpoints e \
             LEFT JOIN certificates c ON c.fingerprint_sha256 = e.fingerprint_sha256 \
             LEFT JOIN external_certificates x ON x.fingerprint_sha256 = e.fingerprint_sha256 \
             ORDER BY CASE WHEN e.findings <> '[]' THEN 0 ELSE 1 END, e.host, e.port, e.sni LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                let findings: String = r.try_get("findings")?;
                Ok(SeenEndpoint {
                    host: r.try_get("host")?,
                    port: r.try_get("port")?,
                    sni: r.try_get("sni")?,
                    fingerprint: r.try_get("fingerprint_sha256")?,
                    subject: r.try_get("subject")?,
                    not_after: r.try_get("not_after")?,
                    tls_version: r.try_get("tls_version")?,
                    findings: serde_json::from_str(&findings).unwrap_or_default(),
                    last_seen: r.try_get("last_seen")?,
                })
            })
            .collect()
    }
}
