//! TLS to PostgreSQL: the connection URL the ledger actually uses. The ledger connects through
//! sqlx's `Any` driver, whose options come from the URL alone, so the TLS choices are written into
//! the URL's query (`sslmode`, `sslrootcert`), which sqlx's PostgreSQL driver reads into
//! `PgConnectOptions::ssl_mode` and `PgConnectOptions::ssl_root_cert`. TLS runs on rustls with
//! the ring provider; the roots are webpki-roots plus the CA file, if any (sqlx adds it to them).
//!
//! - `sslmode` in the URL (or `PGSSLMODE` in the environment) is kept as it is.
//! - Otherwise the mode is `verify-full` when a CA file is given or the host is neither loopback
//!   (`localhost`, 127.0.0.0/8, `::1`) nor a Unix socket; on loopback sqlx's default `prefer`
//!   stays.
//! - The CA file (`database.ca_file`) becomes `sslrootcert`; an `sslrootcert` in the URL is kept
//!   (the configuration refuses both at once).

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    str::FromStr,
};

use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// The query keys sqlx reads as the TLS mode.
const SSLMODE_KEYS: [&str; 2] = ["sslmode", "ssl-mode"];
/// The query keys sqlx reads as the root certificate file.
pub(crate) const SSLROOTCERT_KEYS: [&str; 3] = ["sslrootcert", "ssl-root-cert", "ssl-ca"];

/// True for `postgres://` / `postgresql://` URLs.
pub(crate) fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The URL to connect with: `url` unchanged for SQLite; for PostgreSQL with `sslmode` and
/// `sslrootcert` added as the module documentation says.
pub fn connect_url(url: &str, ca_file: Option<&Path>) -> Result<String, sqlx::Error> {
    if !is_postgres(url) {
        return Ok(url.to_owned());
    }
    let mut parsed = url::Url::parse(url).map_err(|e| sqlx::Error::Configuration(e.into()))?;
    let has = |keys: &[&str]| parsed.query_pairs().any(|(k, _)| keys.contains(&&*k));
    let explicit_mode = has(&SSLMODE_KEYS) || std::env::var_os("PGSSLMODE").is_some();
    let add_root = match ca_file {
        Some(_) if has(&SSLROOTCERT_KEYS) => {
            return Err(sqlx::Error::Configuration(
                "both database.ca_file and sslrootcert in the database URL are set".into(),
            ))
        }
        Some(file) => Some(file.to_string_lossy().into_owned()),
        None => None,
    };
    let verify_full = !explicit_mode && (ca_file.is_some() || !is_local(&PgConnectOptions::from_str(url)?));
    if add_root.is_some() || verify_full {
        let mut query = parsed.query_pairs_mut();
        if verify_full {
            query.append_pair("sslmode", "verify-full");
        }
        if let Some(file) = &add_root {
            query.append_pair("sslrootcert", file);
        }
    }
    Ok(parsed.into())
}

/// The TLS mode and root CA file a PostgreSQL URL asks for (what sqlx will do with it).
pub fn tls_of(url: &str) -> Result<(PgSslMode, Option<PathBuf>), sqlx::Error> {
    let root = url::Url::parse(url)
        .map_err(|e| sqlx::Error::Configuration(e.into()))?
        .query_pairs()
        .find(|(k, _)| SSLROOTCERT_KEYS.contains(&&**k))
        .map(|(_, v)| PathBuf::from(&*v))
        .or_else(|| std::env::var_os("PGSSLROOTCERT").map(PathBuf::from));
    Ok((PgConnectOptions::from_str(url)?.get_ssl_mode(), root))
}

/// True if `e` is a failed TLS handshake: sqlx reports a refused certificate as an I/O error
/// wrapping rustls's error, and a server without TLS as `Error::Tls`.
pub(crate) fn is_handshake_failure(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()),
        _ => false,
    }
}

/// A Unix socket or a loopback host: the connection never leaves the machine.
fn is_local(options: &PgConnectOptions) -> bool {
    if options.get_socket().is_some() {
        return true;
    }
    let host = options.get_host().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The name of a TLS mode as `sslmode` spells it.
pub fn mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn mode(url: &str) -> &'static str {
        mode_name(tls_of(url).unwrap().0)
    }

    #[test]
    fn non_loopback_hosts_default_to_verify_full() {
        // PGSSLMODE in the test environment would change the defaults tested here.
        if std::env::var_os("PGSSLMODE").is_some() {
            return;
        }
        let u = connect_url("postgres://privca@db.example.com:5432/privca", None).unwrap();
        assert_eq!(u, "postgres://privca@db.example.com:5432/privca?sslmode=verify-full");
        assert_eq!(mode(&u), "verify-full");
        assert_eq!(mode(&connect_url("postgres://u@10.0.0.5/db", None).unwrap()), "verify-full");
        assert_eq!(mode(&connect_url("postgresql://u@[2001:db8::1]:5433/db", None).unwrap()), "verify-full");
        // The host given as a query parameter counts too.
        assert_eq!(mode(&connect_url("postgres://u@localhost/db?host=db.example.com", None).unwrap()), "verify-full");
    }

    #[test]
    fn loopback_and_sockets_keep_prefer() {
        if std::env::var_os("PGSSLMODE").is_some() {
            return;
        }
        for url in [
            "postgres://u:p@127.0.0.1:5432/db",
            "postgres://u@localhost/db",
            "postgres://u@127.0.0.2/db",
            "postgres://u@[::1]/db",
            "postgres://u@%2Fvar%2Frun%2Fpostgresql/db",
            "postgres://u@localhost/db?host=/var/run/postgresql",
        ] {
            assert_eq!(connect_url(url, None).unwrap(), url, "{url}");
            assert_eq!(mode(url), "prefer", "{url}");
        }
    }

    #[test]
    fn the_url_sslmode_and_sslrootcert_win() {
        for (url, want) in [
            ("postgres://u@db.example.com/db?sslmode=disable", "disable"),
            ("postgres://u@db.example.com/db?sslmode=require", "require"),
            ("postgres://u@db.example.com/db?ssl-mode=verify-ca", "verify-ca"),
            ("postgres://u@127.0.0.1/db?sslmode=verify-full", "verify-full"),
        ] {
            assert_eq!(connect_url(url, None).unwrap(), url);
            assert_eq!(mode(url), want);
        }
        let url = "postgres://u@db.example.com/db?sslmode=verify-ca&sslrootcert=/etc/ca.pem";
        assert_eq!(connect_url(url, None).unwrap(), url);
        assert_eq!(tls_of(url).unwrap().1.unwrap(), Path::new("/etc/ca.pem"));
    }

    #[test]
    fn a_ca_file_becomes_sslrootcert_and_means_verify_full() {
        if std::env::var_os("PGSSLMODE").is_some() {
            return;
        }
        let ca = Path::new("/etc/privca/db ca.pem");
        let u = connect_url("postgres://u:p%40ss@127.0.0.1:5432/db", Some(ca)).unwrap();
        assert_eq!((mode(&u), tls_of(&u).unwrap().1), ("verify-full", Some(ca.to_owned())));
        assert!(u.starts_with("postgres://u:p%40ss@127.0.0.1:5432/db?"), "{u}");
        // An explicit mode in the URL stays.
        let u = connect_url("postgres://u@db.example.com/db?sslmode=verify-ca", Some(ca)).unwrap();
        assert_eq!((mode(&u), tls_of(&u).unwrap().1), ("verify-ca", Some(ca.to_owned())));
        // Not both a CA file and sslrootcert.
        let e = connect_url("postgres://u@db.example.com/db?sslrootcert=/x.pem", Some(ca)).unwrap_err();
        assert!(e.to_string().contains("both database.ca_file and sslrootcert"), "{e}");
    }

    #[test]
    fn sqlite_urls_are_untouched() {
        let url = "sqlite:///var/lib/privca/privca.db?mode=rwc";
        assert_eq!(connect_url(url, Some(Path::new("/ca.pem"))).unwrap(), url);
    }
}
