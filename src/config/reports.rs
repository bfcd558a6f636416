//! `[reports]`: the compliance report `privca serve` mails on a schedule
//! (`admin::reports::schedule`): once a month or once a quarter, for the period just ended, to
//! `recipients` by email through the CLM channels' SMTP server (`[clm.smtp]`), as a PDF or HTML
//! attachment.

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawReports {
    schedule: Option<String>,
    recipients: Vec<String>,
    format: Option<String>,
}

/// The scheduled report.
#[derive(Debug, Clone, Default)]
pub struct ReportsConfig {
    /// How often (off by default).
    pub schedule: ReportSchedule,
    /// Email addresses the report goes to.
    pub recipients: Vec<String>,
    /// The attachment's format.
    pub format: ReportAttachment,
}

/// `reports.schedule`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReportSchedule {
    /// The previous calendar month, early on the 1st.
    Monthly,
    /// No scheduled report.
    #[default]
    Off,
    /// The previous calendar quarter, early on the 1st of January, April, July and October.
    Quarterly,
}

/// `reports.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReportAttachment {
    /// One self-contained HTML page.
    Html,
    /// PDF.
    #[default]
    Pdf,
}

/// Checks `[reports]`; `smtp` says whether `[clm.smtp]` is configured.
pub(crate) fn build(raw: RawReports, smtp: bool) -> Result<ReportsConfig, ConfigError> {
    let schedule = match raw.schedule.as_deref() {
        None | Some("off") => ReportSchedule::Off,
        Some("monthly") => ReportSchedule::Monthly,
        Some("quarterly") => ReportSchedule::Quarterly,
        Some(other) => {
            return Err(ConfigError::invalid("reports.schedule", format!("`{other}`: use monthly, quarterly or off")))
        }
    };
    let format = match raw.format.as_deref() {
        None | Some("pdf") => ReportAttachment::Pdf,
        Some("html") => ReportAttachment::Html,
        Some(other) => return Err(ConfigError::invalid("reports.format", format!("`{other}`: use pdf or html"))),
    };
    if let Some(bad) = raw.recipients.iter().find(|r| !r.contains('@')) {
        return Err(ConfigError::invalid("reports.recipients", format!("`{bad}` is not an email address")));
    }
    if schedule != ReportSchedule::Off {
        if raw.recipients.is_empty() {
            return Err(ConfigError::invalid("reports.recipients", "a scheduled report needs at least one recipient"));
        }
        if !smtp {
            return Err(ConfigError::invalid("reports.schedule", "a scheduled report is mailed: configure [clm.smtp]"));
        }
    }
    Ok(ReportsConfig { schedule, recipients: raw.recipients, format })
}
