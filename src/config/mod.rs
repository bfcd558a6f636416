//! Configuration: the TOML file parsed once at start-up into typed, validated values.
//!
//! Precedence is CLI > environment > file > default. Relative paths inside the file (SQLite
//! database, PIN files) are resolved against the data directory; the profile directory is
//! resolved against the config file's directory. Every error names the key that is wrong.
//! Secrets never live in the file: see [`secrets`].

pub mod acme;
pub mod admin;
pub mod clm;
pub mod discovery;
pub(crate) mod duration;
pub mod est;
pub(crate) mod raw;
pub mod reports;
pub mod scep;
pub mod secrets;

use std::{
    collections::BTreeMap,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use x509_cert::name::Name;

pub use self::secrets::{Secret, SecretRef};
use crate::{
    policy::Profile,
    signer::{KeyAlgorithm, QueueCapacity, SigningAlgorithm},
};

/// Debian's SoftHSM2 module, the default PKCS#11 module.
pub const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Default data directory when neither `--data-dir`, `PRIVCA_DATA_DIR` nor `data_dir` is set.
pub const DEFAULT_DATA_DIR: &str = "./var";

/// A configuration error that names the offending key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// TOML syntax or an unknown/mistyped key.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value is present but not acceptable.
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { key: key.into(), message: message.into() }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Development mode (allows auto-initialised tokens with PINs in files).
    pub dev: bool,
    /// Where the SQLite file, the SoftHSM2 token and generated files live.
    pub data_dir: PathBuf,
    /// Listeners and server behaviour.
    pub server: ServerConfig,
    /// Public base URLs baked into certificates.
    pub urls: Urls,
    /// The ledger database.
    pub database: DatabaseConfig,
    /// The PKCS#11 token.
    pub hsm: HsmConfig,
    /// The root CA key.
    pub root: CaKeyConfig,
    /// Issuing intermediates, by id.
    pub issuers: Vec<IssuerConfig>,
    /// Certificate profiles, by name.
    pub profiles: BTreeMap<String, Profile>,
    /// Audit chain sealing.
    pub audit: AuditConfig,
    /// CRL publication.
    pub crl: CrlConfig,
    /// OCSP responses.
    pub ocsp: OcspConfig,
    /// The ACME server.
    pub acme: acme::AcmeConfig,
    /// The EST server.
    pub est: est::EstConfig,
    /// The SCEP server.
    pub scep: scep::ScepConfig,
    /// Certificate lifecycle management.
    pub clm: clm::ClmConfig,
    /// The scheduled compliance report.
    pub reports: reports::ReportsConfig,
    /// The admin listener's client-certificate login.
    pub admin: admin::AdminConfig,
    /// Logging.
    pub log: LogConfig,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTPS listener (ACME, EST).
    pub https_listen: SocketAddr,
    /// Plain HTTP listener (AIA, CRL, OCSP, SCEP).
    pub http_listen: SocketAddr,
    /// Admin API listener (HTTPS).
    pub admin_listen: SocketAddr,
    /// DNS names / IP addresses in the server's own TLS certificate.
    pub tls_names: Vec<String>,
    /// Profile used to issue the server's own TLS certificate.
    pub tls_profile: String,
    /// How long in-flight requests may finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// Whole-request deadline: from the end of the request headers to the response, the request
    /// body included (a body that trickles in is cut by it).
    pub request_timeout: Duration,
    /// How long a connection may take to send a request's headers, counted from the moment it
    /// is ready for a request (after accept or the TLS handshake, and after each response).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and nothing received for this long is closed.
    pub idle_timeout: Duration,
    /// How long a TLS handshake may take.
    pub tls_handshake_timeout: Duration,
    /// Open connections per listener; `None`: derived at start-up from the open-file limit.
    pub max_connections: Option<usize>,
}

/// `[urls]`: bases without a trailing slash.
#[derive(Debug, Clone)]
pub struct Urls {
    /// Base of the plain HTTP listener as clients reach it.
    pub http_base: String,
    /// Base of the HTTPS listener as clients reach it.
    pub https_base: String,
}

/// `[database]`.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// Connection URL, password not included.
    pub url: String,
    /// Where the password comes from, if the URL needs one.
    pub password: Option<SecretRef>,
    /// Root CA file (PEM) for TLS to PostgreSQL (`sslrootcert`); it also makes `verify-full`
    /// the default mode. See [`crate::ledger::pg_tls`].
    pub ca_file: Option<PathBuf>,
    /// Pool size.
    pub max_connections: u32,
    /// How long an instance holds a cluster-wide background job's lease without renewing it
    /// ([`crate::jobs::lease`]): another instance takes the job over at most this long after
    /// the holder died.
    pub job_lease: Duration,
}

impl DatabaseConfig {
    /// True for `postgres://` / `postgresql://` URLs.
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("ca_file", &self.ca_file)
            .field("max_connections", &self.max_connections)
            .field("job_lease", &self.job_lease)
            .finish()
    }
}

/// Replaces the password part of `scheme://user:password@host` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_owned() };
    let rest = &url[scheme_end + 3..];
    match (rest.find('@'), rest.find(':')) {
        (Some(at), Some(colon)) if colon < at => {
            format!("{}{}:***{}", &url[..scheme_end + 3], &rest[..colon], &rest[at..])
        }
        _ => url.to_owned(),
    }
}

/// `[hsm]`.
#[derive(Debug, Clone)]
pub struct HsmConfig {
    /// PKCS#11 module path.
    pub module: PathBuf,
    /// Token label (tokens are selected by label, never by slot number).
    pub token_label: String,
    /// User PIN source.
    pub user_pin: SecretRef,
    /// SO PIN source (only needed to initialise a token).
    pub so_pin: Option<SecretRef>,
    /// Create the SoftHSM2 token and random PINs on first run (dev only).
    pub auto_init: bool,
    /// Session pool size (= concurrent HSM operations).
    pub sessions: usize,
    /// Signing jobs that may wait, per priority class (beyond them: refused as busy).
    pub queue_capacity: QueueCapacity,
}

impl HsmConfig {
    /// True when the module is SoftHSM2, whose token directory privca manages itself.
    pub fn is_softhsm(&self) -> bool {
        self.module.to_string_lossy().contains("softhsm")
    }
}

/// `[root]`: the root CA key and certificate.
#[derive(Debug, Clone)]
pub struct CaKeyConfig {
    /// Key type generated in the token.
    pub key: KeyAlgorithm,
    /// Subject distinguished name.
    pub subject: Name,
    /// Certificate lifetime.
    pub validity: Duration,
    /// Signature algorithm used with this key.
    pub signature: SigningAlgorithm,
}

/// `[[issuer]]`: an issuing intermediate.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// Id used in URLs, ledger rows and profiles.
    pub id: String,
    /// Key, subject, validity, signature.
    pub ca: CaKeyConfig,
    /// Signed by an external root (`privca init --issuer-csr` + `import-issuer`).
    pub external: bool,
    /// Name constraints (critical) for this intermediate.
    pub name_constraints: Option<NameConstraintsConfig>,
    /// CA rollover: this issuer takes over from another one at a set time.
    pub rollover: Option<Rollover>,
}

/// `replaces` + `active_from` of an `[[issuer]]`: from `active_from` on, profiles that name
/// `replaces` issue from this issuer; before it, SCEP's GetNextCACert announces it. The replaced
/// issuer keeps answering OCSP and publishing CRLs for what it issued.
#[derive(Debug, Clone)]
pub struct Rollover {
    /// The issuer this one succeeds.
    pub replaces: String,
    /// When issuance switches over.
    pub active_from: std::time::SystemTime,
}

/// Name constraints of an intermediate.
#[derive(Debug, Clone, Default)]
pub struct NameConstraintsConfig {
    /// Permitted DNS subtrees.
    pub permitted_dns: Vec<String>,
    /// Excluded DNS subtrees.
    pub excluded_dns: Vec<String>,
    /// Permitted IP ranges in CIDR form.
    pub permitted_ip: Vec<String>,
    /// Excluded IP ranges in CIDR form.
    pub excluded_ip: Vec<String>,
    /// Permitted email domains or mailboxes.
    pub permitted_email: Vec<String>,
    /// Excluded email domains or mailboxes.
    pub excluded_email: Vec<String>,
}

/// `[audit]`.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// How often new audit rows are linked into the chain and checkpointed.
    pub seal_interval: Duration,
    /// Key type of the checkpoint signing key.
    pub checkpoint_key: KeyAlgorithm,
}

/// `[crl]`: complete CRLs are re-signed every `full_interval` and valid for `full_validity`, and
/// `full_after_revocation` after the publisher first sees a revocation they do not list; delta
/// CRLs every `delta_interval` or within `check_interval` of a revocation.
#[derive(Debug, Clone)]
pub struct CrlConfig {
    /// nextUpdate − thisUpdate of complete CRLs.
    pub full_validity: Duration,
    /// How often a complete CRL is re-signed.
    pub full_interval: Duration,
    /// nextUpdate − thisUpdate of delta CRLs.
    pub delta_validity: Duration,
    /// How often a delta CRL is re-signed when nothing changed.
    pub delta_interval: Duration,
    /// How often the publisher looks for new revocations.
    pub check_interval: Duration,
    /// How long after the publisher first sees a revocation missing from the complete CRL it
    /// re-signs the complete CRL (revocations seen meanwhile join that one CRL); `None` (`"off"`):
    /// complete CRLs follow `full_interval` only.
    pub full_after_revocation: Option<Duration>,
    /// Keep expired certificates on CRLs (default: drop them once expired).
    pub keep_expired: bool,
}

/// `[ocsp]`: responses are valid for `validity`, re-signed when less than `refresh_before`
/// is left or at once after a revocation, by a pre-signer that looks for work every
/// `check_interval` and signs at most `presign_per_second` (its share of the HSM).
#[derive(Debug, Clone)]
pub struct OcspConfig {
    /// nextUpdate − thisUpdate.
    pub validity: Duration,
    /// Re-sign when less than this is left.
    pub refresh_before: Duration,
    /// Lifetime of delegated responder certificates (rotated at a third left).
    pub responder_validity: Duration,
    /// Pre-signer period.
    pub check_interval: Duration,
    /// Pre-signing budget.
    pub presign_per_second: u32,
    /// Sign requests carrying a nonce on demand (echoing it) instead of answering from cache.
    pub sign_nonce: bool,
    /// At most this many nonce-echoing responses a second; beyond, the nonce is left out.
    pub nonce_signatures_per_second: u32,
    /// How long a malformedRequest answer is held back, so that a flood of garbage cannot
    /// take the CPU from valid requests.
    pub malformed_delay: Duration,
}

/// `[log]`.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// JSON lines instead of human-readable output.
    pub json: bool,
    /// `tracing_subscriber::EnvFilter` directive.
    pub filter: String,
}

impl Config {
    /// Loads and validates `path`. `data_dir` (from `--data-dir` or `PRIVCA_DATA_DIR`)
    /// overrides the file's `data_dir`.
    pub fn load(path: &Path, data_dir: Option<PathBuf>) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let raw: raw::RawConfig =
            toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let data_dir = data_dir.or(raw.data_dir.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        build(raw, base, data_dir)
    }

    /// The issuer with this id.
    pub fn issuer(&self, id: &str) -> Option<&IssuerConfig> {
        self.issuers.iter().find(|i| i.id == id)
    }

    /// The SQLite file or PostgreSQL URL with the password filled in. The ledger runs on sqlx's
    /// `Any` driver, whose connect options are a URL (`AnyConnectOptions` is parsed into
    /// `PgConnectOptions` when it connects), so the password goes into the URL's userinfo,
    /// percent-encoded, as sqlx's own `PgConnectOptions` does when it writes one.
    pub fn database_url(&self) -> Result<Secret, std::io::Error> {
        let url = &self.database.url;
        let Some(password) = &self.database.password else {
            return Ok(Secret::new(url.clone()));
        };
        let password = password.read()?;
        let invalid = |e: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("database.url: {e}"));
        let mut parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        parsed
            .set_password(Some(&percent_encode(password.expose())))
            .map_err(|()| invalid("a URL without a host takes no password"))?;
        Ok(Secret::new(parsed.into()))
    }
}

/// `s` for a URL's userinfo: every byte but RFC 3986's unreserved characters percent-encoded.
fn percent_encode(s: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    utf8_percent_encode(s, UNRESERVED).to_string()
}

fn build(raw: raw::RawConfig, base: &Path, data_dir: PathBuf) -> Result<Config, ConfigError> {
    let server = server(&raw.server)?;
    let urls = Urls {
        http_base: base_url("urls.http_base", &raw.urls.http_base)?,
        https_base: base_url("urls.https_base", &raw.urls.https_base)?,
    };
    let database = database(&raw.database, &data_dir)?;
    let hsm = hsm(&raw.hsm, &data_dir, raw.dev)?;
    let root = ca_key("root", &raw.root.key, &raw.root.subject, &raw.root.validity, raw.root.rsa_signature.as_deref())?;
    let mut issuers = Vec::new();
    for (i, r) in raw.issuers.iter().enumerate() {
        let key = format!("issuer[{i}]");
        if r.id.is_empty() || !r.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(ConfigError::invalid(format!("{key}.id"), "use letters, digits and '-'"));
        }
        if r.id == "root" || issuers.iter().any(|x: &IssuerConfig| x.id == r.id) {
            return Err(ConfigError::invalid(format!("{key}.id"), format!("`{}` is reserved or used twice", r.id)));
        }
        let ca = ca_key(&key, &r.key, &r.subject, &r.validity, r.rsa_signature.as_deref())?;
        if ca.validity > root.validity {
            return Err(ConfigError::invalid(format!("{key}.validity"), "longer than the root's"));
        }
        let rollover = rollover(&key, r, &issuers)?;
        issuers.push(IssuerConfig {
            id: r.id.clone(),
            ca,
            external: r.external,
            rollover,
            name_constraints: r.name_constraints.as_ref().map(|n| NameConstraintsConfig {
                permitted_dns: n.permitted_dns.clone(),
                excluded_dns: n.excluded_dns.clone(),
                permitted_ip: n.permitted_ip.clone(),
                excluded_ip: n.excluded_ip.clone(),
                permitted_email: n.permitted_email.clone(),
                excluded_email: n.excluded_email.clone(),
            }),
        });
    }
    if issuers.is_empty() {
        return Err(ConfigError::invalid("issuer", "at least one [[issuer]] is required"));
    }
    let mut profiles = load_profiles(&base.join(&raw.profiles.dir), &issuers)?;
    if !profiles.contains_key(&server.tls_profile) {
        return Err(ConfigError::invalid("server.tls_profile", format!("no profile named `{}`", server.tls_profile)));
    }
    let audit = AuditConfig {
        seal_interval: duration::parse("audit.seal_interval", &raw.audit.seal_interval)?,
        checkpoint_key: key_algorithm("audit.checkpoint_key", &raw.audit.checkpoint_key)?,
    };
    let crl = CrlConfig {
        full_validity: duration::parse("crl.full_validity", &raw.crl.full_validity)?,
        full_interval: duration::parse("crl.full_interval", &raw.crl.full_interval)?,
        delta_validity: duration::parse("crl.delta_validity", &raw.crl.delta_validity)?,
        delta_interval: duration::parse("crl.delta_interval", &raw.crl.delta_interval)?,
        check_interval: duration::parse("crl.check_interval", &raw.crl.check_interval)?,
        full_after_revocation: match raw.crl.full_after_revocation.trim() {
            "off" => None,
            v => Some(duration::parse("crl.full_after_revocation", v)?),
        },
        keep_expired: raw.crl.keep_expired,
    };
    if crl.full_after_revocation.is_some_and(|d| d >= crl.full_interval) {
        return Err(ConfigError::invalid(
            "crl.full_after_revocation",
            "must be shorter than crl.full_interval (or \"off\")",
        ));
    }
    if crl.full_interval >= crl.full_validity {
        return Err(ConfigError::invalid("crl.full_interval", "must be shorter than crl.full_validity"));
    }
    if crl.delta_interval >= crl.delta_validity {
        return Err(ConfigError::invalid("crl.delta_interval", "must be shorter than crl.delta_validity"));
    }
    let ocsp = OcspConfig {
        validity: duration::parse("ocsp.validity", &raw.ocsp.validity)?,
        refresh_before: duration::parse("ocsp.refresh_before", &raw.ocsp.refresh_before)?,
        responder_validity: duration::parse("ocsp.responder_validity", &raw.ocsp.responder_validity)?,
        check_interval: duration::parse("ocsp.check_interval", &raw.ocsp.check_interval)?,
        presign_per_second: raw.ocsp.presign_per_second,
        sign_nonce: raw.ocsp.sign_nonce,
        nonce_signatures_per_second: raw.ocsp.nonce_signatures_per_second,
        malformed_delay: duration::parse("ocsp.malformed_delay", &raw.ocsp.malformed_delay)?,
    };
    if ocsp.refresh_before >= ocsp.validity {
        return Err(ConfigError::invalid("ocsp.refresh_before", "must be shorter than ocsp.validity"));
    }
    if ocsp.presign_per_second == 0 {
        return Err(ConfigError::invalid("ocsp.presign_per_second", "must be at least 1"));
    }
    if ocsp.nonce_signatures_per_second == 0 {
        return Err(ConfigError::invalid(
            "ocsp.nonce_signatures_per_second",
            "must be at least 1 (sign_nonce = false turns nonce signing off)",
        ));
    }
    let json = match raw.log.format.as_deref() {
        None | Some("human") => false,
        Some("json") => true,
        Some(other) => return Err(ConfigError::invalid("log.format", format!("`{other}`: use human or json"))),
    };
    let log = LogConfig { json, filter: raw.log.filter.unwrap_or_else(|| "info".into()) };
    let clm = clm::build(raw.clm, &data_dir)?;
    // A tier with `approval = true` gates every profile of that tier.
    for p in profiles.values_mut() {
        p.approval |= clm.tier(&p.tier).approval;
    }
    let acme = acme::build(raw.acme, raw.dev, &profiles, &clm)?;
    let est = est::build(raw.est, &profiles)?;
    let scep = scep::build(raw.scep, &profiles, &data_dir)?;
    let reports = reports::build(raw.reports, clm.smtp.is_some())?;
    let admin = admin::build(raw.admin, &data_dir)?;
    // Every tier a profile names is one of `[clm.tiers]`.
    for p in profiles.values() {
        clm.known_tier(&format!("profile `{}`.tier", p.name), p.tier.as_str())?;
    }
    Ok(Config {
        dev: raw.dev,
        data_dir,
        server,
        urls,
        database,
        hsm,
        root,
        issuers,
        profiles,
        audit,
        crl,
        ocsp,
        acme,
        est,
        scep,
        clm,
        reports,
        admin,
        log,
    })
}

fn server(raw: &raw::RawServer) -> Result<ServerConfig, ConfigError> {
    let addr = |key: &str, v: &str| {
        v.parse::<SocketAddr>()
            .map_err(|_| ConfigError::invalid(key, format!("`{v}` is not an address like 127.0.0.1:8443")))
    };
    if raw.tls_names.is_empty() {
        return Err(ConfigError::invalid("server.tls_names", "name at least one host"));
    }
    Ok(ServerConfig {
        https_listen: addr("server.https_listen", &raw.https_listen)?,
        http_listen: addr("server.http_listen", &raw.http_listen)?,
        admin_listen: addr("server.admin_listen", &raw.admin_listen)?,
        tls_names: raw.tls_names.clone(),
        tls_profile: raw.tls_profile.clone(),
        shutdown_grace: duration::parse("server.shutdown_grace", &raw.shutdown_grace)?,
        request_timeout: positive("server.request_timeout", &raw.request_timeout)?,
        header_read_timeout: positive("server.header_read_timeout", &raw.header_read_timeout)?,
        idle_timeout: positive("server.idle_timeout", &raw.idle_timeout)?,
        tls_handshake_timeout: positive("server.tls_handshake_timeout", &raw.tls_handshake_timeout)?,
        max_connections: match raw.max_connections {
            None => None,
            Some(n @ 1..=MAX_CONNECTIONS_LIMIT) => Some(n as usize),
            Some(n) => {
                return Err(ConfigError::invalid(
                    "server.max_connections",
                    format!("{n} is not between 1 and {MAX_CONNECTIONS_LIMIT} (leave it out to derive it from the open-file limit)"),
                ))
            }
        },
    })
}

/// Largest accepted `server.max_connections` (per listener).
const MAX_CONNECTIONS_LIMIT: u64 = 1_000_000;

/// A duration of at least one millisecond and at most a day (a server timeout).
fn positive(key: &str, value: &str) -> Result<Duration, ConfigError> {
    let d = duration::parse(key, value)?;
    if d.is_zero() || d > Duration::from_secs(86_400) {
        return Err(ConfigError::invalid(key, format!("`{value}` must be more than 0 and at most 1d")));
    }
    Ok(d)
}

fn base_url(key: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim_end_matches('/');
    if !(v.starts_with("http://") || v.starts_with("https://")) || v.len() < 10 {
        return Err(ConfigError::invalid(key, format!("`{v}` is not an http(s) URL")));
    }
    Ok(v.to_owned())
}

fn database(raw: &raw::RawDatabase, data_dir: &Path) -> Result<DatabaseConfig, ConfigError> {
    let url = if let Some(file) = raw.url.strip_prefix("sqlite://") {
        let (file, query) = file.split_once('?').unwrap_or((file, ""));
        if file.is_empty() {
            return Err(ConfigError::invalid("database.url", "sqlite:// needs a file name"));
        }
        let path = data_dir.join(file);
        let query = if query.is_empty() { "mode=rwc".to_owned() } else { query.to_owned() };
        format!("sqlite://{}?{query}", path.display())
    } else if raw.url.starts_with("postgres://") || raw.url.starts_with("postgresql://") {
        raw.url.clone()
    } else {
        return Err(ConfigError::invalid("database.url", "use sqlite://FILE or postgres://USER@HOST/DB"));
    };
    if raw.max_connections == 0 {
        return Err(ConfigError::invalid("database.max_connections", "must be at least 1"));
    }
    let password = raw.password.as_ref().map(|p| p.resolve("database.password", data_dir)).transpose()?;
    let ca_file = database_tls(&url, raw.ca_file.as_deref(), data_dir)?;
    if crate::ledger::pg_tls::is_postgres(&url) {
        // Refused here, not at the first connection, if sqlx cannot read it.
        <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&url)
            .map_err(|e| ConfigError::invalid("database.url", format!("not a PostgreSQL URL sqlx reads: {e}")))?;
    }
    let job_lease = duration::parse("database.job_lease", &raw.job_lease)?;
    if !(Duration::from_secs(3)..=Duration::from_secs(3600)).contains(&job_lease) {
        return Err(ConfigError::invalid("database.job_lease", "between 3s and 1h"));
    }
    Ok(DatabaseConfig { url, password, ca_file, max_connections: raw.max_connections, job_lease })
}

/// Checks the TLS settings of a PostgreSQL URL and `database.ca_file` (resolved against the data
/// directory): a known `sslmode`, root CA files that exist and hold PEM certificates, not both a
/// CA file and `sslrootcert`, and no CA file with a mode that would ignore it.
fn database_tls(url: &str, ca_file: Option<&Path>, data_dir: &Path) -> Result<Option<PathBuf>, ConfigError> {
    let is_postgres = crate::ledger::pg_tls::is_postgres(url);
    if !is_postgres {
        return match ca_file {
            Some(_) => Err(ConfigError::invalid("database.ca_file", "only for a postgres:// url")),
            None => Ok(None),
        };
    }
    let parsed =
        url::Url::parse(url).map_err(|e| ConfigError::invalid("database.url", format!("not a valid URL: {e}")))?;
    let mut mode = None;
    let mut url_root = None;
    for (k, v) in parsed.query_pairs() {
        if k == "sslmode" || k == "ssl-mode" {
            if !["disable", "allow", "prefer", "require", "verify-ca", "verify-full"].contains(&&*v) {
                return Err(ConfigError::invalid(
                    "database.url",
                    format!("sslmode `{v}`: use disable, allow, prefer, require, verify-ca or verify-full"),
                ));
            }
            mode = Some(v.into_owned());
        } else if crate::ledger::pg_tls::SSLROOTCERT_KEYS.contains(&&*k) {
            url_root = Some(PathBuf::from(&*v));
        }
    }
    if let Some(root) = &url_root {
        check_ca_file("database.url", root)?;
    }
    let Some(ca_file) = ca_file else { return Ok(None) };
    let ca_file = data_dir.join(ca_file);
    if url_root.is_some() {
        return Err(ConfigError::invalid("database.ca_file", "the url sets sslrootcert too: keep one of them"));
    }
    if let Some(mode) = mode.filter(|m| m != "verify-ca" && m != "verify-full") {
        return Err(ConfigError::invalid(
            "database.ca_file",
            format!("the url sets sslmode={mode}, which does not check the server's certificate: use verify-full"),
        ));
    }
    check_ca_file("database.ca_file", &ca_file)?;
    Ok(Some(ca_file))
}

/// `path` can be read and holds at least one PEM certificate, all of which parse.
fn check_ca_file(key: &str, path: &Path) -> Result<(), ConfigError> {
    use rustls_pki_types::{pem::PemObject, CertificateDer};
    let pem = std::fs::read(path)
        .map_err(|e| ConfigError::invalid(key, format!("cannot read the CA file {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::invalid(key, format!("the CA file {} is not valid PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ConfigError::invalid(key, format!("the CA file {} holds no PEM certificate", path.display())));
    }
    Ok(())
}

fn hsm(raw: &raw::RawHsm, data_dir: &Path, dev: bool) -> Result<HsmConfig, ConfigError> {
    if raw.token_label.is_empty() || raw.token_label.len() > 32 {
        return Err(ConfigError::invalid("hsm.token_label", "1 to 32 characters"));
    }
    if raw.auto_init && !dev {
        return Err(ConfigError::invalid("hsm.auto_init", "only allowed with dev = true"));
    }
    let sessions = if raw.sessions == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
    } else {
        raw.sessions
    };
    let derived = QueueCapacity::derived(sessions);
    let or = |v: usize, d: usize| if v == 0 { d } else { v };
    let q = &raw.queue_capacity;
    let queue_capacity = QueueCapacity {
        issuance: or(q.issuance, derived.issuance),
        handshake: or(q.handshake, derived.handshake),
        protocol: or(q.protocol, derived.protocol),
        nonce: or(q.nonce, derived.nonce),
    };
    Ok(HsmConfig {
        module: raw.module.clone(),
        token_label: raw.token_label.clone(),
        user_pin: raw.user_pin.resolve("hsm.user_pin", data_dir)?,
        so_pin: raw.so_pin.as_ref().map(|p| p.resolve("hsm.so_pin", data_dir)).transpose()?,
        auto_init: raw.auto_init,
        sessions,
        queue_capacity,
    })
}

fn key_algorithm(key: &str, v: &str) -> Result<KeyAlgorithm, ConfigError> {
    v.parse().map_err(|_| ConfigError::invalid(key, format!("`{v}`: use one of {}", KeyAlgorithm::NAMES.join(", "))))
}

fn ca_key(
    key: &str,
    algorithm: &str,
    subject: &str,
    validity: &str,
    rsa_signature: Option<&str>,
) -> Result<CaKeyConfig, ConfigError> {
    let alg = key_algorithm(&format!("{key}.key"), algorithm)?;
    let subject_name: Name = subject
        .parse()
        .map_err(|_| ConfigError::invalid(format!("{key}.subject"), format!("`{subject}` is not an RFC 4514 name")))?;
    if subject_name.0.is_empty() {
        return Err(ConfigError::invalid(format!("{key}.subject"), "must not be empty"));
    }
    let pss = match rsa_signature {
        None | Some("pkcs1") => false,
        Some("pss") if alg.is_rsa() => true,
        Some(other) => {
            return Err(ConfigError::invalid(
                format!("{key}.rsa_signature"),
                format!("`{other}`: use pkcs1 or pss (RSA keys only)"),
            ))
        }
    };
    Ok(CaKeyConfig {
        key: alg,
        subject: subject_name,
        validity: duration::parse(&format!("{key}.validity"), validity)?,
        signature: SigningAlgorithm::for_key(alg, pss),
    })
}

/// Checks `replaces` / `active_from`: both or neither; `replaces` names an issuer listed
/// earlier (so there are no cycles) that no other issuer replaces.
fn rollover(key: &str, r: &raw::RawIssuer, earlier: &[IssuerConfig]) -> Result<Option<Rollover>, ConfigError> {
    let (replaces, active_from) = match (&r.replaces, &r.active_from) {
        (None, None) => return Ok(None),
        (Some(replaces), Some(active_from)) => (replaces, active_from),
        (Some(_), None) => return Err(ConfigError::invalid(format!("{key}.active_from"), "required with `replaces`")),
        (None, Some(_)) => return Err(ConfigError::invalid(format!("{key}.replaces"), "required with `active_from`")),
    };
    if !earlier.iter().any(|i| &i.id == replaces) {
        return Err(ConfigError::invalid(
            format!("{key}.replaces"),
            format!("no [[issuer]] `{replaces}` listed before this one"),
        ));
    }
    if earlier.iter().any(|i| i.rollover.as_ref().is_some_and(|o| &o.replaces == replaces)) {
        return Err(ConfigError::invalid(format!("{key}.replaces"), format!("`{replaces}` is already replaced")));
    }
    let at = active_from.parse::<der::DateTime>().map_err(|_| {
        ConfigError::invalid(format!("{key}.active_from"), format!("`{active_from}`: use YYYY-MM-DDTHH:MM:SSZ"))
    })?;
    Ok(Some(Rollover { replaces: replaces.clone(), active_from: at.to_system_time() }))
}

fn load_profiles(dir: &Path, issuers: &[IssuerConfig]) -> Result<BTreeMap<String, Profile>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ConfigError::Read { path: dir.to_owned(), source })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut profiles = BTreeMap::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        let raw: raw::RawProfile =
            toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.clone(), message: e.to_string() })?;
        let key = format!("profile `{}`", raw.name);
        let validity = duration::parse(&format!("{key}.validity"), &raw.validity)?;
        if !issuers.iter().any(|i| i.id == raw.issuer) {
            return Err(ConfigError::invalid(
                format!("{key}.issuer"),
                format!("no [[issuer]] with id `{}`", raw.issuer),
            ));
        }
        let profile = Profile::from_raw(raw, validity)?;
        if profiles.insert(profile.name.clone(), profile).is_some() {
            return Err(ConfigError::invalid(key, "defined twice"));
        }
    }
    if profiles.is_empty() {
        return Err(ConfigError::invalid("profiles.dir", format!("no *.toml profiles in {}", dir.display())));
    }
    Ok(profiles)
}

#[cfg(test)]
mod tests;
