//! What the ledger benchmarks share: a ledger seeded with many certificates in a few
//! statements, latency percentiles, the process's peak RSS, the RESULT lines.

#![allow(dead_code, unreachable_pub)]

pub mod result;
pub use result::{result, slug};

use std::time::{Duration, Instant};

use sqlx::Connection;

/// Seconds per day.
pub const DAY: i64 = 86_400;
/// Owners the seeded certificates are spread over (`team0`..).
pub const OWNERS: i64 = 500;
const SEED_BATCH: i64 = 50_000;

/// Now, Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Seeds `count` certificates (and their reservations) and the owners, in batches.
pub async fn seed(url: &str, count: i64) -> Duration {
    sqlx::any::install_default_drivers();
    let started = Instant::now();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let t = now();
    for first in (0..count).step_by(SEED_BATCH as usize) {
        let last = (first + SEED_BATCH).min(count) - 1;
        let series = format!(
            "WITH RECURSIVE s(i) AS (SELECT CAST({first} AS BIGINT) UNION ALL SELECT i + 1 FROM s WHERE i < {last})"
        );
        // The statements hold numbers computed here only, no input.
        let reservations = format!(
            "{series} INSERT INTO reservations (serial, issuer_id, profile, requester, tbs_sha256, state, created_at, updated_at) \
             SELECT printf('%032x', i), 'ec', 'tls-server', 'acme:account/' || (i % 1000), '', 'committed', {t}, {t} FROM s"
        );
        let certificates = format!(
            "{series} INSERT INTO certificates (serial, issuer_id, subject, sans, fingerprint_sha256, not_before, not_after, \
             profile, requester, owner, tier, status, der, created_at) \
             SELECT printf('%032x', i), 'ec', 'CN=host' || i || '.bench.test', '[\"dns:host' || i || '.bench.test\"]', \
             printf('%064x', i), {nb}, {t} + ((i * 7919) % 365 - 30) * {DAY} + (i % 86400), 'tls-server', \
             'acme:account/' || (i % 1000), 'team' || (i % {OWNERS}), \
             CASE i % 10 WHEN 0 THEN 'customer-facing' WHEN 1 THEN 'customer-facing' WHEN 2 THEN 'network-critical' \
             WHEN 3 THEN 'network-critical' ELSE 'internal' END, \
             CASE WHEN i % 100 = 7 THEN 'revoked' ELSE 'valid' END, X'00', {t} FROM s",
            nb = t - 30 * DAY
        );
        let pg = url.starts_with("postgres");
        for sql in [reservations, certificates] {
            let sql = if pg {
                sql.replace("printf('%032x', i)", "lpad(to_hex(i), 32, '0')")
                    .replace("printf('%064x', i)", "lpad(to_hex(i), 64, '0')")
                    .replace("X'00'", "'\\x00'::bytea")
            } else {
                sql
            };
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
        }
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO owners (name, kind, email, webhook_format, created_at, updated_at) \
         VALUES ('security-lead', 'person', 'ciso@bench.test', 'json', {t}, {t})"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    for o in 0..OWNERS {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO owners (name, kind, email, webhook_format, created_at, updated_at) \
             VALUES ('team{o}', 'team', 'team{o}@bench.test', 'json', {t}, {t})"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    // Statistics for the planner; on PostgreSQL also the visibility map autovacuum keeps for a
    // table that grew over time (without it an index-only count visits every heap page).
    let analyze = if url.starts_with("postgres") { "VACUUM ANALYZE" } else { "ANALYZE" };
    sqlx::query(analyze).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    started.elapsed()
}

/// p50 and p99 of `runs` calls of `f`, in milliseconds, and the rows of the last call.
pub async fn latency<F, Fut>(runs: usize, mut f: F) -> (f64, f64, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    // One warm-up run: the figures are for a warm cache and a prepared statement.
    let mut rows = f().await;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        rows = f().await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99), rows)
}

pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next().and_then(|k| k.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}
