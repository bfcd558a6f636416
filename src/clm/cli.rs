//! The CLM commands: `privca owner …`, `privca inventory …` and `privca clm …`. Argument
//! definitions (clap) and one function per command over the ledger; `cli` dispatches here.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::{
    app::App,
    audit::{AuditEvent, AuditKind},
    ca::Requester,
    error::CaError,
    ledger::{InventoryChange, InventoryFilter, InventoryItem, Owner},
};

use super::{
    query::{live_privca, tier, Terms, FLAG_PAGE},
    templates::utc,
};

/// `privca owner …`.
#[derive(Debug, Subcommand)]
pub enum OwnerCommand {
    /// Create an owner (or claim a name certificates already carry).
    Add {
        /// Name certificates carry, e.g. `network-team`.
        name: String,
        /// `team` or `person`.
        #[arg(long, default_value = "team", value_parser = ["team", "person"])]
        kind: String,
        /// Human name.
        #[arg(long)]
        display_name: Option<String>,
        #[command(flatten)]
        contacts: Contacts,
    },
    /// List owners, and the names certificates carry that no owner claims.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show one owner with its certificate counts.
    Show {
        /// Owner name.
        name: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Change an owner's contacts (an empty value clears one).
    SetContact {
        /// Owner name.
        name: String,
        #[command(flatten)]
        contacts: Contacts,
    },
}

/// Contact options of `owner add` and `owner set-contact`.
#[derive(Debug, Args)]
pub struct Contacts {
    /// Email address.
    #[arg(long)]
    email: Option<String>,
    /// Webhook URL (chat or automation).
    #[arg(long)]
    webhook: Option<String>,
    /// Webhook payload: `json` (signed with clm.webhook.secret), `slack` or `teams`.
    #[arg(long, value_parser = ["json", "slack", "teams"])]
    webhook_format: Option<String>,
    /// Phone number for SMS.
    #[arg(long)]
    phone: Option<String>,
    /// Owner that escalations go to instead of the security lead.
    #[arg(long)]
    escalation: Option<String>,
}

/// Filters of `inventory list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// valid, expiring, expired, revoked or superseded.
    #[arg(long)]
    status: Option<String>,
    /// A tier of `[clm.tiers]` (customer-facing, network-critical, internal, or one configured).
    #[arg(long)]
    tier: Option<String>,
    /// Owner name.
    #[arg(long)]
    owner: Option<String>,
    /// privca issuer id, or an external certificate's issuer DN.
    #[arg(long)]
    issuer: Option<String>,
    /// acme, est, scep, cli, privca (its own OCSP, TLS and RA certificates), import or discovery.
    #[arg(long)]
    source: Option<String>,
    /// Expiring within this many days, already expired included.
    #[arg(long)]
    expiring_within: Option<u32>,
    /// Text in the subject or the names.
    #[arg(long)]
    search: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 1000)]
    limit: i64,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// `privca inventory …`.
#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// List inventory certificates (privca's, imported and discovered), soonest expiry first.
    List(ListArgs),
    /// Import certificates privca did not issue (PEM bundles and chains, DER files).
    Import {
        /// Files to import.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Owner of the imported certificates (default: unowned).
        #[arg(long)]
        owner: Option<String>,
        /// Tier of the imported certificates (default: internal).
        #[arg(long)]
        tier: Option<String>,
    },
    /// Show one certificate (serial or SHA-256 fingerprint).
    Show {
        /// Serial (hex) or fingerprint.
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Change a certificate's owner, tier, application, renewal method or tags.
    Set {
        /// Serial (hex) or fingerprint.
        id: String,
        /// New owner.
        #[arg(long)]
        owner: Option<String>,
        /// New tier.
        #[arg(long)]
        tier: Option<String>,
        /// Business application (empty clears it).
        #[arg(long)]
        application: Option<String>,
        /// acme, est, scep or manual (empty: back to the source's).
        #[arg(long)]
        renewal_method: Option<String>,
        /// Tags (repeat; replaces the set; `--tag ''` clears it).
        #[arg(long = "tag")]
        tags: Option<Vec<String>>,
    },
    /// Flag live certificates for early renewal: ARI windows move to now, owners are told.
    FlagRenewal {
        /// Only certificates of this issuer id.
        #[arg(long, required_unless_present_any = ["all", "query"], conflicts_with_all = ["all", "query"])]
        issuer: Option<String>,
        /// The live privca certificates `inventory list` selects with the same filters, written
        /// `key=value` and separated by spaces: status, tier, owner, issuer, source,
        /// expiring-within (days), search. E.g. "tier=customer-facing expiring-within=60".
        #[arg(long, conflicts_with = "all")]
        query: Option<String>,
        /// Every live certificate.
        #[arg(long)]
        all: bool,
        /// Why (recorded in the audit log).
        #[arg(long, default_value = "operator request")]
        reason: String,
    },
}

/// `privca clm …`.
#[derive(Debug, Subcommand)]
pub enum ClmCommand {
    /// Run the expiry policy, then deliver what is due.
    Run {
        /// Now, rather than waiting for `privca serve`'s schedule (required).
        #[arg(long, required = true)]
        now: bool,
    },
    /// Check the endpoints where renewed certificates were seen: the successor is served with a
    /// complete chain, covers the name, and OCSP answers good (exit status 1 if any fails).
    VerifyDeployment {
        /// Only the endpoints of this certificate (predecessor or successor serial).
        #[arg(long)]
        serial: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge a certificate's notices until a date (YYYY-MM-DD) or for a while (30d).
    Ack(MuteArgs),
    /// Mute a certificate's notices until a date (YYYY-MM-DD) or for a while (30d).
    Mute(MuteArgs),
    /// The notification outbox.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
}

/// Arguments of `clm ack` and `clm mute`.
#[derive(Debug, Args)]
pub struct MuteArgs {
    /// Serial (hex) or fingerprint.
    id: String,
    /// YYYY-MM-DD (UTC midnight) or a duration such as 14d.
    #[arg(long)]
    until: String,
    /// Why (recorded in the audit log).
    #[arg(long)]
    reason: String,
}

/// `privca clm outbox …`.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List messages, newest first.
    List {
        /// pending, sending, sent or dead.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Queue dead-lettered messages again (one, or `--all`).
    Retry {
        /// Message id.
        #[arg(required_unless_present = "all")]
        id: Option<i64>,
        /// Every dead message.
        #[arg(long)]
        all: bool,
    },
}

fn json<T: serde::Serialize>(value: &T) -> Result<(), CaError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CaError::internal("JSON").with_source(e))?;
    println!("{text}");
    Ok(())
}

fn event(kind: AuditKind) -> AuditEvent {
    AuditEvent::new(kind, Requester::cli().to_string())
}

/// `privca owner …`.
pub async fn owner(app: &App, command: OwnerCommand) -> Result<ExitCode, CaError> {
    match command {
        OwnerCommand::Add { name, kind, display_name, contacts } => {
            if name.trim().is_empty() {
                return Err(CaError::bad_request("owner name is empty"));
            }
            let mut o = app.ledger.owner(&name).await?.unwrap_or_else(|| Owner::new(&name, &kind));
            o.kind = kind;
            o.display_name = display_name.or(o.display_name);
            apply(&mut o, contacts);
            let e = event(AuditKind::OwnerChanged).detail(serde_json::json!({ "owner": o }));
            let new = app.ledger.put_owner(&o, &e).await?;
            println!("owner `{name}` {}", if new { "added" } else { "updated" });
        }
        OwnerCommand::SetContact { name, contacts } => {
            let mut o =
                app.ledger.owner(&name).await?.ok_or_else(|| CaError::not_found(format!("no owner `{name}`")))?;
            apply(&mut o, contacts);
            let e = event(AuditKind::OwnerChanged).detail(serde_json::json!({ "owner": o }));
            app.ledger.put_owner(&o, &e).await?;
            println!("owner `{name}` updated");
        }
        OwnerCommand::List { json: as_json } => {
            let owners = app.ledger.owners().await?;
            let unclaimed = app.ledger.unclaimed_owners().await?;
            if as_json {
                json(&serde_json::json!({ "owners": owners, "unclaimed": unclaimed }))?;
            } else {
                println!("{:<24} {:<7} {:<30} {:<8} ESCALATION", "OWNER", "KIND", "EMAIL", "WEBHOOK");
                for o in &owners {
                    println!(
                        "{:<24} {:<7} {:<30} {:<8} {}",
                        o.name,
                        o.kind,
                        o.email.as_deref().unwrap_or("-"),
                        if o.webhook.is_some() { o.webhook_format.as_str() } else { "-" },
                        o.escalation.as_deref().unwrap_or("-")
                    );
                }
                for u in &unclaimed {
                    println!(
                        "{:<24} unowned: {} certificate(s) carry this name; claim it with `privca owner add`",
                        u.name, u.certificates
                    );
                }
            }
        }
        OwnerCommand::Show { name, json: as_json } => {
            let o = app.ledger.owner(&name).await?;
            let filter = InventoryFilter { owner: Some(name.clone()), limit: 100_000, ..Default::default() };
            let certs = app.ledger.inventory(&filter, &super::first_threshold(&app.config.clm)).await?;
            if o.is_none() && certs.is_empty() {
                return Err(CaError::not_found(format!("no owner `{name}`")));
            }
            let mut counts = std::collections::BTreeMap::<&str, usize>::new();
            for c in &certs {
                *counts.entry(c.status.as_str()).or_default() += 1;
            }
            if as_json {
                json(&serde_json::json!({ "owner": o, "claimed": o.is_some(), "certificates": counts }))?;
            } else {
                match &o {
                    Some(o) => {
                        println!("owner:      {} ({})", o.name, o.kind);
                        println!("name:       {}", o.display_name.as_deref().unwrap_or("-"));
                        println!("email:      {}", o.email.as_deref().unwrap_or("-"));
                        println!("webhook:    {} ({})", o.webhook.as_deref().unwrap_or("-"), o.webhook_format);
                        println!("phone:      {}", o.phone.as_deref().unwrap_or("-"));
                        println!("escalation: {}", o.escalation.as_deref().unwrap_or("(the security lead)"));
                    }
                    None => println!("owner:      {name} (unowned: no owner record claims it)"),
                }
                let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
                println!("certificates: {}", if counts.is_empty() { "none".into() } else { counts.join(", ") });
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Applies contact options (an empty value clears the contact).
fn apply(o: &mut Owner, c: Contacts) {
    let set = |field: &mut Option<String>, v: Option<String>| {
        if let Some(v) = v {
            *field = (!v.trim().is_empty()).then_some(v);
        }
    };
    set(&mut o.email, c.email);
    set(&mut o.webhook, c.webhook);
    set(&mut o.phone, c.phone);
    set(&mut o.escalation, c.escalation);
    if let Some(f) = c.webhook_format {
        o.webhook_format = f;
    }
}

/// `privca inventory …`.
pub async fn inventory(app: &App, command: InventoryCommand) -> Result<ExitCode, CaError> {
    let first = super::first_threshold(&app.config.clm);
    match command {
        InventoryCommand::List(a) => {
            let terms = Terms {
                status: a.status,
                tier: a.tier,
                owner: a.owner,
                issuer: a.issuer,
                source: a.source,
                expiring_within: a.expiring_within,
                search: a.search,
            };
            let filter = terms.filter(&app.config.clm, a.limit.max(1))?;
            let items = app.ledger.inventory(&filter, &first).await?;
            if a.json {
                json(&items)?;
            } else {
                print_items(&items);
            }
        }
        InventoryCommand::Import { files, owner, tier } => {
            return super::import::run(app, &files, owner.as_deref(), tier.as_deref()).await;
        }
        InventoryCommand::Show { id, json: as_json } => {
            let (item, der) = app
                .ledger
                .inventory_item(&id, &first)
                .await?
                .ok_or_else(|| CaError::not_found(format!("no certificate `{id}` in the inventory")))?;
            let endpoints = app.ledger.endpoints_of(&item.fingerprint).await?;
            let details = super::inventory::details(&der);
            if as_json {
                json(&serde_json::json!({ "certificate": item, "details": details, "endpoints": endpoints }))?;
            } else {
                println!("fingerprint:    {}", item.fingerprint);
                println!("serial:         {}", item.serial);
                println!("subject:        {}", item.subject);
                println!("names:          {}", item.sans.join(", "));
                println!("issuer:         {}", item.issuer);
                println!("key:            {}", details.key);
                println!("signature:      {}", details.signature_algorithm);
                println!("valid:          {} .. {}", utc(item.not_before), utc(item.not_after));
                println!("status:         {}", item.status.as_str());
                if let Some(s) = &item.superseded_by {
                    println!("superseded by:  {s}");
                }
                println!("source:         {}", item.source);
                println!("owner:          {}", item.owner);
                println!("tier:           {}", item.tier.as_str());
                println!("application:    {}", item.application.as_deref().unwrap_or("-"));
                println!("renewal method: {}", item.renewal_method);
                println!("tags:           {}", item.tags.join(", "));
                for e in &endpoints {
                    println!(
                        "endpoint:       {}:{}{} first seen {}, last seen {}",
                        e.host,
                        e.port,
                        if e.sni.is_empty() { String::new() } else { format!(" (SNI {})", e.sni) },
                        utc(e.first_seen),
                        utc(e.last_seen)
                    );
                }
            }
        }
        InventoryCommand::Set { id, owner, tier: t, application, renewal_method, tags } => {
            let (item, _) = app
                .ledger
                .inventory_item(&id, &first)
                .await?
                .ok_or_else(|| CaError::not_found(format!("no certificate `{id}` in the inventory")))?;
            if let Some(m) = renewal_method.as_deref() {
                crate::ledger::check_renewal_method(m)?;
            }
            let change = InventoryChange {
                owner: owner.filter(|o| !o.trim().is_empty()),
                tier: t.as_deref().map(|t| tier(&app.config.clm, t)).transpose()?,
                application: application.map(|a| (!a.is_empty()).then_some(a)),
                renewal_method: renewal_method.map(|m| (!m.is_empty()).then_some(m)),
                tags: tags.map(|t| t.into_iter().filter(|t| !t.is_empty()).collect()),
            };
            let e = event(AuditKind::InventoryChanged)
                .serial(item.serial.clone())
                .detail(serde_json::json!({ "fingerprint": item.fingerprint, "change": change }));
            app.ledger.set_inventory(&item.fingerprint, &change, &e).await?;
            println!("{} updated", item.fingerprint);
        }
        InventoryCommand::FlagRenewal { issuer, query: Some(query), all: _, reason } => {
            let filter = Terms::parse(&query)?.filter(&app.config.clm, FLAG_PAGE)?;
            let selected = live_privca(app, filter).await?;
            let e = event(AuditKind::RenewEarlyFlagged).detail(serde_json::json!({
                "issuer": issuer, "query": query, "selected": selected.len(), "reason": reason, "bulk": true
            }));
            let n = app.ledger.flag_renewal_of(&selected, crate::ledger::now(), &e).await?;
            println!(
                "{n} certificate(s) flagged for early renewal ({} selected, the others were flagged already); \
                 owners are told at the next policy run",
                selected.len()
            );
        }
        InventoryCommand::FlagRenewal { issuer, query: None, all: _, reason } => {
            let e = event(AuditKind::RenewEarlyFlagged)
                .detail(serde_json::json!({ "issuer": issuer, "reason": reason, "bulk": true }));
            let n = app.ledger.flag_renewal_by_issuer(issuer.as_deref(), crate::ledger::now(), &e).await?;
            println!("{n} certificate(s) flagged for early renewal; owners are told at the next policy run");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_items(items: &[InventoryItem]) {
    println!(
        "{:<34} {:<10} {:<17} {:<20} {:<10} {:<17} NAMES",
        "SERIAL", "STATUS", "TIER", "OWNER", "SOURCE", "EXPIRES"
    );
    for c in items {
        let names = if c.sans.is_empty() { c.subject.clone() } else { c.sans.join(",") };
        println!(
            "{:<34} {:<10} {:<17} {:<20} {:<10} {:<17} {}",
            c.serial,
            c.status.as_str(),
            c.tier.as_str(),
            c.owner,
            c.source,
            &utc(c.not_after)[..16],
            names
        );
    }
}

/// `YYYY-MM-DD` (UTC midnight) or a duration from now, as Unix seconds in the future.
fn until(s: &str) -> Result<i64, CaError> {
    let now = crate::ledger::now();
    let t = if let Ok(d) = crate::config::duration::parse("--until", s) {
        now + d.as_secs() as i64
    } else {
        let bad = || CaError::bad_request(format!("--until `{s}`: use YYYY-MM-DD or a duration such as 14d"));
        let parts: Vec<u16> =
            s.splitn(3, '-').map(|p| p.parse::<u16>().map_err(|_| bad())).collect::<Result<_, _>>()?;
        let [y, m, d] = parts[..] else { return Err(bad()) };
        let dt = der::DateTime::new(y, m as u8, d as u8, 0, 0, 0).map_err(|_| bad())?;
        dt.unix_duration().as_secs() as i64
    };
    if t <= now {
        return Err(CaError::bad_request(format!("--until `{s}` is not in the future")));
    }
    Ok(t)
}

/// `privca clm …`.
pub async fn clm(app: &App, command: ClmCommand) -> Result<ExitCode, CaError> {
    let first = super::first_threshold(&app.config.clm);
    match command {
        ClmCommand::Run { now: _ } => {
            let templates = super::templates::Templates::load(app.config.clm.templates_dir.as_deref())
                .map_err(|e| CaError::bad_request("cannot read clm.templates_dir").with_source(e))?;
            let now = crate::ledger::now();
            let run = super::run_policy(&app.ledger, &app.config.clm, now).await?;
            println!(
                "policy: {} certificate(s) evaluated, {} message(s) queued, {} undeliverable, {} superseded",
                run.evaluated, run.queued, run.undeliverable, run.superseded
            );
            let told = super::events::run(&app.ledger, &app.config, &templates, now).await?;
            let digests = super::digest::run(&app.ledger, &app.config.clm, now).await?;
            println!("events: {told} message(s) queued; daily digests: {digests}");
            let retired = super::retire::run(&app.ca().await?, &app.config.clm, now).await?;
            if retired > 0 {
                println!("revoked {retired} superseded certificate(s) whose successor is deployed");
            }
            let notifier = super::notify::Notifier::new(&app.config.clm)
                .map_err(|e| CaError::bad_request("CLM notification channels").with_source(e))?;
            let d = super::deliver(&app.ledger, &notifier, &app.config.clm, &templates, now).await?;
            println!("delivery: {} sent, {} to retry, {} dead-lettered", d.sent, d.retried, d.dead);
        }
        ClmCommand::VerifyDeployment { serial, json: as_json } => return verify_deployment(app, serial, as_json).await,
        ClmCommand::Ack(a) | ClmCommand::Mute(a) if a.reason.trim().is_empty() => {
            return Err(CaError::bad_request("--reason is empty"));
        }
        c @ (ClmCommand::Ack(_) | ClmCommand::Mute(_)) => {
            let (kind, a) = match c {
                ClmCommand::Ack(a) => ("ack", a),
                ClmCommand::Mute(a) => ("mute", a),
                _ => return Ok(ExitCode::FAILURE),
            };
            let until = until(&a.until)?;
            let (item, _) = app
                .ledger
                .inventory_item(&a.id, &first)
                .await?
                .ok_or_else(|| CaError::not_found(format!("no certificate `{}` in the inventory", a.id)))?;
            let e = event(AuditKind::ClmMuted).serial(item.serial.clone()).detail(serde_json::json!({
                "fingerprint": item.fingerprint, "kind": kind, "until": until, "reason": a.reason
            }));
            app.ledger.mute(&item.fingerprint, kind, until, &a.reason, &e).await?;
            println!("{} {kind}: no expiry notices until {}", item.fingerprint, utc(until));
        }
        ClmCommand::Outbox { command: OutboxCommand::List { state, limit, json: as_json } } => {
            let mut rows = app.ledger.outbox(state.as_deref(), limit.max(1)).await?;
            // Policy notices are rendered when sent: shown as they would be now.
            let templates = super::templates::Templates::load(app.config.clm.templates_dir.as_deref())
                .map_err(|e| CaError::bad_request("cannot read clm.templates_dir").with_source(e))?;
            super::render_policy_notices(&app.ledger, &app.config.clm, &templates, &mut rows, crate::ledger::now())
                .await?;
            if as_json {
                json(&rows)?;
            } else {
                println!(
                    "{:<6} {:<8} {:<18} {:<8} {:<28} {:<3} SUBJECT / ERROR",
                    "ID", "STATE", "EVENT", "CHANNEL", "RECIPIENT", "TRY"
                );
                for m in rows {
                    println!(
                        "{:<6} {:<8} {:<18} {:<8} {:<28} {:<3} {}",
                        m.id,
                        m.state,
                        m.event,
                        m.channel,
                        m.recipient,
                        m.attempts,
                        m.last_error.as_deref().unwrap_or(&m.subject)
                    );
                }
            }
        }
        ClmCommand::Outbox { command: OutboxCommand::Retry { id, all: _ } } => {
            let e = event(AuditKind::ClmOutboxRetried).detail(serde_json::json!({ "id": id }));
            let n = app.ledger.outbox_retry(id, &e).await?;
            println!("{n} message(s) queued again");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `privca clm verify-deployment`: checks now, prints a table (or JSON), exit status 1 if a
/// check failed.
async fn verify_deployment(app: &App, serial: Option<String>, as_json: bool) -> Result<ExitCode, CaError> {
    let templates = super::templates::Templates::load(app.config.clm.templates_dir.as_deref())
        .map_err(|e| CaError::bad_request("cannot read clm.templates_dir").with_source(e))?;
    let selection = super::deploy::Selection {
        serial,
        pending_only: false,
        issued_before: None,
        actor: Requester::cli().to_string(),
    };
    let run = super::deploy::verify(&app.ledger, &app.config.clm, &templates, &selection, crate::ledger::now())
        .await
        .map_err(|e| CaError::internal("deployment verification").with_source(e))?;
    let failed = run.checks.iter().filter(|c| !c.ok).count();
    if as_json {
        json(&run.checks)?;
    } else if run.checks.is_empty() {
        println!("no endpoint of a renewed certificate to verify (endpoints are recorded by `privca discover`)");
    } else {
        let label = |c: &crate::ledger::DeploymentCheck| {
            let sni = (!c.sni.is_empty()).then(|| c.sni.clone());
            super::discover::Target { host: c.host.clone(), port: c.port, sni }.label()
        };
        let width = run.checks.iter().map(|c| label(c).len()).max().unwrap_or(0).max(8);
        println!("{:<width$} {:<34} {:<7} DETAILS", "ENDPOINT", "SUCCESSOR", "RESULT");
        for c in &run.checks {
            let details: Vec<String> = c.failures.iter().map(|f| format!("{}: {}", f.check, f.detail)).collect();
            println!(
                "{:<width$} {:<34} {:<7} {}",
                label(c),
                c.serial,
                if c.ok { "ok" } else { "FAILED" },
                if c.ok { format!("deployed (renews {})", c.predecessor_serial) } else { details.join("; ") }
            );
        }
        println!(
            "{} endpoint(s) checked, {failed} failed, {} notice(s) queued for owners",
            run.checks.len(),
            run.queued
        );
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
