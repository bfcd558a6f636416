//! `privca discover`: builds the targets, scans them with a progress bar on a terminal,
//! records every endpoint in the inventory, and prints a summary table (or JSON). The exit
//! status is 0 once the scan ran; endpoints that failed are listed with their error.

use std::{io::IsTerminal, process::ExitCode, time::Instant};

use clap::Args;

use super::{
    expand_cidr, parse_ports, parse_targets,
    record::{expiring_within, scan_and_record, trust_store, EndpointReport, Judge},
    scan::ScanOptions,
    starttls::Starttls,
    with_sni, DiscoverError, Target, DEFAULT_MAX_ADDRESSES,
};
use crate::{app::App, error::CaError};

/// `privca discover` arguments.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(true).args(["targets", "cidr"]))]
pub struct DiscoverArgs {
    /// Endpoints, `host:port` (port 443 when left out), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
    /// A range of addresses, scanned on every `--ports` port.
    #[arg(long)]
    pub cidr: Vec<String>,
    /// Ports for `--cidr`, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "443")]
    pub ports: Vec<String>,
    /// SNI names: each endpoint is scanned once per name (and the certificate judged against
    /// it); without, the host name is sent, and nothing for an address.
    #[arg(long, num_args = 1..)]
    pub sni: Vec<String>,
    /// Speak this protocol's STARTTLS before the handshake.
    #[arg(long, value_enum)]
    pub starttls: Option<Starttls>,
    /// Endpoints scanned at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// DNS resolution plus TCP connect, per endpoint (e.g. 3s, 500ms).
    #[arg(long, default_value = "3s")]
    pub connect_timeout: String,
    /// STARTTLS plus TLS handshake, per connection.
    #[arg(long, default_value = "5s")]
    pub handshake_timeout: String,
    /// Largest CIDR range accepted, in addresses.
    #[arg(long, default_value_t = DEFAULT_MAX_ADDRESSES)]
    pub max_addresses: u64,
    /// A leaf expiring within this many days is reported as expiring (default: the first
    /// notice threshold of the `internal` tier, which discovered certificates get).
    #[arg(long)]
    pub expiring_days: Option<u32>,
    /// JSON output (one object per endpoint).
    #[arg(long)]
    pub json: bool,
}

fn bad(e: DiscoverError) -> CaError {
    match e {
        DiscoverError::Target(_) | DiscoverError::CidrTooLarge { .. } => CaError::bad_request(e.to_string()),
        e => CaError::internal(e.to_string()),
    }
}

fn duration(flag: &str, value: &str) -> Result<std::time::Duration, CaError> {
    crate::config::duration::parse(flag, value).map_err(|e| CaError::bad_request(e.to_string()))
}

/// The targets `args` name.
pub fn targets(args: &DiscoverArgs) -> Result<Vec<Target>, DiscoverError> {
    let mut endpoints = parse_targets(&args.targets)?;
    let ports = parse_ports(&args.ports)?;
    for cidr in &args.cidr {
        endpoints.extend(expand_cidr(cidr, &ports, args.max_addresses)?);
    }
    Ok(with_sni(endpoints, &args.sni))
}

/// Runs `privca discover`.
pub async fn run(app: &App, args: DiscoverArgs) -> Result<ExitCode, CaError> {
    let targets = targets(&args).map_err(bad)?;
    let options = ScanOptions {
        concurrency: args.concurrency,
        connect_timeout: duration("--connect-timeout", &args.connect_timeout)?,
        handshake_timeout: duration("--handshake-timeout", &args.handshake_timeout)?,
        starttls: args.starttls,
    };
    let judge = Judge {
        trust: std::sync::Arc::new(trust_store(&app.ledger).await?),
        expiring_within: expiring_within(&app.config.clm, args.expiring_days),
        actor: crate::ca::Requester::cli().to_string(),
    };

    let bar = if !args.json && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(targets.len() as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} endpoints, {per_sec}, eta {eta} {msg}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let started = Instant::now();
    let count = targets.len();
    let reports = scan_and_record(&app.ledger, targets, &options, &judge, |r| {
        bar.inc(1);
        if let (Some(e), false) = (&r.error, r.no_listener) {
            bar.set_message(format!("{}: {e}", r.target.label()));
        }
    })
    .await
    .map_err(bad)?;
    bar.finish_and_clear();
    let scanned = started.elapsed();
    let secs = scanned.as_secs_f64().max(1e-9);
    eprintln!(
        "scanned and recorded {count} endpoints in {:.2} s ({:.1} endpoints/s)",
        scanned.as_secs_f64(),
        count as f64 / secs
    );
    if args.json {
        let text = serde_json::to_string_pretty(&reports).map_err(|e| CaError::internal("JSON").with_source(e))?;
        println!("{text}");
    } else {
        print_table(&reports, !args.cidr.is_empty());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(reports: &[EndpointReport], collapse_closed: bool) {
    let width = reports.iter().map(|r| r.target.label().len()).max().unwrap_or(8).clamp(8, 48);
    println!("{:<width$}  {:<40}  {:<10}  {:<7}  FINDINGS", "ENDPOINT", "SUBJECT", "EXPIRES", "TLS");
    let mut closed = 0;
    for r in reports {
        let label = r.target.label();
        match (&r.observation, &r.error) {
            (Some(o), error) => {
                let mut findings: Vec<&str> = o.findings.iter().map(|f| f.as_str()).collect();
                if findings.is_empty() {
                    findings.push("-");
                }
                let own = match r.recorded.as_ref().and_then(|x| x.own_serial.as_deref()) {
                    Some(serial) => format!("  [privca serial {serial}]"),
                    None => String::new(),
                };
                let subject: String = o.leaf.subject.chars().take(40).collect();
                println!(
                    "{label:<width$}  {subject:<40}  {:<10}  {:<7}  {}{own}",
                    date(o.leaf.not_after),
                    o.tls_version,
                    findings.join(",")
                );
                if let Some(e) = error {
                    println!("{label:<width$}  not recorded: {e}");
                }
            }
            (None, Some(_)) if collapse_closed && r.no_listener => closed += 1,
            (None, Some(e)) => println!("{label:<width$}  error: {e}"),
            (None, None) => {}
        }
    }
    if closed > 0 {
        println!("({closed} endpoints refused or did not answer the TCP connection)");
    }
}

/// `YYYY-MM-DD` of a Unix time.
fn date(unix: i64) -> String {
    der::DateTime::from_unix_duration(std::time::Duration::from_secs(unix.max(0) as u64))
        .map(|d| format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()))
        .unwrap_or_else(|_| unix.to_string())
}
