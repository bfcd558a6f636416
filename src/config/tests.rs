//! Parses every config file shipped in `conf/` and asserts the values other code relies on.

use std::path::{Path, PathBuf};

use super::*;

fn conf(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conf").join(name)
}

#[test]
fn dev_config_parses_with_the_documented_values() {
    let c = Config::load(&conf("privca.dev.toml"), Some("/tmp/privca-test".into())).unwrap();
    assert!(c.dev);
    assert_eq!(c.server.https_listen.to_string(), "127.0.0.1:8443");
    assert_eq!(c.server.http_listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.server.admin_listen.to_string(), "127.0.0.1:9443");
    assert_eq!(c.urls.http_base, "http://127.0.0.1:8080");
    assert_eq!(c.database.url, "sqlite:///tmp/privca-test/privca.db?mode=rwc");
    assert!(c.hsm.auto_init && c.hsm.is_softhsm());
    assert_eq!(
        c.hsm.user_pin,
        SecretRef::File { key: "hsm.user_pin".into(), path: "/tmp/privca-test/secrets/user.pin".into() }
    );
    assert_eq!(c.issuers[0].id, "ec");
    assert_eq!(c.issuers[0].ca.key, KeyAlgorithm::EcdsaP256);
    for p in ["tls-server", "tls-client", "device", "device-rsa", "vpn-gateway", "code-signing", "email"] {
        assert!(c.profiles.contains_key(p), "profile {p} missing");
    }
    assert_eq!(c.scep.ra_keys, scep::RaKeys::Separate);
    assert_eq!(c.scep.envelope_failures_per_minute, 20);
    // The profiles EST and SCEP enroll into by default accept a CN-only request; tls-server not.
    for p in ["device", "device-gated", "vpn-gateway"] {
        let san = &c.profiles[p].san;
        assert!(!san.required && san.from_cn == crate::policy::CnToSan::DnsIfHostname, "profile {p}");
    }
    let san = &c.profiles["tls-server"].san;
    assert!(san.required && san.from_cn == crate::policy::CnToSan::Never);
    assert!(c.acme.deny_ranges.is_empty(), "the interop clients answer challenges on loopback");
    assert_eq!(c.crl.full_after_revocation, Some(Duration::from_secs(5)));
}

#[test]
fn cluster_config_parses_and_names_the_load_balancer() {
    let c = Config::load(&conf("privca.cluster.toml"), None).unwrap();
    assert!(c.database.is_postgres());
    assert!(!c.dev);
    assert!(!c.hsm.auto_init);
    assert_eq!(c.database.job_lease, Duration::from_secs(30));
    assert_eq!(c.urls.https_base, "https://ca.example.com");
}

#[test]
fn example_config_parses_and_uses_postgres() {
    let c = Config::load(&conf("privca.example.toml"), None).unwrap();
    assert_eq!(c.hsm.queue_capacity, QueueCapacity::derived(c.hsm.sessions));
    assert_eq!(c.ocsp.nonce_signatures_per_second, 200);
    assert!(!c.dev);
    assert!(c.database.is_postgres());
    assert!(!c.hsm.auto_init);
    assert!(c.database.password.is_some());
    assert!(!format!("{:?}", c.database).contains("secret"));
    assert_eq!(c.scep.ra_keys, scep::RaKeys::Separate);
    let denied = |ip: &str| c.acme.deny_ranges.iter().any(|r| r.contains(ip.parse().unwrap()));
    for ip in [
        "127.0.0.1",
        "::1",
        "169.254.169.254",
        "fe80::1",
        "10.2.3.4",
        "172.16.0.1",
        "192.168.1.1",
        "fd00::1",
        "0.0.0.0",
        "100.64.0.1",
        "::",
        "::ffff:10.0.0.1",
    ] {
        assert!(denied(ip), "{ip} is not denied by the example config");
    }
    for ip in ["8.8.8.8", "2606:4700::1111", "172.32.0.1", "100.128.0.1"] {
        assert!(!denied(ip), "{ip} is denied by the example config");
    }
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::copy(conf("profiles/tls-server.toml"), profiles.join("tls-server.toml")).unwrap();
    let path = dir.join("c.toml");
    std::fs::write(&path, body).unwrap();
    path
}

const MINIMAL: &str = r#"
[urls]
http_base = "http://127.0.0.1:8080"
https_base = "https://127.0.0.1:8443"
[database]
url = "sqlite://x.db"
[hsm]
token_label = "t"
user_pin = { env = "PIN" }
[root]
key = "ecdsa-p256"
subject = "CN=r"
validity = "10y"
[[issuer]]
id = "ec"
key = "ecdsa-p256"
subject = "CN=i"
validity = "5y"
[profiles]
dir = "profiles"
"#;

#[test]
fn minimal_config_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), MINIMAL);
    Config::load(&path, None).unwrap();
}

#[test]
fn errors_name_the_key() {
    let cases = [
        (MINIMAL.replace("validity = \"5y\"", "validity = \"11y\""), "issuer[0].validity"),
        (MINIMAL.replace("key = \"ecdsa-p256\"\nsubject = \"CN=r\"", "key = \"dsa\"\nsubject = \"CN=r\""), "root.key"),
        (MINIMAL.replace("sqlite://x.db", "mysql://x"), "database.url"),
        (MINIMAL.replace("token_label = \"t\"", "token_label = \"t\"\nauto_init = true"), "hsm.auto_init"),
        (MINIMAL.replace("[profiles]", "[log]\nformat = \"xml\"\n[profiles]"), "log.format"),
        (MINIMAL.replace("id = \"ec\"", "id = \"e c\""), "issuer[0].id"),
        (format!("{MINIMAL}[acme.validation]\ndeny_ranges = [\"10.0.0.0/8\", \"10.1.0.0/8\"]\n"), "10.0.0.0/8?"),
        (format!("{MINIMAL}[acme.validation]\ndeny_ranges = [\"intranet\"]\n"), "acme.validation.deny_ranges"),
    ];
    for (body, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        let e = Config::load(&write_config(dir.path(), &body), None).unwrap_err().to_string();
        assert!(e.contains(key), "expected `{key}` in: {e}");
    }
}

const SUCCESSOR: &str = "[[issuer]]\nid = \"ec-2\"\nkey = \"ecdsa-p256\"\nsubject = \"CN=i2\"\nvalidity = \"5y\"\n";

#[test]
fn a_rollover_names_an_earlier_issuer_and_a_time() {
    let with = |lines: &str| MINIMAL.replace("[profiles]", &format!("{SUCCESSOR}{lines}\n[profiles]"));
    let dir = tempfile::tempdir().unwrap();
    let ok = with("replaces = \"ec\"\nactive_from = \"2027-01-15T08:00:00Z\"");
    let c = Config::load(&write_config(dir.path(), &ok), None).unwrap();
    let r = c.issuer("ec-2").unwrap().rollover.as_ref().unwrap();
    assert_eq!(r.replaces, "ec");
    let unix = r.active_from.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(unix, 1_800_000_000);
    let second =
        format!("{SUCCESSOR}replaces = \"ec\"\nactive_from = \"2027-01-15T08:00:00Z\"\n").replace("ec-2", "ec-3");
    let cases = [
        (with("replaces = \"ec\""), "issuer[1].active_from"),
        (with("active_from = \"2027-01-15T08:00:00Z\""), "issuer[1].replaces"),
        (with("replaces = \"nope\"\nactive_from = \"2027-01-15T08:00:00Z\""), "issuer[1].replaces"),
        (with("replaces = \"ec\"\nactive_from = \"next tuesday\""), "issuer[1].active_from"),
        (with(&format!("replaces = \"ec\"\nactive_from = \"2027-01-15T08:00:00Z\"\n{second}")), "issuer[2].replaces"),
    ];
    for (body, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        let e = Config::load(&write_config(dir.path(), &body), None).unwrap_err().to_string();
        assert!(e.contains(key), "expected `{key}` in: {e}");
    }
}

#[test]
fn server_limits_have_defaults_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config::load(&write_config(dir.path(), MINIMAL), None).unwrap();
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.server.idle_timeout, Duration::from_secs(30));
    assert_eq!(c.server.tls_handshake_timeout, Duration::from_secs(10));
    assert_eq!(c.server.max_connections, None);
    let with = |lines: &str| MINIMAL.replace("[urls]", &format!("[server]\n{lines}\n[urls]"));
    let c = Config::load(
        &write_config(
            dir.path(),
            &with("header_read_timeout = \"5s\"\nidle_timeout = \"500ms\"\nmax_connections = 3000"),
        ),
        None,
    )
    .unwrap();
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(5));
    assert_eq!(c.server.idle_timeout, Duration::from_millis(500));
    assert_eq!(c.server.max_connections, Some(3000));
    let cases = [
        (with("header_read_timeout = \"0s\""), "server.header_read_timeout"),
        (with("idle_timeout = \"2d\""), "server.idle_timeout"),
        (with("tls_handshake_timeout = \"soon\""), "server.tls_handshake_timeout"),
        (with("request_timeout = \"0ms\""), "server.request_timeout"),
        (with("max_connections = 0"), "server.max_connections"),
        (with("max_connections = 2000000"), "server.max_connections"),
    ];
    for (body, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        let e = Config::load(&write_config(dir.path(), &body), None).unwrap_err().to_string();
        assert!(e.contains(key), "expected `{key}` in: {e}");
    }
}

#[test]
fn hsm_queue_and_nonce_budget_have_defaults_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config::load(&write_config(dir.path(), MINIMAL), None).unwrap();
    assert_eq!(c.hsm.queue_capacity, QueueCapacity::derived(c.hsm.sessions));
    assert_eq!(c.ocsp.nonce_signatures_per_second, 200);
    let body = MINIMAL.replace(
        "user_pin = { env = \"PIN\" }",
        "user_pin = { env = \"PIN\" }\nsessions = 2\nqueue_capacity = { protocol = 5, nonce = 3 }",
    ) + "[ocsp]\nnonce_signatures_per_second = 50\n";
    let c = Config::load(&write_config(dir.path(), &body), None).unwrap();
    let q = c.hsm.queue_capacity;
    assert_eq!((q.issuance, q.handshake, q.protocol, q.nonce), (512, 32, 5, 3));
    assert_eq!(c.ocsp.nonce_signatures_per_second, 50);
    let e =
        Config::load(&write_config(dir.path(), &format!("{MINIMAL}[ocsp]\nnonce_signatures_per_second = 0\n")), None)
            .unwrap_err()
            .to_string();
    assert!(e.contains("ocsp.nonce_signatures_per_second"), "{e}");
}

#[test]
fn san_from_cn_is_checked() {
    let with = |lines: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path(), MINIMAL);
        let profile = dir.path().join("profiles/tls-server.toml");
        let text = std::fs::read_to_string(&profile).unwrap().replace("types = [\"dns\", \"ip\"]", lines);
        std::fs::write(&profile, text).unwrap();
        Config::load(&path, None).map(|c| c.profiles["tls-server"].san.from_cn).map_err(|e| e.to_string())
    };
    assert_eq!(with("types = [\"dns\", \"ip\"]"), Ok(crate::policy::CnToSan::Never));
    assert_eq!(with("types = [\"dns\"]\nfrom_cn = \"dns-if-hostname\""), Ok(crate::policy::CnToSan::DnsIfHostname));
    let e = with("types = [\"dns\"]\nfrom_cn = \"always\"").unwrap_err();
    assert!(e.contains("san.from_cn") && e.contains("never or dns-if-hostname"), "{e}");
    let e = with("types = [\"ip\"]\nfrom_cn = \"dns-if-hostname\"").unwrap_err();
    assert!(e.contains("san.from_cn") && e.contains("san.types"), "{e}");
}

#[test]
fn full_crl_after_revocation_defaults_on_and_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config::load(&write_config(dir.path(), MINIMAL), None).unwrap();
    assert_eq!(c.crl.full_after_revocation, Some(Duration::from_secs(5)));
    let with = |line: &str| format!("{MINIMAL}[crl]\n{line}\n");
    let c = Config::load(&write_config(dir.path(), &with("full_after_revocation = \"off\"")), None).unwrap();
    assert_eq!(c.crl.full_after_revocation, None);
    let c = Config::load(&write_config(dir.path(), &with("full_after_revocation = \"0s\"")), None).unwrap();
    assert_eq!(c.crl.full_after_revocation, Some(Duration::ZERO));
    let c = Config::load(&write_config(dir.path(), &with("full_after_revocation = \"750ms\"")), None).unwrap();
    assert_eq!(c.crl.full_after_revocation, Some(Duration::from_millis(750)));
    for bad in ["full_after_revocation = \"soon\"", "full_after_revocation = \"2d\"", "full_after_revocation = 5"] {
        let e = Config::load(&write_config(dir.path(), &with(bad)), None).unwrap_err().to_string();
        assert!(e.contains("full_after_revocation"), "expected the key in: {e}");
    }
}

#[test]
fn unknown_keys_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let body = MINIMAL.replace("[database]", "[database]\nmax_conections = 3");
    let e = Config::load(&write_config(dir.path(), &body), None).unwrap_err().to_string();
    assert!(e.contains("max_conections"), "{e}");
}

#[test]
fn redacts_database_passwords() {
    assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
}

/// A self-signed certificate in PEM (any certificate will do for the CA file checks).
fn write_ca(dir: &Path) -> PathBuf {
    let out = dir.join("db-ca.pem");
    let ok = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=db ca"])
        .args(["-days", "1", "-keyout", "/dev/null", "-out"])
        .arg(&out)
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "openssl req -x509");
    out
}

fn pg(url: &str, extra: &str) -> String {
    MINIMAL.replace("url = \"sqlite://x.db\"", &format!("url = \"{url}\"\n{extra}"))
}

#[test]
fn database_ca_file_is_resolved_against_the_data_dir_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    write_ca(dir.path());
    let path = write_config(dir.path(), &pg("postgres://privca@db.example.com/privca", "ca_file = \"db-ca.pem\""));
    let c = Config::load(&path, Some(dir.path().to_owned())).unwrap();
    assert_eq!(c.database.ca_file.as_deref(), Some(dir.path().join("db-ca.pem").as_path()));
    // With an explicit verify mode in the URL too.
    let body = pg("postgres://privca@db.example.com/privca?sslmode=verify-ca", "ca_file = \"db-ca.pem\"");
    Config::load(&write_config(dir.path(), &body), Some(dir.path().to_owned())).unwrap();
    // And the URL's own sslrootcert, alone.
    let root = dir.path().join("db-ca.pem");
    let body = pg(&format!("postgres://privca@db.example.com/privca?sslrootcert={}", root.display()), "");
    Config::load(&write_config(dir.path(), &body), Some(dir.path().to_owned())).unwrap();
}

#[test]
fn database_tls_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path());
    std::fs::write(dir.path().join("empty.pem"), "no certificate here\n").unwrap();
    let missing = dir.path().join("missing-ca.pem");
    let cases = [
        (
            pg("postgres://p@db.example.com/p", "ca_file = \"missing-ca.pem\""),
            "database.ca_file",
            format!("cannot read the CA file {}", missing.display()),
        ),
        (
            pg("postgres://p@db.example.com/p", "ca_file = \"empty.pem\""),
            "database.ca_file",
            "holds no PEM certificate".into(),
        ),
        (
            MINIMAL.replace("url = \"sqlite://x.db\"", "url = \"sqlite://x.db\"\nca_file = \"db-ca.pem\""),
            "database.ca_file",
            "only for a postgres:// url".into(),
        ),
        (
            pg("postgres://p@db.example.com/p?sslmode=require", "ca_file = \"db-ca.pem\""),
            "database.ca_file",
            "sslmode=require".into(),
        ),
        (
            pg(&format!("postgres://p@db.example.com/p?sslrootcert={}", ca.display()), "ca_file = \"db-ca.pem\""),
            "database.ca_file",
            "sslrootcert too".into(),
        ),
        (pg("postgres://p@db.example.com/p?sslmode=verify_full", ""), "database.url", "sslmode `verify_full`".into()),
        (
            pg(&format!("postgres://p@db.example.com/p?sslrootcert={}", missing.display()), ""),
            "database.url",
            format!("cannot read the CA file {}", missing.display()),
        ),
    ];
    for (body, key, text) in cases {
        let path = write_config(dir.path(), &body);
        let e = Config::load(&path, Some(dir.path().to_owned())).unwrap_err().to_string();
        assert!(e.contains(&format!("`{key}`")) && e.contains(&text), "{key}: {e}");
    }
}

#[test]
fn a_static_scep_challenge_is_refused_on_an_approval_profile() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(conf("privca.dev.toml"))
        .unwrap()
        .replace("dir = \"profiles\"", &format!("dir = \"{}\"", conf("profiles").display()));
    let gated = text.replace(
        "profile = \"device-gated\"\n\n[log]",
        "profile = \"device-gated\"\nchallenge = { env = \"X\" }\n\n[log]",
    );
    assert_ne!(gated, text, "the dev config's gated SCEP name moved");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, gated).unwrap();
    let e = Config::load(&path, Some(dir.path().to_owned())).unwrap_err().to_string();
    assert!(e.contains("scep.names.gated.challenge") && e.contains("one-time"), "{e}");
}

#[test]
fn scheduled_reports_are_off_by_default_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config::load(&write_config(dir.path(), MINIMAL), None).unwrap();
    assert_eq!(c.reports.schedule, reports::ReportSchedule::Off);
    let example = Config::load(&conf("privca.example.toml"), None).unwrap();
    assert_eq!(example.reports.schedule, reports::ReportSchedule::Off);
    assert_eq!(example.reports.format, reports::ReportAttachment::Pdf);
    let smtp = "[clm.smtp]\nurl = \"smtp://127.0.0.1:25\"\n";
    let with = |reports: &str, smtp: &str| format!("{MINIMAL}[reports]\n{reports}\n{smtp}");
    let ok = with("schedule = \"quarterly\"\nrecipients = [\"audit@example.test\"]\nformat = \"html\"", smtp);
    let c = Config::load(&write_config(dir.path(), &ok), None).unwrap();
    assert_eq!(c.reports.schedule, reports::ReportSchedule::Quarterly);
    assert_eq!(c.reports.format, reports::ReportAttachment::Html);
    assert_eq!(c.reports.recipients, ["audit@example.test"]);
    for (body, key) in [
        (with("schedule = \"weekly\"", smtp), "reports.schedule"),
        (with("schedule = \"monthly\"", smtp), "reports.recipients"),
        (with("schedule = \"monthly\"\nrecipients = [\"audit\"]", smtp), "reports.recipients"),
        (with("schedule = \"monthly\"\nrecipients = [\"a@example.test\"]", ""), "[clm.smtp]"),
        (with("format = \"docx\"", smtp), "reports.format"),
    ] {
        let e = Config::load(&write_config(dir.path(), &body), None).unwrap_err().to_string();
        assert!(e.contains(key), "expected `{key}` in: {e}");
    }
}

#[test]
fn tiers_are_free_form_and_profiles_must_name_a_configured_one() {
    let with = |extra: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path(), &format!("{MINIMAL}{extra}"));
        let profile = dir.path().join("profiles/tls-server.toml");
        let text = std::fs::read_to_string(&profile).unwrap().replace("tier = \"internal\"", "tier = \"payments\"");
        std::fs::write(&profile, text).unwrap();
        Config::load(&path, None).map_err(|e| e.to_string())
    };
    let e = with("").unwrap_err();
    assert!(e.contains("profile `tls-server`.tier"), "{e}");
    assert!(e.contains("unknown tier `payments`: configure [clm.tiers.payments]"), "{e}");
    let c = with("[clm.tiers.payments]\nthresholds = [45, 10]\nescalate_within = 10\n").unwrap();
    let payments = crate::policy::Tier::parse("payments").unwrap();
    assert_eq!(c.profiles["tls-server"].tier, payments);
    assert_eq!(c.clm.tier(&payments).thresholds, [45, 10]);
    assert_eq!(c.clm.tier(&payments).escalate_within, Some(10));
    // A new tier starts from the defaults of `internal`.
    assert_eq!(c.clm.tier(&payments).channels, c.clm.tier(&crate::policy::Tier::internal()).channels);
    let e = with("[clm.tiers.payments]\n[clm.tiers.\"Gold Tier\"]\n").unwrap_err();
    assert!(e.contains("clm.tiers.Gold Tier"), "{e}");
    // A tier that needs approval gates its profiles.
    assert!(!c.profiles["tls-server"].approval);
    let c = with("[clm.tiers.payments]\napproval = true\n").unwrap();
    assert!(c.profiles["tls-server"].approval);
}

#[test]
fn a_database_password_is_percent_encoded_for_the_url_userinfo() {
    assert_eq!(percent_encode("Az09-._~"), "Az09-._~");
    assert_eq!(percent_encode("p@ss:w/rd%é"), "p%40ss%3Aw%2Frd%25%C3%A9");
}

#[test]
fn the_database_url_gets_the_password_and_keeps_its_parameters() {
    let mut c = Config::load(&conf("privca.example.toml"), None).unwrap();
    std::env::set_var("PRIVCA_TEST_DATABASE_URL_PASSWORD", "p@ss:w/rd%");
    c.database.password = Some(SecretRef::Env("PRIVCA_TEST_DATABASE_URL_PASSWORD".into()));
    c.database.url = "postgres://privca@db.example.com:5432/privca?sslmode=verify-full&application_name=a".into();
    assert_eq!(
        c.database_url().unwrap().expose(),
        "postgres://privca:p%40ss%3Aw%2Frd%25@db.example.com:5432/privca?sslmode=verify-full&application_name=a"
    );
    // sqlx reads the password back as it was.
    let options: sqlx::postgres::PgConnectOptions = c.database_url().unwrap().expose().parse().unwrap();
    assert_eq!(options.get_username(), "privca");
    let e = with_database_url("postgres://privca@db.example.com:notaport/privca").unwrap_err();
    assert!(e.contains("database.url"), "{e}");
}

/// Loads the minimal config with `database.url = url`.
fn with_database_url(url: &str) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let body = MINIMAL.replace("url = \"sqlite://x.db\"", &format!("url = \"{url}\""));
    Config::load(&write_config(dir.path(), &body), None).map_err(|e| e.to_string())
}
