//! `privca admin …`: admin users and API tokens from the CA host (how the first admin is made).

use std::{path::PathBuf, process::ExitCode};

use clap::Subcommand;
use zeroize::Zeroizing;

use super::access;
use crate::{app::App, ca::Requester, error::CaError};

/// `privca admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Dashboard and API users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

/// `privca admin user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints its password (generated unless --password-file) and, for admin
    /// and approver, the TOTP enrollment URL, once.
    Add {
        /// Login name.
        name: String,
        /// admin, approver, operator, owner or auditor.
        #[arg(long)]
        role: String,
        /// For role owner: the CLM owner it acts for.
        #[arg(long)]
        owner: Option<String>,
        /// Read the password from this file (mode 0600).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Enroll TOTP whatever the role.
        #[arg(long)]
        totp: bool,
    },
    /// List users.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Disable a user (its sessions and tokens stop working).
    Disable {
        /// Login name.
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        /// Login name.
        name: String,
    },
    /// Enroll a new TOTP secret (the old one stops working); prints the URL once.
    ResetTotp {
        /// Login name.
        name: String,
    },
    /// Set a new password from a file (mode 0600).
    SetPassword {
        /// Login name.
        name: String,
        /// The file.
        #[arg(long)]
        password_file: PathBuf,
    },
}

/// `privca admin token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token; prints it once.
    New {
        /// admin, approver, operator, owner, auditor or metrics.
        #[arg(long)]
        role: String,
        /// Lifetime, e.g. 30d (at most 366d).
        #[arg(long, default_value = "30d")]
        expires: String,
        /// The user it is made for (stops working when the user is disabled).
        #[arg(long)]
        user: Option<String>,
        /// For role owner: the CLM owner.
        #[arg(long)]
        owner: Option<String>,
        /// Free text.
        #[arg(long)]
        note: Option<String>,
    },
    /// List tokens (never their secrets).
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token.
    Revoke {
        /// Token id.
        id: String,
    },
}

fn read_password(path: PathBuf) -> Result<Zeroizing<String>, CaError> {
    let secret = crate::config::SecretRef::File { key: "--password-file".into(), path }
        .read()
        .map_err(|e| CaError::bad_request(e.to_string()))?;
    Ok(Zeroizing::new(secret.expose().trim_end_matches(['\r', '\n']).to_owned()))
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CaError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CaError::internal("JSON").with_source(e))?;
    println!("{text}");
    Ok(())
}

/// Runs `privca admin …`.
pub async fn run(app: &App, command: AdminCommand) -> Result<ExitCode, CaError> {
    let by = Requester::cli();
    let ledger = &app.ledger;
    match command {
        AdminCommand::User { command } => match command {
            UserCommand::Add { name, role, owner, password_file, totp } => {
                let given = password_file.map(read_password).transpose()?;
                let shown = given.is_none();
                let u =
                    access::create_user(ledger, &app.signing, &name, &role, owner.as_deref(), given, totp, &by).await?;
                println!("admin user `{name}` ({role}) created");
                if shown {
                    println!("password (shown only now): {}", u.password.as_str());
                }
                if let Some(url) = u.totp_url {
                    println!("TOTP: add this to an authenticator app (shown only now):");
                    println!("{}", url.as_str());
                }
            }
            UserCommand::List { json } => {
                let users = ledger.admin_users().await?;
                if json {
                    print_json(&users)?;
                } else {
                    println!("{:<24} {:<9} {:<16} {:<5} STATE", "NAME", "ROLE", "OWNER", "TOTP");
                    for u in users {
                        println!(
                            "{:<24} {:<9} {:<16} {:<5} {}",
                            u.name,
                            u.role,
                            u.owner.as_deref().unwrap_or("-"),
                            if u.totp { "yes" } else { "no" },
                            if u.disabled_at.is_some() { "disabled" } else { "enabled" }
                        );
                    }
                }
            }
            UserCommand::Disable { name } => {
                access::set_disabled(ledger, &name, true, &by).await?;
                println!("admin user `{name}` disabled");
            }
            UserCommand::Enable { name } => {
                access::set_disabled(ledger, &name, false, &by).await?;
                println!("admin user `{name}` enabled");
            }
            UserCommand::ResetTotp { name } => {
                let url = access::reset_totp(ledger, &app.signing, &name, &by).await?;
                println!("TOTP for `{name}` re-enrolled; add this to an authenticator app (shown only now):");
                println!("{}", url.as_str());
            }
            UserCommand::SetPassword { name, password_file } => {
                let password = read_password(password_file)?;
                access::set_password(ledger, &name, &password, &by).await?;
                println!("password of `{name}` changed");
            }
        },
        AdminCommand::Token { command } => match command {
            TokenCommand::New { role, expires, user, owner, note } => {
                let d = crate::config::duration::parse("--expires", &expires)
                    .map_err(|e| CaError::bad_request(e.to_string()))?;
                let days = u32::try_from(d.as_secs().div_ceil(86_400)).unwrap_or(u32::MAX);
                let (id, text) =
                    access::create_token(ledger, &role, days, user.as_deref(), owner.as_deref(), note.as_deref(), &by)
                        .await?;
                eprintln!("token {id} ({role}, {days} days); shown only now:");
                println!("{}", text.as_str());
            }
            TokenCommand::List { json } => {
                let tokens = ledger.admin_tokens().await?;
                if json {
                    print_json(&tokens)?;
                } else {
                    let now = crate::ledger::now();
                    println!("{:<17} {:<9} {:<16} {:<8} {:<12} NOTE", "ID", "ROLE", "USER", "STATE", "LAST USE");
                    for t in tokens {
                        let state = if t.revoked_at.is_some() {
                            "revoked"
                        } else if t.expires_at <= now {
                            "expired"
                        } else {
                            "live"
                        };
                        let last = t.last_used_at.map(|l| format!("{}m ago", (now - l) / 60)).unwrap_or("never".into());
                        println!(
                            "{:<17} {:<9} {:<16} {:<8} {:<12} {}",
                            t.id,
                            t.role,
                            t.user_name.as_deref().unwrap_or("-"),
                            state,
                            last,
                            t.note.as_deref().unwrap_or("")
                        );
                    }
                }
            }
            TokenCommand::Revoke { id } => {
                if access::revoke_token(ledger, &id, &by).await? {
                    println!("token {id} revoked");
                } else {
                    return Err(CaError::not_found(format!("no live token `{id}`")));
                }
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}
