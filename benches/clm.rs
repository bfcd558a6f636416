//! CLM at scale: a ledger seeded with `PRIVCA_BENCH_CLM_COUNT` certificates (default
//! 1,000,000: 500 owners with an email address and a security lead, three tiers, expiries spread from 30 days ago to 335
//! days ahead, 1 % revoked), on SQLite and (with `PRIVCA_TEST_PG_URL`) PostgreSQL:
//!
//! * the policy sweep (`clm::run_policy`): the first one, which decides every certificate inside
//!   a notice window, and the next one, which finds nothing new (goal: < 10 s);
//! * the inventory queries an operator or the admin API runs (`inventory list` filters, 1,000
//!   rows a page): p50 and p99 over 30 runs each after one warm-up run (goal: p99 < 100 ms);
//! * the dashboard overview's figures (counts by tier and status, expiries per day, unowned,
//!   discovery, renewals): p50 and p99 over 30 runs (goal: < 200 ms);
//! * the process's peak RSS.
//!
//! Full run:  `cargo bench --bench clm`
//! Smoke run: `PRIVCA_BENCH_CLM_COUNT=5000 cargo test --bench clm` (seconds)
//! One database only: `PRIVCA_BENCH_ONLY=sqlite` or `PRIVCA_BENCH_ONLY=postgres`; with
//! `PRIVCA_BENCH_KEEP_DB=1` the PostgreSQL database is kept (its name is printed) for `EXPLAIN`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use privca::{
    clm,
    config::clm::ClmConfig,
    ledger::{InventoryFilter, InventoryStatus, Ledger},
    policy::Tier,
};
use sqlx::Connection;

#[path = "common/mod.rs"]
mod common;

use common::{latency, now, peak_rss_mib, result, seed, slug, DAY};

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
    result("clm", &format!("privca/{name}/sweep-first"), "time_s", first_s, "s");
    result("clm", &format!("privca/{name}/sweep-next"), "time_s", second_s, "s");
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
        let series = format!("privca/{name}/list-{}", slug(what));
        result("clm", &series, "p50_ms", p50, "ms");
        result("clm", &series, "p99_ms", p99, "ms");
    }
    let (p50, p99, _) = latency(30, || async {
        let t = now();
        let (tiers, counts) = ledger.overview(t, &ft).await.unwrap();
        tiers.len() + counts.expiring_per_day.len()
    })
    .await;
    println!("{name}: dashboard overview figures: p50 {p50:.1} ms, p99 {p99:.1} ms [goal < 200 ms]");
    result("clm", &format!("privca/{name}/overview"), "p50_ms", p50, "ms");
    result("clm", &format!("privca/{name}/overview"), "p99_ms", p99, "ms");
    let started = Instant::now();
    clm::publish_metrics(&ledger, &config, t).await.unwrap();
    let scan = started.elapsed().as_secs_f64();
    println!("{name}: metrics scan {scan:.2} s");
    result("clm", &format!("privca/{name}/metrics-scan"), "time_s", scan, "s");
    println!("{name}: peak RSS {:.0} MiB", peak_rss_mib());
    result("clm", &format!("privca/{name}"), "peak_rss_mib", peak_rss_mib(), "MiB");
    ledger.close().await;
}

fn main() {
    let count: i64 = std::env::var("PRIVCA_BENCH_CLM_COUNT").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
        let only = std::env::var("PRIVCA_BENCH_ONLY").unwrap_or_default();
        if only != "postgres" {
            run("sqlite", &url, count).await;
        }
        let pg = std::env::var("PRIVCA_TEST_PG_URL").ok().filter(|u| !u.is_empty() && only != "sqlite");
        if let Some(admin) = pg {
            let db = format!("privca_bench_clm_{}", std::process::id());
            let mut server = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&mut server).await.unwrap();
            let url = format!("{}/{db}", admin.rsplit_once('/').unwrap().0);
            run("postgres", &url, count).await;
            if std::env::var_os("PRIVCA_BENCH_KEEP_DB").is_some() {
                println!("postgres: kept database {db}");
            } else {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {db}"))).execute(&mut server).await.unwrap();
            }
        }
    });
}
