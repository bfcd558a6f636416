//! CLM at scale: a ledger seeded with `PRIVCA_BENCH_CLM_COUNT` certificates (default
//! 1,000,000: 500 owners with an email address and a security lead, three tiers, expiries spread from 30 days ago to 335
//! days ahead, 1 % revoked), on SQLite and (with `PRIVCA_TEST_PG_URL`) PostgreSQL:
//!
//! * the policy sweep (`clm::run_policy`): the first one, which decides every certificate inside
//!   a notice window, and the next one, which finds nothing new (goal: < 10 s);
//! * the inventory queries an operator or the admin API runs (`inventory list` filters, 1,000
//!   rows a page): p50 and p99 over 30 runs each after one warm-up run (goal: p99 < 100 ms);
//! * the process's peak RSS.
//!
//! Full run:  `cargo bench --bench clm`
//! Smoke run: `PRIVCA_BENCH_CLM_COUNT=5000 cargo test --bench clm` (seconds)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use privca::{
    clm,
    config::clm::ClmConfig,
    ledger::{InventoryFilter, InventoryStatus, Ledger},
    policy::Tier,
};
use sqlx::Connection;

const DAY: i64 = 86_400;
const OWNERS: i64 = 500;
const SEED_BATCH: i64 = 50_000;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Seeds `count` certificates (and their reservations) and the owners, in batches.
async fn seed(url: &str, count: i64) -> Duration {
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
    sqlx::query("ANALYZE").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    started.elapsed()
}

/// p50 and p99 of `runs` calls of `f`, in milliseconds, and the rows of the last call.
async fn latency<F, Fut>(runs: usize, mut f: F) -> (f64, f64, usize)
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

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next().and_then(|k| k.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn run(name: &str, url: &str, count: i64) {
    let ledger = Ledger::connect(url, 4).await.unwrap();
    let seeded = seed(url, count).await;
    println!("{name}: seeded {count} certificates in {:.1} s", seeded.as_secs_f64());
    let config = ClmConfig::default();
    let t = now();
    let started = Instant::now();
    let first = clm::run_policy(&ledger, &config, t).await.unwrap();
    let first_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let second = clm::run_policy(&ledger, &config, t + 60).await.unwrap();
    let second_s = started.elapsed().as_secs_f64();
    println!(
        "{name}: policy sweep, first: {first_s:.2} s ({} evaluated, {} queued; reading {:.1} s, writing {:.1} s); next: {second_s:.2} s ({} evaluated) [goal < 10 s]",
        first.evaluated, first.queued, first.read.as_secs_f64(), first.write.as_secs_f64(), second.evaluated
    );
    let ft = clm::first_threshold(&config);
    let filters: Vec<(&str, InventoryFilter)> = vec![
        (
            "expiring within 30 days",
            InventoryFilter { expiring_within: Some(30 * DAY), limit: 1000, ..Default::default() },
        ),
        ("owner team7", InventoryFilter { owner: Some("team7".into()), limit: 1000, ..Default::default() }),
        (
            "tier customer-facing",
            InventoryFilter { tier: Some(Tier::customer_facing()), limit: 1000, ..Default::default() },
        ),
        (
            "status expiring",
            InventoryFilter { status: Some(InventoryStatus::Expiring), limit: 1000, ..Default::default() },
        ),
        (
            "owner team7, tier network-critical, within 30 days",
            InventoryFilter {
                owner: Some("team7".into()),
                tier: Some(Tier::network_critical()),
                expiring_within: Some(30 * DAY),
                limit: 1000,
                ..Default::default()
            },
        ),
    ];
    for (what, filter) in &filters {
        let (p50, p99, rows) = latency(30, || async { ledger.inventory(filter, &ft).await.unwrap().len() }).await;
        println!("{name}: inventory list {what}: p50 {p50:.1} ms, p99 {p99:.1} ms ({rows} rows) [goal p99 < 100 ms]");
    }
    let started = Instant::now();
    clm::publish_metrics(&ledger, &config, t).await.unwrap();
    println!("{name}: metrics scan {:.2} s", started.elapsed().as_secs_f64());
    println!("{name}: peak RSS {:.0} MiB", peak_rss_mib());
    ledger.close().await;
}

fn main() {
    let count: i64 = std::env::var("PRIVCA_BENCH_CLM_COUNT").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
        run("sqlite", &url, count).await;
        if let Some(admin) = std::env::var("PRIVCA_TEST_PG_URL").ok().filter(|u| !u.is_empty()) {
            let db = format!("privca_bench_clm_{}", std::process::id());
            let mut server = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&mut server).await.unwrap();
            let url = format!("{}/{db}", admin.rsplit_once('/').unwrap().0);
            run("postgres", &url, count).await;
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {db}"))).execute(&mut server).await.unwrap();
        }
    });
}
