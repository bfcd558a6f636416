//! The command line: argument parsing (clap) and one function per subcommand. Commands print
//! results on stdout and errors on stderr; exit status 0 = success, 1 = error, 3 = the request
//! waits for approval.

use std::{io::Write, path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};

use crate::{
    app::App,
    ca::{IssuanceRequest, IssueOutcome, Requester, RevocationReason},
    config::Config,
    error::CaError,
    ledger::{ApprovalStatus, CertFilter, RevokeOutcome},
};

/// privca: a private CA whose every signature happens in a PKCS#11 HSM.
#[derive(Debug, Parser)]
#[command(name = "privca", version, about)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, default_value = "conf/privca.dev.toml")]
    pub config: PathBuf,
    /// Data directory (SQLite file, SoftHSM2 token, generated files).
    #[arg(long, global = true, env = "PRIVCA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format (overrides `log.format`).
    #[arg(long, global = true, value_parser = ["human", "json"])]
    pub log_format: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the token, keys, CA certificates and database (idempotent).
    Init {
        /// (Re)write the CSR of every external issuer that has no certificate yet.
        #[arg(long)]
        issuer_csr: bool,
    },
    /// Run the servers (runs `init` first when needed).
    Serve,
    /// Parse the config, open the database, log into the token and find the keys; bind nothing.
    CheckConfig,
    /// Issue a certificate from a CSR (PEM or DER); prints the PEM chain.
    Issue(IssueArgs),
    /// Revoke a certificate.
    Revoke {
        /// Serial number, hexadecimal.
        #[arg(long)]
        serial: String,
        /// RFC 5280 reason name, e.g. keyCompromise.
        #[arg(long, default_value = "unspecified")]
        reason: String,
        /// When the key is known or suspected to have been compromised: YYYY-MM-DD (UTC
        /// midnight) or Unix seconds (RFC 5280 invalidityDate).
        #[arg(long)]
        invalidity_date: Option<String>,
    },
    /// Flag a certificate for early renewal: ACME ARI suggests renewing it now.
    RenewEarly {
        /// Serial number, hexadecimal.
        #[arg(long)]
        serial: String,
        /// Why (recorded in the audit log).
        #[arg(long, default_value = "operator request")]
        reason: String,
    },
    /// List certificates.
    List {
        /// Only certificates expiring within this many days.
        #[arg(long)]
        expiring_within: Option<u32>,
        /// Only this owner.
        #[arg(long)]
        owner: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Audit log operations.
    Audit {
        /// Which one.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// ACME server administration.
    Acme {
        #[command(subcommand)]
        command: AcmeCommand,
    },
    /// EST server administration.
    Est {
        #[command(subcommand)]
        command: EstCommand,
    },
    /// SCEP server administration.
    Scep {
        #[command(subcommand)]
        command: ScepCommand,
    },
    /// The approval queue.
    Approvals {
        /// Which one.
        #[command(subcommand)]
        command: ApprovalCommand,
    },
    /// CRL operations.
    Crl {
        /// Which one.
        #[command(subcommand)]
        command: CrlCommand,
    },
    /// Scan TLS endpoints and merge what they serve into the inventory.
    Discover(crate::clm::discover::DiscoverArgs),
    /// CLM owners: people and teams with contacts.
    Owner {
        #[command(subcommand)]
        command: crate::clm::cli::OwnerCommand,
    },
    /// The CLM inventory: every certificate with owner, tier and status.
    Inventory {
        #[command(subcommand)]
        command: crate::clm::cli::InventoryCommand,
    },
    /// CLM expiry policy and notifications.
    Clm {
        #[command(subcommand)]
        command: crate::clm::cli::ClmCommand,
    },
    /// Which instance runs each cluster-wide background job (the leases in the ledger).
    Jobs {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Write a consistent copy of the ledger and the SoftHSM2 token directory, with a manifest.
    Backup {
        /// A new (or empty) directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Bring a backup back (with every privca stopped), re-applying what happened after it.
    Restore {
        /// The backup directory.
        #[arg(long)]
        from: PathBuf,
        /// An audit export taken after the backup, when the current ledger is lost.
        #[arg(long)]
        audit_export: Option<PathBuf>,
        /// Restore although nothing tells what happened after the backup.
        #[arg(long)]
        accept_unknown_changes: bool,
        /// Replace the token directory even when one exists.
        #[arg(long)]
        token: bool,
    },
    /// Admin API and dashboard users and tokens.
    Admin {
        #[command(subcommand)]
        command: crate::admin::cli::AdminCommand,
    },
    /// Compliance or access-review report of a period, as CSV, HTML or PDF.
    Report(crate::admin::reports::command::ReportArgs),
    /// Install the certificate an external root signed for an `external = true` issuer.
    ImportIssuer {
        /// PEM file: the issuer certificate first, then the chain above it.
        cert: PathBuf,
        /// Issuer id.
        #[arg(long)]
        issuer: String,
    },
}

/// `privca issue` arguments.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// CSR file (PEM or DER).
    #[arg(long)]
    pub csr: PathBuf,
    /// Profile name.
    #[arg(long)]
    pub profile: String,
    /// Write the chain here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// CLM owner (default: the profile's).
    #[arg(long)]
    pub owner: Option<String>,
}

/// `privca audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and the signed checkpoints; non-zero exit on any finding. With
    /// `--file`, verify an export offline (no ledger, no token).
    Verify {
        /// An export written by `privca audit export` or the admin API's `/audit/export`.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Write sealed rows with their checkpoints and the checkpoint key, for offline checking.
    Export {
        /// First chain position (seq).
        #[arg(long, default_value_t = 1)]
        from: i64,
        /// Last chain position (default: the last checkpoint).
        #[arg(long)]
        to: Option<i64>,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the SHA-256 of the checkpoint key (what an export's `checkpoint_key_sha256` must be).
    Key,
    /// Link new rows into the chain and sign a checkpoint now.
    Seal,
}

/// `privca crl …`.
#[derive(Debug, Subcommand)]
pub enum CrlCommand {
    /// Sign and publish CRLs now (every CA unless `--issuer`; complete CRLs then deltas).
    Publish {
        /// Only this CA (`root` or an issuer id).
        #[arg(long)]
        issuer: Option<String>,
        /// Only delta CRLs.
        #[arg(long)]
        delta: bool,
    },
}

/// `privca acme …`.
#[derive(Debug, Subcommand)]
pub enum AcmeCommand {
    /// External account binding keys.
    Eab {
        #[command(subcommand)]
        command: EabCommand,
    },
}

/// `privca acme eab …`.
#[derive(Debug, Subcommand)]
pub enum EabCommand {
    /// Create an EAB key; prints the key id and the HMAC key (base64url, shown once).
    Add {
        /// CLM owner of every certificate issued to the account bound with this key.
        #[arg(long)]
        owner: String,
        /// Profile the bound account must use.
        #[arg(long)]
        profile: Option<String>,
    },
}

/// `privca est …`.
#[derive(Debug, Subcommand)]
pub enum EstCommand {
    /// HTTP Basic users of EST labels.
    User {
        #[command(subcommand)]
        command: EstUserCommand,
    },
}

/// `privca est user …`.
#[derive(Debug, Subcommand)]
pub enum EstUserCommand {
    /// Create a user (or reset its password); prints the password on the last line, once.
    Add {
        /// User name (the certificate owner unless the label names one).
        name: String,
        /// EST label the user may enroll on.
        #[arg(long, default_value = "default")]
        label: String,
        /// Read the password from this file instead of generating one (at least 12 characters;
        /// mode 0600 or stricter).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

/// `privca scep …`.
#[derive(Debug, Subcommand)]
pub enum ScepCommand {
    /// One-time challenge passwords.
    Challenge {
        #[command(subcommand)]
        command: ScepChallengeCommand,
    },
}

/// `privca scep challenge …`.
#[derive(Debug, Subcommand)]
pub enum ScepChallengeCommand {
    /// Create a challenge; prints it on the last line, once (only its hash is stored).
    New {
        /// Profile it enrolls into (a [scep.names] entry must use it).
        #[arg(long)]
        profile: String,
        /// CLM owner of the certificate (default: the name's or the profile's owner).
        #[arg(long)]
        owner: Option<String>,
        /// Lifetime, e.g. 1h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// How many enrollments it allows.
        #[arg(long, default_value_t = 1)]
        uses: u32,
    },
}

/// `privca approvals …`.
#[derive(Debug, Subcommand)]
pub enum ApprovalCommand {
    /// Show pending requests (`--all` for every state).
    List {
        /// Include decided requests.
        #[arg(long)]
        all: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Approve and issue.
    Approve {
        /// Approval id.
        id: i64,
        /// Write the chain here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Refuse.
    Deny {
        /// Approval id.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

/// Parses the config, sets up logging and the dev token environment, then runs `cli.command`.
pub fn run(cli: Cli) -> ExitCode {
    if let Command::Audit { command: AuditCommand::Verify { file: Some(path) } } = &cli.command {
        return audit_verify_file(path);
    }
    let config = match Config::load(&cli.config, cli.data_dir.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = match cli.log_format.as_deref() {
        Some(f) => f == "json",
        None => config.log.json,
    };
    let default_filter = if matches!(cli.command, Command::Serve) { config.log.filter.clone() } else { "warn".into() };
    crate::server::init_tracing(json, &default_filter);
    // Before any thread exists: points SoftHSM2 at the data directory's token store.
    if let Err(e) = crate::signer::pkcs11::token::prepare_softhsm(&config.hsm, &config.data_dir) {
        eprintln!("error: cannot prepare the SoftHSM2 token directory: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Restore { from, audit_export, accept_unknown_changes, token } => {
            let opts = crate::backup::restore::RestoreOptions { from, audit_export, accept_unknown_changes, token };
            runtime.block_on(restore(config, opts))
        }
        command => runtime.block_on(dispatch(config, command)),
    };
    drop(runtime);
    crate::signer::pkcs11::finalize();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(config: Config, command: Command) -> Result<ExitCode, CaError> {
    let app = App::open(config).await?;
    let code = match command {
        Command::Init { issuer_csr } => init(&app, issuer_csr).await,
        Command::Serve => crate::server::serve(app.clone()).await.map(|()| ExitCode::SUCCESS),
        Command::CheckConfig => check_config(&app).await,
        Command::Issue(args) => issue(&app, args).await,
        Command::Revoke { serial, reason, invalidity_date } => {
            revoke(&app, &serial, &reason, invalidity_date.as_deref()).await
        }
        Command::RenewEarly { serial, reason } => {
            let ca = app.ca().await?;
            if ca.flag_renew_early(&serial, &reason, &Requester::cli()).await? {
                println!("{serial} flagged for early renewal");
            } else {
                println!("{serial} was already flagged or is not valid");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::List { expiring_within, owner, json } => list(&app, expiring_within, owner, json).await,
        Command::Audit { command: AuditCommand::Verify { .. } } => audit_verify(&app).await,
        Command::Audit { command: AuditCommand::Export { from, to, out } } => {
            let spki = app.signing.key_info(crate::audit::CHECKPOINT_KEY)?.spki_der;
            let doc = crate::audit::export::export(&app.ledger, &spki, from, to).await?;
            let text = serde_json::to_string_pretty(&doc).map_err(|e| CaError::internal("JSON").with_source(e))?;
            write_output(out.as_ref(), &(text + "\n"))?;
            eprintln!("{} rows, {} checkpoints", doc.rows.len(), doc.checkpoints.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command: AuditCommand::Key } => {
            let spki = app.signing.key_info(crate::audit::CHECKPOINT_KEY)?.spki_der;
            println!("{}", crate::audit::export::key_fingerprint(&spki));
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command: AuditCommand::Seal } => {
            crate::audit::seal(&app.ledger, &app.signing)
                .await
                .map_err(|e| CaError::internal("sealing failed").with_source(e))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Approvals { command } => approvals(&app, command).await,
        Command::Scep {
            command: ScepCommand::Challenge { command: ScepChallengeCommand::New { profile, owner, ttl, uses } },
        } => {
            let ttl = crate::config::duration::parse("--ttl", &ttl).map_err(|e| CaError::bad_request(e.to_string()))?;
            let ca = app.ca().await?;
            let challenge =
                crate::adapters::scep::new_challenge(&ca, &profile, owner.as_deref(), ttl, uses, &Requester::cli())
                    .await?;
            println!(
                "SCEP challenge for profile `{profile}` ({uses} use(s), valid {}s); shown only now:",
                ttl.as_secs()
            );
            println!("{challenge}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Est { command: EstCommand::User { command: EstUserCommand::Add { name, label, password_file } } } => {
            // Read as a secret file: refused when group or others may read it.
            let password = match password_file {
                Some(path) => Some(
                    crate::config::SecretRef::File { key: "--password-file".into(), path }
                        .read()
                        .map_err(|e| CaError::bad_request(e.to_string()))?,
                ),
                None => None,
            };
            let generated = password.is_none();
            let ca = app.ca().await?;
            let password = password.map(|p| p.expose().to_owned());
            let password = crate::adapters::est::add_user(&ca, &label, &name, password, &Requester::cli()).await?;
            if generated {
                println!("EST user `{name}` on label `{label}`; the password is shown only now:");
                println!("{password}");
            } else {
                println!("EST user `{name}` on label `{label}`: password set from the file");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Acme { command: AcmeCommand::Eab { command: EabCommand::Add { owner, profile } } } => {
            let ca = app.ca().await?;
            let (kid, key) =
                crate::adapters::acme::create_eab_key(&ca, &owner, profile.as_deref(), &Requester::cli()).await?;
            println!("EAB key for owner `{owner}` (the HMAC key is shown only now):");
            println!("kid: {kid}");
            println!("hmac_key: {key}");
            // `=` keeps a key that starts with `-` (base64url) from being read as an option.
            println!("certbot --eab-kid {kid} --eab-hmac-key={key}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Crl { command: CrlCommand::Publish { issuer, delta } } => crl_publish(&app, issuer, delta).await,
        Command::Discover(args) => crate::clm::discover::command::run(&app, args).await,
        Command::Owner { command } => crate::clm::cli::owner(&app, command).await,
        Command::Inventory { command } => crate::clm::cli::inventory(&app, command).await,
        Command::Clm { command } => crate::clm::cli::clm(&app, command).await,
        Command::Admin { command } => crate::admin::cli::run(&app, command).await,
        Command::Jobs { json } => {
            let leases = app.ledger.job_leases().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&leases).map_err(|e| CaError::internal("JSON").with_source(e))?
                );
            } else {
                let now = crate::ledger::now();
                for l in &leases {
                    let state = if l.expires_at > now {
                        format!("held for {} s more", l.expires_at - now)
                    } else {
                        "free".to_owned()
                    };
                    println!("{:<26} {:<40} fence {:<6} {state}", l.job, l.holder, l.fence);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { out } => {
            let m = crate::backup::backup(&app, &out).await?;
            println!(
                "backup in {}: {} ledger, {} certificates, audit seq {}, token {}",
                out.display(),
                m.database,
                m.high_water.certificates,
                m.high_water.audit_seq,
                if m.token == "softhsm" { "copied" } else { "external: back it up with the HSM's own procedure" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore { .. } => Err(CaError::internal("restore runs without an opened ledger")),
        Command::Report(args) => crate::admin::reports::command::run(&app, args).await,
        Command::ImportIssuer { cert, issuer } => {
            let pem = read_file(&cert)?;
            crate::ca::bootstrap::import_issuer(
                &app.config,
                &app.ledger,
                &app.signing,
                &issuer,
                &String::from_utf8_lossy(&pem),
            )
            .await?;
            println!("issuer {issuer} installed");
            Ok(ExitCode::SUCCESS)
        }
    };
    app.seal().await;
    app.ledger.close().await;
    code
}

fn read_file(path: &PathBuf) -> Result<Vec<u8>, CaError> {
    std::fs::read(path).map_err(|e| CaError::bad_request(format!("cannot read {}", path.display())).with_source(e))
}

fn write_output(out: Option<&PathBuf>, text: &str) -> Result<(), CaError> {
    match out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| CaError::internal(format!("cannot write {}", path.display())).with_source(e)),
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| CaError::internal("cannot write to stdout").with_source(e)),
    }
}

async fn init(app: &App, issuer_csr: bool) -> Result<ExitCode, CaError> {
    let report = app.bootstrap(issuer_csr).await?;
    for k in &report.generated_keys {
        println!("generated key {k} in token {}", app.config.hsm.token_label);
    }
    for c in &report.created_certificates {
        println!("created CA certificate {c}");
    }
    for p in &report.csrs {
        println!("issuer CSR: {} (sign it with your root, then run `privca import-issuer`)", p.display());
    }
    if report.generated_keys.is_empty() && report.created_certificates.is_empty() {
        println!("already initialised: nothing to do");
    }
    println!("root CA: {}", report.root_pem.display());
    Ok(ExitCode::SUCCESS)
}

async fn check_config(app: &App) -> Result<ExitCode, CaError> {
    app.ledger.ping().await?;
    let ca = app.ca().await?;
    println!("config: {} profiles, {} issuers", app.config.profiles.len(), app.config.issuers.len());
    println!("ledger: {:?} reachable, {} certificates", app.ledger.dialect(), app.ledger.count_certificates().await?);
    println!("token: {} logged in, {} session(s)", app.config.hsm.token_label, app.config.hsm.sessions);
    for issuer in ca.root().into_iter().chain(ca.issuers()) {
        println!("key {}: found ({})", issuer.key_label, app.signing.key_info(&issuer.key_label)?.algorithm.name());
    }
    println!("ok");
    Ok(ExitCode::SUCCESS)
}

/// Accepts a PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST") or DER CSR.
pub fn csr_der(bytes: &[u8]) -> Result<Vec<u8>, CaError> {
    if bytes.starts_with(b"-----BEGIN") {
        let (label, der) = der::pem::decode_vec(bytes)
            .map_err(|e| CaError::bad_request("CSR: malformed PEM").with_source(der::Error::from(e)))?;
        if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
            return Err(CaError::bad_request(format!("CSR: expected CERTIFICATE REQUEST, found {label}")));
        }
        return Ok(der);
    }
    Ok(bytes.to_vec())
}

async fn issue(app: &App, args: IssueArgs) -> Result<ExitCode, CaError> {
    let ca = app.ca().await?;
    let der = csr_der(&read_file(&args.csr)?);
    let request = match der.and_then(|d| IssuanceRequest::from_csr(&d, &args.profile, Requester::cli())) {
        Ok(mut r) => {
            r.owner = args.owner;
            r
        }
        Err(e) => {
            record_refusal(app, &args.profile, &e).await;
            return Err(e);
        }
    };
    match ca.issue(request).await? {
        IssueOutcome::Issued(cert) => {
            write_output(args.out.as_ref(), &cert.chain_pem)?;
            eprintln!("issued serial {}", cert.record.serial);
            Ok(ExitCode::SUCCESS)
        }
        IssueOutcome::Pending(id) => {
            eprintln!("pending approval {id}: run `privca approvals approve {id}`");
            Ok(ExitCode::from(3))
        }
    }
}

/// A CSR that could not even be parsed still leaves an audit `failed` row.
async fn record_refusal(app: &App, profile: &str, e: &CaError) {
    let event = crate::audit::AuditEvent::new(crate::audit::AuditKind::Failed, Requester::cli().to_string())
        .profile(profile)
        .detail(serde_json::json!({ "stage": "parse", "error": e.detail() }));
    if let Err(err) = app.ledger.record_event(&event).await {
        tracing::error!(error = %err, "could not record audit row");
    }
}

async fn revoke(app: &App, serial: &str, reason: &str, invalidity: Option<&str>) -> Result<ExitCode, CaError> {
    let ca = app.ca().await?;
    let reason: RevocationReason = reason.parse()?;
    let invalidity = invalidity.map(parse_date).transpose()?;
    match ca.revoke(serial, reason, invalidity, &Requester::cli()).await? {
        RevokeOutcome::Revoked => println!("revoked {serial} ({})", reason.as_str()),
        RevokeOutcome::AlreadyRevoked(r) => println!("{serial} was already revoked ({r})"),
        RevokeOutcome::HoldReleased => println!("{serial}: hold released (removeFromCRL)"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(app: &App, expiring_within: Option<u32>, owner: Option<String>, json: bool) -> Result<ExitCode, CaError> {
    let now = crate::ledger::now();
    let filter =
        CertFilter { expiring_before: expiring_within.map(|d| now + i64::from(d) * 86_400), owner, limit: None };
    let certs = app.ledger.list_certificates(&filter).await?;
    if json {
        let text = serde_json::to_string_pretty(&certs).map_err(|e| CaError::internal("JSON").with_source(e))?;
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<34} {:<8} {:<8} {:<20} {:<16} {:<11} SUBJECT",
        "SERIAL", "STATUS", "ISSUER", "OWNER", "TIER", "EXPIRES"
    );
    for c in certs {
        let status = if c.status == crate::ledger::CertStatus::Valid && c.not_after <= now {
            "expired"
        } else {
            status_name(&c)
        };
        println!(
            "{:<34} {:<8} {:<8} {:<20} {:<16} {:<11} {}",
            c.serial,
            status,
            c.issuer_id,
            c.owner,
            c.tier.as_str(),
            date(c.not_after),
            c.subject
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn status_name(c: &crate::ledger::CertRecord) -> &'static str {
    match c.status {
        crate::ledger::CertStatus::Valid => "valid",
        crate::ledger::CertStatus::Revoked => "revoked",
    }
}

/// Unix seconds from `YYYY-MM-DD` (UTC midnight) or a plain number of seconds; not in the future.
fn parse_date(s: &str) -> Result<i64, CaError> {
    let bad = || CaError::bad_request(format!("`{s}` is not a date (YYYY-MM-DD) or Unix seconds"));
    let secs = if let Ok(n) = s.parse::<i64>() {
        n
    } else {
        let mut parts = s.splitn(3, '-').map(|p| p.parse::<u16>().map_err(|_| bad()));
        let (y, m, d) =
            (parts.next().ok_or_else(bad)??, parts.next().ok_or_else(bad)??, parts.next().ok_or_else(bad)??);
        let dt = der::DateTime::new(y, m as u8, d as u8, 0, 0, 0).map_err(|_| bad())?;
        dt.unix_duration().as_secs() as i64
    };
    if secs < 0 || secs > crate::ledger::now() {
        return Err(CaError::bad_request(format!("invalidity date `{s}` is not in the past")));
    }
    Ok(secs)
}

/// `YYYY-MM-DD` of a Unix time.
fn date(unix: i64) -> String {
    der::DateTime::from_unix_duration(std::time::Duration::from_secs(unix.max(0) as u64))
        .map(|d| format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()))
        .unwrap_or_else(|_| unix.to_string())
}

async fn restore(config: Config, opts: crate::backup::restore::RestoreOptions) -> Result<ExitCode, CaError> {
    let r = crate::backup::restore::restore(config, &opts).await?;
    println!("restored from {}; later changes from {}", opts.from.display(), r.source);
    println!("  revocations re-applied: {}", r.revocations.len());
    println!("  serials issued after the backup, never to be reused: {}", r.lost_serials.len());
    for (ca, n) in &r.crl_numbers {
        println!("  {ca}: cRLNumber continues after {n}");
    }
    if r.token_restored {
        println!("  token directory restored (the previous one was moved aside)");
    }
    if !r.lost_serials.is_empty() {
        println!("  certificates issued after the backup are not in the ledger: their holders re-enroll");
    }
    Ok(ExitCode::SUCCESS)
}

/// `privca audit verify --file`: offline, from the file alone.
fn audit_verify_file(path: &PathBuf) -> ExitCode {
    let doc = read_file(path).and_then(|bytes| {
        serde_json::from_slice::<crate::audit::export::AuditExport>(&bytes)
            .map_err(|e| CaError::bad_request(format!("{} is not an audit export: {e}", path.display())))
    });
    let doc = match doc {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = crate::audit::export::verify_file(&doc);
    for f in &report.findings {
        println!("FAIL: {}", f.0);
    }
    println!(
        "audit export: {} rows, {} checkpoints, checkpoint key sha256 {}, {} findings",
        report.rows,
        report.checkpoints,
        doc.checkpoint_key_sha256,
        report.findings.len()
    );
    if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn audit_verify(app: &App) -> Result<ExitCode, CaError> {
    let spki = app.signing.key_info(crate::audit::CHECKPOINT_KEY)?.spki_der;
    let report = crate::audit::verify(&app.ledger, &spki).await?;
    for f in &report.findings {
        println!("FAIL: {}", f.0);
    }
    println!(
        "audit: {} sealed rows, {} checkpoints, {} unsealed rows, {} findings",
        report.rows,
        report.checkpoints,
        report.unsealed,
        report.findings.len()
    );
    Ok(if report.findings.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn crl_publish(app: &App, issuer: Option<String>, delta_only: bool) -> Result<ExitCode, CaError> {
    let ca = app.ca().await?;
    let ids: Vec<String> = match issuer {
        Some(id) => vec![id],
        None => ca.root().into_iter().chain(ca.issuers()).map(|i| i.id.clone()).collect(),
    };
    for id in ids {
        let kinds: &[bool] = if delta_only { &[true] } else { &[false, true] };
        for delta in kinds {
            let started = std::time::Instant::now();
            let p = ca.publish_crl(&id, *delta).await?;
            println!(
                "{} {} CRL number {}: {} entries, {} bytes, {} ms",
                p.ca,
                if p.delta { "delta" } else { "complete" },
                p.number,
                p.entries,
                p.size,
                started.elapsed().as_millis()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn approvals(app: &App, command: ApprovalCommand) -> Result<ExitCode, CaError> {
    match command {
        ApprovalCommand::List { all, json } => {
            let list = app.ledger.approvals(if all { None } else { Some(ApprovalStatus::Pending) }).await?;
            if json {
                let text = serde_json::to_string_pretty(&list).map_err(|e| CaError::internal("JSON").with_source(e))?;
                println!("{text}");
            } else {
                println!("{:<6} {:<9} {:<14} {:<24} SUBJECT / SANS", "ID", "STATUS", "PROFILE", "REQUESTER");
                for a in list {
                    println!(
                        "{:<6} {:<9} {:<14} {:<24} {} {}",
                        a.id,
                        a.status.as_str(),
                        a.profile,
                        a.requester,
                        a.subject,
                        a.sans.join(",")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ApprovalCommand::Approve { id, out } => match app.ca().await?.approve(id, &Requester::cli()).await? {
            crate::ca::Approved::Issued(cert) => {
                write_output(out.as_ref(), &cert.chain_pem)?;
                eprintln!("approval {id}: issued serial {}", cert.record.serial);
                Ok(ExitCode::SUCCESS)
            }
            crate::ca::Approved::Waiting { approvals, required } => {
                eprintln!("approval {id}: recorded ({approvals} of {required}); another approver must approve it");
                Ok(ExitCode::from(3))
            }
        },
        ApprovalCommand::Deny { id, reason } => {
            app.ca().await?.deny(id, &Requester::cli(), &reason).await?;
            println!("approval {id} denied");
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_date;

    #[test]
    fn invalidity_dates() {
        assert_eq!(parse_date("2024-01-02").unwrap(), 1_704_153_600);
        assert_eq!(parse_date("1704153600").unwrap(), 1_704_153_600);
        assert!(parse_date("2024-13-01").is_err());
        assert!(parse_date("tomorrow").is_err());
        assert!(parse_date("9999-01-01").is_err());
    }
}
