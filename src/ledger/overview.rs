//! Aggregates for the dashboard's overview and discovery pages: live certificates expiring per
//! day over the next quarter (one range on the notAfter index), unowned certificates,
//! discovery findings, renewal figures per tier, and the endpoints discovery has seen. Counts
//! only: no certificate row leaves the database.

use serde::Serialize;
use sqlx::Row;

use super::{ExpiringWindows, Ledger, LedgerError};
use crate::policy::Tier;

/// Days the expiry histogram covers (13 weeks).
pub const HORIZON_DAYS: i64 = 91;
/// Renewal links the average lead time is taken over.
pub const RENEWAL_SAMPLE: i64 = 5000;

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
    /// Certificates that renew another.
    pub renewed: i64,
    /// Per tier, over a sample of at most [`RENEWAL_SAMPLE`] renewals: (tier, renewals in the
    /// sample, average seconds between the successor's notBefore and the predecessor's
    /// notAfter).
    pub renewals: Vec<(String, i64, Option<f64>)>,
}

/// Inventory counts of one tier by derived status (the inventory's rule: revoked, superseded,
/// expired, expiring inside the tier's first notice threshold, valid).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TierCounts {
    /// Valid.
    pub valid: i64,
    /// Expiring.
    pub expiring: i64,
    /// Expired.
    pub expired: i64,
    /// Revoked.
    pub revoked: i64,
    /// Superseded.
    pub superseded: i64,
}

impl TierCounts {
    /// All of them.
    pub fn total(&self) -> i64 {
        self.valid + self.expiring + self.expired + self.revoked + self.superseded
    }

    /// The count of `status` (`valid`, `expiring`, …).
    pub fn get(&self, status: &str) -> i64 {
        match status {
            "valid" => self.valid,
            "expiring" => self.expiring,
            "expired" => self.expired,
            "revoked" => self.revoked,
            "superseded" => self.superseded,
            _ => 0,
        }
    }
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
    /// The dashboard overview's figures at `now`: [`Ledger::status_counts`] for the tiers of
    /// `windows` and [`Ledger::overview_counts`], read at the same time on two connections.
    pub async fn overview(
        &self,
        now: i64,
        windows: &ExpiringWindows,
    ) -> Result<(Vec<(Tier, TierCounts)>, OverviewCounts), LedgerError> {
        let names: Vec<&str> = windows.tiers.iter().map(|(t, _)| t.as_str()).collect();
        tokio::try_join!(self.status_counts(now, windows), self.overview_counts(now, &names))
    }

    /// The overview's aggregates at `now`. Each is bounded by an index: the expiries by
    /// `(tier, status, superseded_by, not_after)` over the horizon, the unowned by a skip scan
    /// of the owner indexes (one probe per distinct owner name, then the unclaimed names'
    /// ranges), the renewals' lead time by a sample of [`RENEWAL_SAMPLE`] renewal links.
    /// `tiers` are the configured tier names: listing them lets the expiries use the index.
    pub async fn overview_counts(&self, now: i64, tiers: &[&str]) -> Result<OverviewCounts, LedgerError> {
        let mut conn = self.conn().await?;
        let listed = (0..tiers.len().max(1)).map(|i| format!("${}", i + 3)).collect::<Vec<_>>().join(", ");
        // A range count per day rather than one GROUP BY over the quarter: the counts walk the
        // index in order and nothing is sorted (PostgreSQL would sort a quarter's rows, spilling
        // past work_mem, since it cannot tell the day takes only 91 values).
        let sql = format!(
            "WITH RECURSIVE g(d) AS (SELECT CAST(0 AS BIGINT) UNION ALL SELECT d + 1 FROM g WHERE d < $2 - 1) \
             SELECT g.d AS d, \
               (SELECT COUNT(*) FROM certificates WHERE tier IN ({listed}) AND status = 'valid' \
                 AND superseded_by IS NULL AND not_after > $1 + g.d * 86400 AND not_after <= $1 + (g.d + 1) * 86400) \
               + (SELECT COUNT(*) FROM external_certificates \
                 WHERE not_after > $1 + g.d * 86400 AND not_after <= $1 + (g.d + 1) * 86400) AS n \
             FROM g"
        );
        // Only placeholders are formatted in; the tier names are bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(HORIZON_DAYS);
        for t in tiers {
            query = query.bind(*t);
        }
        if tiers.is_empty() {
            query = query.bind(Tier::INTERNAL);
        }
        let rows = query.fetch_all(&mut *conn).await?;
        let mut per_day = vec![0i64; HORIZON_DAYS as usize];
        for r in &rows {
            let d: i64 = r.try_get("d")?;
            let n: i64 = r.try_get("n")?;
            if let Some(slot) = usize::try_from(d).ok().and_then(|d| per_day.get_mut(d)) {
                *slot += n;
            }
        }
        let count = |r: &sqlx::any::AnyRow| -> Result<i64, LedgerError> { Ok(r.try_get::<i64, _>("n")?) };
        let mut unowned = 0;
        for table in ["certificates", "external_certificates"] {
            let sql = format!(
                "WITH RECURSIVE o(name) AS (SELECT MIN(owner) FROM {table} UNION ALL \
                 SELECT (SELECT MIN(owner) FROM {table} WHERE owner > o.name) FROM o WHERE o.name IS NOT NULL) \
                 SELECT name FROM o WHERE name IS NOT NULL AND name NOT IN (SELECT name FROM owners)"
            );
            let names: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| r.try_get("name"))
                .collect::<Result<_, _>>()?;
            for name in names {
                let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE owner = $1");
                unowned += count(&sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).fetch_one(&mut *conn).await?)?;
            }
        }
        let discovered = count(
            &sqlx::query("SELECT COUNT(*) AS n FROM external_certificates WHERE source = 'discovery'")
                .fetch_one(&mut *conn)
                .await?,
        )?;
        let endpoints = count(&sqlx::query("SELECT COUNT(*) AS n FROM endpoints").fetch_one(&mut *conn).await?)?;
        let endpoints_with_findings = count(
            &sqlx::query("SELECT COUNT(*) AS n FROM endpoints WHERE findings <> '[]'").fetch_one(&mut *conn).await?,
        )?;
        let renewed = count(
            &sqlx::query("SELECT COUNT(*) AS n FROM certificates WHERE renews_serial IS NOT NULL")
                .fetch_one(&mut *conn)
                .await?,
        )?;
        // Serials are random: the first links in renews_serial order are a uniform sample.
        let rows = sqlx::query(
            "SELECT s.tier AS tier, COUNT(*) AS n, AVG(CAST(p.not_after - s.not_before AS DOUBLE PRECISION)) AS lead \
             FROM (SELECT tier, not_before, renews_serial FROM certificates WHERE renews_serial IS NOT NULL \
                   ORDER BY renews_serial LIMIT $1) s \
             JOIN certificates p ON p.serial = s.renews_serial GROUP BY s.tier ORDER BY s.tier",
        )
        .bind(RENEWAL_SAMPLE)
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
            renewed,
            renewals,
        })
    }

    /// Counts by derived status of each configured tier of `windows` at `now`, a tier's window
    /// being its first notice threshold. Range counts on `(tier, status, superseded_by,
    /// not_after)` and the external certificates' `(tier, not_after)`: index entries are
    /// counted, no row is read. The certificates of tier `internal` (the default tier, usually
    /// the largest, counted last) are what remains of the whole tables' counts, which both
    /// databases keep cheap.
    pub async fn status_counts(
        &self,
        now: i64,
        windows: &ExpiringWindows,
    ) -> Result<Vec<(Tier, TierCounts)>, LedgerError> {
        let mut tiers: Vec<Tier> = windows
            .tiers
            .iter()
            .map(|(t, _)| Tier::stored(t.clone()))
            .filter(|t| t.as_str() != Tier::INTERNAL)
            .collect();
        tiers.push(Tier::internal());
        // Each count on its own connection, at the same time: they are independent range
        // counts, and the database runs them on as many cores as it has.
        let all = async {
            let r = sqlx::query(
                "SELECT (SELECT COUNT(*) FROM certificates) AS n, (SELECT COUNT(*) FROM external_certificates) AS x",
            )
            .fetch_one(&mut *self.conn().await?)
            .await?;
            Ok::<_, LedgerError>(r.try_get::<i64, _>("n")? + r.try_get::<i64, _>("x")?)
        };
        let per_tier = futures_util::future::try_join_all(tiers.iter().map(|tier| {
            let soon = now.saturating_add(windows.of(tier.as_str()));
            self.tier_counts(tier.as_str(), now, soon, tier.as_str() != Tier::INTERNAL)
        }));
        let (all, per_tier) = tokio::try_join!(all, per_tier)?;
        let mut rest = all;
        let mut out = Vec::new();
        for (tier, (mut counts, total)) in tiers.into_iter().zip(per_tier) {
            // The certificates of `internal` (counted last) are what the other tiers leave.
            let total = total.unwrap_or(rest);
            rest -= total;
            counts.valid = total - counts.revoked - counts.superseded - counts.expired - counts.expiring;
            out.push((tier, counts));
        }
        Ok(out)
    }

    /// The counts of `tier` but valid (left 0) at `now`, expiring up to `soon`, and, when
    /// `with_total`, all its certificates (a range of its index).
    async fn tier_counts(
        &self,
        tier: &str,
        now: i64,
        soon: i64,
        with_total: bool,
    ) -> Result<(TierCounts, Option<i64>), LedgerError> {
        let totals = if with_total {
            "(SELECT COUNT(*) FROM certificates WHERE tier = $1) + \
             (SELECT COUNT(*) FROM external_certificates WHERE tier = $1)"
        } else {
            "CAST(NULL AS BIGINT)"
        };
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM certificates WHERE tier = $1 AND status = 'revoked') AS revoked, \
             (SELECT COUNT(*) FROM certificates WHERE tier = $1 AND status = 'valid' AND superseded_by IS NOT NULL) \
               AS superseded, \
             (SELECT COUNT(*) FROM certificates WHERE tier = $1 AND status = 'valid' AND superseded_by IS NULL \
               AND not_after <= $2) AS expired, \
             (SELECT COUNT(*) FROM certificates WHERE tier = $1 AND status = 'valid' AND superseded_by IS NULL \
               AND not_after > $2 AND not_after <= $3) AS expiring, \
             (SELECT COUNT(*) FROM external_certificates WHERE tier = $1 AND not_after <= $2) AS x_expired, \
             (SELECT COUNT(*) FROM external_certificates WHERE tier = $1 AND not_after > $2 AND not_after <= $3) \
               AS x_expiring, \
             {totals} AS total"
        );
        // Only one of two constant expressions is formatted in; every value is bound.
        let r = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tier)
            .bind(now)
            .bind(soon)
            .fetch_one(&mut *self.conn().await?)
            .await?;
        let n = |c: &str| -> Result<i64, LedgerError> { Ok(r.try_get::<i64, _>(c)?) };
        let counts = TierCounts {
            valid: 0,
            expiring: n("expiring")? + n("x_expiring")?,
            expired: n("expired")? + n("x_expired")?,
            revoked: n("revoked")?,
            superseded: n("superseded")?,
        };
        Ok((counts, r.try_get::<Option<i64>, _>("total")?))
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
