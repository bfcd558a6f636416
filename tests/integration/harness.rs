//! Test harness: a fresh CA per test with a real SoftHSM2 token (one token directory per test
//! process, one token label per test) and a fresh SQLite file or PostgreSQL database.
//!
//! PostgreSQL comes from `PRIVCA_TEST_PG_URL` (a role with CREATEDB); each test creates its own
//! database under a name no other test run can draw (process id, clock, counter) and drops it,
//! and only it, when the test ends (also on failure), so concurrent runs on a shared server
//! leave each other's databases alone. With `CI=true` a missing PostgreSQL fails the test
//! instead of skipping it.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicUsize, Ordering},
        OnceLock,
    },
};

use privca::{app::App, ca::CertificateAuthority, config::Config};
use sqlx::{Connection, Executor};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

static TOKEN_DIR: OnceLock<PathBuf> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);
static TOKEN_SETUP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Points SoftHSM2 at one token directory for the whole test process (the module reads
/// `SOFTHSM2_CONF` once, at `C_Initialize`).
fn token_dir() -> &'static Path {
    TOKEN_DIR.get_or_init(|| {
        remove_stale_token_dirs();
        let dir = std::env::temp_dir().join(format!("privca-test-tokens-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!("directories.tokendir = {}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n", dir.display()),
        )
        .unwrap();
        std::env::set_var("SOFTHSM2_CONF", &conf);
        dir
    })
}

/// Removes token directories left by test processes that no longer run.
fn remove_stale_token_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("privca-test-tokens-") {
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// The PostgreSQL server URL, or `None` to skip (never `None` with `CI=true`).
pub fn pg_url() -> Option<String> {
    match std::env::var("PRIVCA_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but PRIVCA_TEST_PG_URL is not set: PostgreSQL tests must run in CI")
        }
        _ => {
            eprintln!("PRIVCA_TEST_PG_URL not set: skipping the PostgreSQL half of this test");
            None
        }
    }
}

/// The CA file that verifies the test PostgreSQL server's TLS certificate
/// (`PRIVCA_TEST_PG_TLS_CA`, exported by `.ci/test`), or `None` to skip (never `None` with
/// `CI=true`).
pub fn pg_tls_ca() -> Option<PathBuf> {
    match std::env::var("PRIVCA_TEST_PG_TLS_CA") {
        Ok(ca) if !ca.is_empty() => Some(PathBuf::from(ca)),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but PRIVCA_TEST_PG_TLS_CA is not set: the PostgreSQL TLS test must run in CI")
        }
        _ => {
            eprintln!("PRIVCA_TEST_PG_TLS_CA not set: skipping the PostgreSQL TLS test");
            None
        }
    }
}

/// A fresh PostgreSQL database on the server at `admin_url`, dropped with the value.
pub async fn fresh_pg_db(admin_url: &str) -> PgDb {
    fresh_pg_database(admin_url, COUNTER.fetch_add(1, Ordering::SeqCst)).await
}

/// A database this test process created; dropping it drops the database.
pub struct PgDb {
    pub url: String,
    admin: String,
    name: String,
}

impl Drop for PgDb {
    /// Drops the database (closing connections still open to it) on a thread of its own, so
    /// that it works inside a runtime and on unwinding.
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut c = sqlx::PgConnection::connect(&admin).await.ok()?;
                c.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await.ok()?;
                c.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("test database {} not dropped", self.name);
        }
    }
}

/// Writes a secret file with mode 0600 (privca refuses one open to group or others).
pub fn write_private(path: &Path, contents: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A fresh CA.
pub struct TestCa {
    pub app: App,
    pub ca: CertificateAuthority,
    pub dir: tempfile::TempDir,
    pub db_url: String,
    /// The PostgreSQL database, dropped with the CA (declared last: dropped after the app).
    _pg: Option<PgDb>,
}

impl TestCa {
    /// Builds a CA on `db`; `None` when PostgreSQL is wanted but not configured (outside CI).
    pub async fn new(db: Db) -> Option<TestCa> {
        Self::with_profiles(db, &Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/profiles")).await
    }

    /// Same, with another profile directory.
    pub async fn with_profiles(db: Db, profiles: &Path) -> Option<TestCa> {
        Self::build(db, profiles, ("", ""), "").await
    }

    /// The default profiles, with `extra` appended to the configuration.
    pub async fn with_config(db: Db, extra: &str) -> Option<TestCa> {
        Self::build(db, &Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/profiles"), ("", ""), extra).await
    }

    /// A CA on a fresh PostgreSQL database whose URL ends in `url_suffix` (e.g.
    /// `?sslmode=verify-full`), with `database` appended to the `[database]` section.
    pub async fn on_postgres(url_suffix: &str, database: &str) -> Option<TestCa> {
        let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/profiles");
        Self::build(Db::Postgres, &profiles, (url_suffix, database), "").await
    }

    /// `(url_suffix, lines)`: appended to the database URL and to the `[database]` section.
    async fn build(db: Db, profiles: &Path, database: (&str, &str), extra: &str) -> Option<TestCa> {
        let (url_suffix, database_lines) = database;
        token_dir();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        std::fs::create_dir_all(&secrets).unwrap();
        for (pin, value) in [("user.pin", "1234"), ("so.pin", "12345678")] {
            // privca refuses secret files that group or others may read.
            write_private(&secrets.join(pin), value);
        }
        let pg = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(fresh_pg_database(&pg_url()?, n).await),
        };
        let db_url = pg.as_ref().map_or_else(|| "sqlite://privca.db".to_owned(), |p| p.url.clone());
        let label = format!("t{}-{n}", std::process::id());
        let body = format!(
            r#"dev = true
[urls]
http_base = "http://127.0.0.1:8080"
https_base = "https://127.0.0.1:8443"
[database]
url = "{db_url}{url_suffix}"
max_connections = 4
{database_lines}
[hsm]
token_label = "{label}"
user_pin = {{ file = "secrets/user.pin" }}
so_pin = {{ file = "secrets/so.pin" }}
auto_init = true
sessions = 2
[root]
key = "ecdsa-p384"
subject = "CN=test root,O=privca tests"
validity = "10y"
[[issuer]]
id = "ec"
key = "ecdsa-p256"
subject = "CN=test issuer EC,O=privca tests"
validity = "5y"
[[issuer]]
id = "rsa"
key = "rsa-2048"
subject = "CN=test issuer RSA,O=privca tests"
validity = "5y"
[profiles]
dir = "{}"
{extra}
"#,
            profiles.display()
        );
        let path = dir.path().join("privca.toml");
        std::fs::write(&path, body).unwrap();
        let config = Config::load(&path, Some(dir.path().to_owned())).unwrap();
        // SoftHSM2 is not safe against C_InitToken / slot refreshes racing other threads'
        // operations; production opens one token once, tests create one per test.
        let _guard = TOKEN_SETUP.lock().await;
        let app = App::open(config).await.unwrap();
        app.bootstrap(false).await.unwrap();
        let ca = app.ca().await.unwrap();
        let db_url = match db {
            Db::Sqlite => format!("sqlite://{}/privca.db", dir.path().display()),
            Db::Postgres => db_url,
        };
        Some(TestCa { app, ca, dir, db_url, _pg: pg })
    }

    /// A connection of its own to the test ledger, for edits the ledger's API does not make.
    pub async fn raw(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.db_url).await.unwrap()
    }

    /// `openssl req` CSR (DER) with `key` (`ec:P-256`, `rsa:2048`...) and extra arguments.
    pub fn csr(&self, key: &str, subject: &str, san: Option<&str>) -> Vec<u8> {
        openssl_csr(self.dir.path(), key, subject, san)
    }

    /// Writes `pem` and runs `openssl verify` against the root; returns openssl's output.
    pub fn openssl_verify(&self, chain_pem: &str) -> (bool, String) {
        let chain = self.dir.path().join("chain.pem");
        std::fs::write(&chain, chain_pem).unwrap();
        let root = self.dir.path().join("root.pem");
        let out = Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&root)
            .arg("-untrusted")
            .arg(&chain)
            .arg(&chain)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    }
}

/// Creates a database for one test on the server at `admin_url`, named
/// `privca_it<pid>_<nanoseconds>_<n>`: unique also across PID namespaces sharing the server.
async fn fresh_pg_database(admin_url: &str, n: usize) -> PgDb {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let name = format!("privca_it{}_{nanos:x}_{n}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(admin_url).await.expect("connect to PRIVCA_TEST_PG_URL");
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.unwrap();
    conn.close().await.unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    PgDb { url: format!("{base}/{name}"), admin: admin_url.to_owned(), name }
}

/// `openssl req -new` with a fresh key; returns the DER CSR.
pub fn openssl_csr(dir: &Path, key: &str, subject: &str, san: Option<&str>) -> Vec<u8> {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let out = dir.join(format!("req{n}.der"));
    let keyfile = dir.join(format!("key{n}.pem"));
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-new", "-nodes", "-outform", "DER", "-subj", subject, "-keyout"])
        .arg(&keyfile)
        .arg("-out")
        .arg(&out);
    match key.split_once(':') {
        Some(("ec", curve)) => cmd.args(["-newkey", "ec", "-pkeyopt", &format!("ec_paramgen_curve:{curve}")]),
        _ => cmd.args(["-newkey", key]),
    };
    if let Some(san) = san {
        cmd.args(["-addext", &format!("subjectAltName={san}")]);
    }
    let status = cmd.output().unwrap();
    assert!(status.status.success(), "openssl req failed: {}", String::from_utf8_lossy(&status.stderr));
    std::fs::read(out).unwrap()
}

/// For each async `fn name(db: Db)` of the calling module, a module `name` with the tests
/// `sqlite` and `postgres` (the latter returns early without a PostgreSQL server).
macro_rules! both_databases {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use crate::harness::Db;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(Db::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(Db::Postgres).await
                }
            }
        )*
    };
}
pub(crate) use both_databases;
