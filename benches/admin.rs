//! The admin API at scale: a CA (real SoftHSM2 token, the dev configuration) whose ledger is
//! seeded with `PRIVCA_BENCH_ADMIN_COUNT` certificates (default 1,000,000, spread like the CLM
//! benchmark's), on SQLite and (with `PRIVCA_TEST_PG_URL`) PostgreSQL:
//!
//! * the filtered certificate list through the API (`GET /api/v1/certificates` with an auditor
//!   token: authentication, ledger query, JSON), by tier, by owner, expiring within 30 days:
//!   p50 and p99 over 30 requests after one warm-up (goal: p99 < 100 ms); the same lists and the
//!   whole inventory in each `sort=` order;
//! * requests per second of one list at c=32 over HTTP (`wrk`, 2 threads), next to the raw
//!   `/healthz` rate of the same listener in the same run (the ratio is the API's cost).
//!
//! Full run:  `cargo bench --bench admin`
//! Smoke run: `PRIVCA_BENCH_ADMIN_COUNT=2000 PRIVCA_BENCH_SECONDS=1 cargo test --bench admin`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/mod.rs"]
mod common;

use std::{path::Path, process::Command};

use axum::{body::Body, http::Request, Router};
use common::{latency, result, seed, slug};
use privca::{admin::AdminState, app::App, ca::Requester, config::Config};
use tower::ServiceExt;

/// A CA on `database_url` in `dir`, with its token initialised, and an auditor token.
async fn open(dir: &Path, database_url: &str) -> (App, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dev = std::fs::read_to_string(root.join("conf/privca.dev.toml")).unwrap();
    let config = dev
        .replace("url = \"sqlite://privca.db\"", &format!("url = \"{database_url}\""))
        .replace("dir = \"profiles\"", &format!("dir = \"{}\"", root.join("conf/profiles").display()));
    let path = dir.join("privca.toml");
    std::fs::write(&path, config).unwrap();
    let config = Config::load(&path, Some(dir.to_owned())).unwrap();
    privca::signer::pkcs11::token::prepare_softhsm(&config.hsm, &config.data_dir).unwrap();
    let app = App::open(config).await.unwrap();
    app.bootstrap(false).await.unwrap();
    let (_, token) =
        privca::admin::access::create_token(&app.ledger, "auditor", 1, None, None, Some("bench"), &Requester::cli())
            .await
            .unwrap();
    (app, token.to_string())
}

async fn get(router: &Router, path: &str, token: &str) -> usize {
    let req =
        Request::builder().uri(path).header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    let body = axum::body::to_bytes(resp.into_body(), 1 << 26).await.unwrap();
    let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
    page["items"].as_array().map_or(0, Vec::len)
}

/// `wrk` at c=32 for `seconds` against `url`: requests per second.
fn wrk(url: &str, token: Option<&str>, seconds: u64) -> f64 {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c32", &format!("-d{seconds}s"), url]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = cmd.output().expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "{url}: errors\n{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rate from wrk:\n{text}"))
}

async fn run(name: &str, dir: &Path, url: &str, count: i64, seconds: u64) {
    let (app, token) = open(dir, url).await;
    let seeded = seed(url, count).await;
    println!("{name}: seeded {count} certificates in {:.1} s", seeded.as_secs_f64());
    let ca = app.ca().await.unwrap();
    let api = Router::new().nest("/api/v1", privca::admin::api::router(AdminState { ca: ca.clone() }));
    for (what, path) in [
        ("tier internal", "/api/v1/certificates?tier=internal&limit=100"),
        ("owner team7", "/api/v1/certificates?owner=team7&limit=100"),
        ("expiring within 30 days", "/api/v1/certificates?expiring_within=30&limit=100"),
        (
            "owner team7, tier network-critical, within 30 days",
            "/api/v1/certificates?owner=team7&tier=network-critical&expiring_within=30&limit=100",
        ),
        ("tier internal, sorted by owner", "/api/v1/certificates?tier=internal&sort=owner&limit=100"),
        ("owner team7, sorted by serial descending", "/api/v1/certificates?owner=team7&sort=-serial&limit=100"),
        ("within 30 days, latest expiry first", "/api/v1/certificates?expiring_within=30&sort=-not_after&limit=100"),
        ("owner team7, sorted by status", "/api/v1/certificates?owner=team7&sort=status&limit=100"),
        ("all, newest issued first", "/api/v1/certificates?sort=-issued_at&limit=100"),
        ("all, sorted by tier descending", "/api/v1/certificates?sort=-tier&limit=100"),
        ("all, sorted by serial", "/api/v1/certificates?sort=serial&limit=100"),
        ("all, sorted by status", "/api/v1/certificates?sort=status&limit=100"),
    ] {
        let (p50, p99, rows) = latency(30, || get(&api, path, &token)).await;
        println!("{name}: API list {what}: p50 {p50:.1} ms, p99 {p99:.1} ms ({rows} rows) [goal p99 < 100 ms]");
        let series = format!("privca/{name}/list-{}", slug(what));
        result("admin", &series, "p50_ms", p50, "ms");
        result("admin", &series, "p99_ms", p99, "ms");
    }
    let router = privca::server::routes::admin(ca, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let list = format!("http://{addr}/api/v1/certificates?tier=internal&limit=100");
    let health = format!("http://{addr}/healthz");
    let (list_rate, health_rate) =
        tokio::task::spawn_blocking(move || (wrk(&list, Some(&token), seconds), wrk(&health, None, seconds)))
            .await
            .unwrap();
    println!(
        "{name}: c=32 HTTP: API list (100 rows) {list_rate:.0} req/s, /healthz {health_rate:.0} req/s, ratio {:.2}",
        list_rate / health_rate
    );
    result("admin", &format!("privca-api-list/{name}/c32"), "per_s", list_rate, "req/s");
    result("admin", &format!("healthz/{name}/c32"), "per_s", health_rate, "req/s");
    server.abort();
    app.ledger.close().await;
}

fn main() {
    let count: i64 = std::env::var("PRIVCA_BENCH_ADMIN_COUNT").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let seconds: u64 = std::env::var("PRIVCA_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/privca.db?mode=rwc", dir.path().display());
        run("sqlite", dir.path(), &url, count, seconds).await;
        if let Some(admin) = std::env::var("PRIVCA_TEST_PG_URL").ok().filter(|u| !u.is_empty()) {
            use sqlx::Connection;
            let db = format!("privca_bench_admin_{}", std::process::id());
            let mut server = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&mut server).await.unwrap();
            let url = format!("{}/{db}", admin.rsplit_once('/').unwrap().0);
            let pg_dir = tempfile::tempdir().unwrap();
            run("postgres", pg_dir.path(), &url, count, seconds).await;
            // FORCE ends the benchmark's own connections, not an autovacuum worker that the
            // seeding may have started on the database (another role's): wait for it instead.
            let mut attempts = 0;
            while let Err(e) =
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {db} WITH (FORCE)"))).execute(&mut server).await
            {
                attempts += 1;
                assert!(attempts < 40, "DROP DATABASE {db}: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
    });
    privca::signer::pkcs11::finalize();
}
