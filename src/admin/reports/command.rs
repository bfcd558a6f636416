//! `privca report`: builds a report of a period and writes it as CSV, HTML or PDF.

use std::{io::Write, path::PathBuf, process::ExitCode};

use clap::{Args, ValueEnum};

use super::{access_review, compliance, to_csv, to_html, to_pdf, ReportContext};
use crate::{app::App, error::CaError};

const DAY: i64 = 86_400;

/// `privca report` arguments.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// First day of the period, YYYY-MM-DD (UTC; default: 90 days before `--to`).
    #[arg(long)]
    pub from: Option<String>,
    /// Last day of the period, YYYY-MM-DD (UTC, included; default: today).
    #[arg(long)]
    pub to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
    /// Which report.
    #[arg(long, value_enum, default_value_t = ReportKindArg::Compliance)]
    pub kind: ReportKindArg,
    /// Write the report here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// RFC 4180 CSV.
    Csv,
    /// One self-contained HTML page.
    Html,
    /// PDF (A4 landscape).
    Pdf,
}

/// `--kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportKindArg {
    /// Roles, tokens and their last use.
    Access,
    /// Issuance, revocation, expiry, ownership, findings, approvals, notifications, audit.
    Compliance,
}

/// Runs `privca report`.
pub async fn run(app: &App, args: ReportArgs) -> Result<ExitCode, CaError> {
    let now = crate::ledger::now();
    let to = match &args.to {
        Some(d) => day(d)? + DAY,
        None => now - now.rem_euclid(DAY) + DAY,
    };
    let from = match &args.from {
        Some(d) => day(d)?,
        None => to - 91 * DAY,
    };
    if from >= to {
        return Err(CaError::bad_request("--from must be before --to"));
    }
    let context = ReportContext::of(app);
    let report = match args.kind {
        ReportKindArg::Access => access_review(&app.ledger, from, to, &context).await?,
        ReportKindArg::Compliance => compliance(&app.ledger, from, to, &context).await?,
    };
    let bytes = match args.format {
        ReportFormat::Csv => to_csv(&report).into_bytes(),
        ReportFormat::Html => to_html(&report).into_bytes(),
        ReportFormat::Pdf => to_pdf(&report),
    };
    match &args.out {
        Some(path) => std::fs::write(path, &bytes)
            .map_err(|e| CaError::internal(format!("cannot write {}", path.display())).with_source(e))?,
        None => std::io::stdout()
            .write_all(&bytes)
            .map_err(|e| CaError::internal("cannot write to stdout").with_source(e))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Unix seconds of `YYYY-MM-DD`, UTC midnight.
pub fn day(s: &str) -> Result<i64, CaError> {
    let bad = || CaError::bad_request(format!("`{s}` is not a date (YYYY-MM-DD)"));
    let mut parts = s.splitn(3, '-').map(|p| p.parse::<u16>().map_err(|_| bad()));
    let (y, m, d) = (parts.next().ok_or_else(bad)??, parts.next().ok_or_else(bad)??, parts.next().ok_or_else(bad)??);
    let (m, d) = (u8::try_from(m).map_err(|_| bad())?, u8::try_from(d).map_err(|_| bad())?);
    let dt = der::DateTime::new(y, m, d, 0, 0, 0).map_err(|_| bad())?;
    i64::try_from(dt.unix_duration().as_secs()).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::day;

    #[test]
    fn days_are_utc_midnights() {
        assert_eq!(day("2026-09-01").unwrap(), 1_788_220_800);
        assert!(day("2026-13-01").is_err());
        assert!(day("yesterday").is_err());
    }
}
