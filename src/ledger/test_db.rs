//! Test-only: a fresh PostgreSQL database for one unit test, on the server named by
//! `PRIVCA_TEST_PG_URL` (a role with CREATEDB). Each database has a name no other test run
//! can draw (process id, clock and a counter), and dropping the [`TestPg`] drops that database
//! and no other, so concurrent runs on a shared server leave each other's databases alone.
//! With `CI=true` a missing `PRIVCA_TEST_PG_URL` fails the test instead of skipping it.

use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::Connection;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A database created for one test; dropped with it.
pub(crate) struct TestPg {
    /// URL of the database.
    pub(crate) url: String,
    admin: String,
    name: String,
}

impl TestPg {
    /// A fresh database, or `None` (skip) when `PRIVCA_TEST_PG_URL` is not set outside CI.
    pub(crate) async fn create() -> Option<TestPg> {
        let Some(admin) = std::env::var("PRIVCA_TEST_PG_URL").ok().filter(|u| !u.is_empty()) else {
            assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI=true but PRIVCA_TEST_PG_URL is not set");
            eprintln!("PRIVCA_TEST_PG_URL not set: skipping");
            return None;
        };
        let name = unique_name();
        let mut server = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut server).await.unwrap();
        server.close().await.unwrap();
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        Some(TestPg { url, admin, name })
    }
}

impl Drop for TestPg {
    /// Drops the database (closing any connection still open to it) on a thread of its own, so
    /// that it works inside and outside a runtime, and on unwinding.
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut server = sqlx::PgConnection::connect(&admin).await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut server).await.ok()?;
                server.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("test database {} not dropped", self.name);
        }
    }
}

/// `privca_ut<pid>_<nanoseconds>_<n>`: unique across processes, also in other PID namespaces
/// sharing the server.
fn unique_name() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("privca_ut{}_{nanos:x}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}
