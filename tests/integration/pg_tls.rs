//! TLS to PostgreSQL against the CI server (`.ci/test` turns `ssl` on with a certificate for
//! 127.0.0.1 from a test CA, `PRIVCA_TEST_PG_TLS_CA`): `sslmode=verify-full` with that CA gives
//! an encrypted connection, for the whole CA (config `database.ca_file` through `App::open`)
//! and for a raw sqlx connection built by the same URL function; a CA file the server's
//! certificate does not chain to fails with an error that says so; plain connections still work.

use std::path::Path;

use privca::ledger::{pg_tls, Ledger, LedgerError};
use sqlx::Connection;

use crate::harness::{self, TestCa};

/// A fresh CA (certificate and key) that did not sign the server's certificate.
fn other_ca(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("wrong-ca.pem");
    let ok = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=privca CI PostgreSQL test CA", "-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-keyout", "/dev/null", "-out"])
        .arg(&out)
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "openssl req -x509");
    out
}

#[tokio::test]
async fn the_ca_talks_to_postgres_over_verified_tls() {
    let Some(admin) = harness::pg_url() else { return };
    let Some(ca) = harness::pg_tls_ca() else { return };
    let t = TestCa::on_postgres("?sslmode=verify-full", &format!("ca_file = \"{}\"", ca.display())).await.unwrap();
    assert_eq!(t.app.config.database.ca_file.as_deref(), Some(ca.as_path()));
    assert!(t.app.ledger.tls_in_use().await.unwrap(), "the ledger's connection is not encrypted");
    // The ledger works over it: the bootstrap wrote the CA certificates.
    assert!(t.app.ledger.ca_certificate("root").await.unwrap().is_some());

    // A raw connection through the URL privca builds reports TLS on the server side too.
    let pg = harness::fresh_pg_db(&admin).await;
    let db = pg.url.clone();
    let url = pg_tls::connect_url(&format!("{db}?sslmode=verify-full"), Some(&ca)).unwrap();
    assert!(url.contains("sslrootcert="), "{url}");
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(ssl);
    let version: String = sqlx::query_scalar("SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(version == "TLSv1.3" || version == "TLSv1.2", "{version}");
    conn.close().await.unwrap();

    // The CA file alone (no sslmode in the URL) means verify-full, also on loopback.
    assert_eq!(
        pg_tls::mode_name(pg_tls::tls_of(&pg_tls::connect_url(&db, Some(&ca)).unwrap()).unwrap().0),
        "verify-full"
    );
    let ledger = Ledger::connect_with(&db, Some(&ca), 1).await.unwrap();
    assert!(ledger.tls_in_use().await.unwrap());
    ledger.close().await;

    // SSL on does not force it: a plain connection is still accepted.
    let plain = Ledger::connect(&format!("{db}?sslmode=disable"), 1).await.unwrap();
    assert!(!plain.tls_in_use().await.unwrap());
    plain.close().await;
}

#[tokio::test]
async fn verify_full_with_the_wrong_ca_fails_clearly() {
    let Some(admin) = harness::pg_url() else { return };
    let Some(_) = harness::pg_tls_ca() else { return };
    let dir = tempfile::tempdir().unwrap();
    let wrong = other_ca(dir.path());
    let pg = harness::fresh_pg_db(&admin).await;
    let db = pg.url.clone();
    let e = Ledger::connect_with(&format!("{db}?sslmode=verify-full"), Some(&wrong), 1).await.unwrap_err();
    assert!(matches!(e, LedgerError::Tls { mode: "verify-full", .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("TLS to PostgreSQL failed (sslmode=verify-full"), "{text}");
    assert!(text.contains(&format!("CA file {}", wrong.display())), "{text}");
    // The wrong CA has the right CA's name: the chain is found and its signature does not verify.
    assert!(text.contains("invalid peer certificate: BadSignature"), "{text}");
    // verify-ca checks the chain as well.
    let e = Ledger::connect_with(&format!("{db}?sslmode=verify-ca"), Some(&wrong), 1).await.unwrap_err();
    assert!(matches!(e, LedgerError::Tls { mode: "verify-ca", .. }), "{e:?}");
    // Without any CA file, the test CA is not among the public roots either.
    let e = Ledger::connect(&format!("{db}?sslmode=verify-full"), 1).await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("trusting the webpki roots") && text.contains("invalid peer certificate: UnknownIssuer"),
        "{text}"
    );
}
