//! The scheduled report (`[reports]`): every hour `privca serve` looks whether the last complete
//! month or quarter has been mailed to each recipient; if not, it builds the compliance report
//! of that period once and mails it (PDF or HTML attached, totals in the text) through the CLM
//! email channel. Each recipient's last mailed period end is kept in `clm_state`
//! (`report:<address>`), so a restart neither repeats nor skips a period; a failed delivery is
//! tried again at the next look.

use std::time::Duration;

use tokio::sync::watch;

use super::{compliance, period, to_html, to_pdf, ComplianceReport, ReportContext};
use crate::{
    app::App,
    clm::notify::{EmailFile, Notifier},
    config::reports::{ReportAttachment, ReportSchedule},
    ledger::LedgerError,
};

/// How often the schedule is looked at.
const CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// Runs until `stop` flips (returns at once with `reports.schedule = "off"`).
pub async fn run(app: App, lease: crate::jobs::lease::Lease, mut stop: watch::Receiver<bool>) {
    if app.config.reports.schedule == ReportSchedule::Off {
        return;
    }
    let notifier = match Notifier::new(&app.config.clm) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "reports: the SMTP channel cannot be set up; scheduled reports are not mailed");
            return;
        }
    };
    let mut tick = tokio::time::interval(CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = lease.next(&mut tick) => {
                match send_due(&app, &notifier, crate::ledger::now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(recipients = n, "reports: scheduled compliance report mailed"),
                    Err(e) => tracing::warn!(error = %e, "reports: the scheduled report could not be built"),
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Mails the report of the last complete period to every recipient that has not had it;
/// returns how many got it now. A recipient whose delivery fails is logged and left for the
/// next look.
pub async fn send_due(app: &App, notifier: &Notifier, now: i64) -> Result<usize, LedgerError> {
    let config = &app.config.reports;
    let Some((from, to)) = last_period(config.schedule, now) else { return Ok(0) };
    let mut due = Vec::new();
    for r in &config.recipients {
        if app.ledger.clm_state(&state_name(r)).await?.is_none_or(|sent| sent < to) {
            due.push(r);
        }
    }
    if due.is_empty() {
        return Ok(0);
    }
    let mut context = ReportContext::of(app);
    context.now = now;
    let report = compliance(&app.ledger, from, to, &context).await?;
    let file = attachment(&report, config.format);
    let subject = format!("[privca] compliance report {}", period(&report));
    let body = summary(&report);
    let mut sent = 0;
    for r in due {
        let key = format!("report:{to}:{r}");
        match notifier.email_file(&key, r, &subject, &body, file.clone()).await {
            Ok(()) => {
                app.ledger.queue_messages_at(&[], &state_name(r), to).await?;
                sent += 1;
            }
            Err(e) => tracing::warn!(recipient = %r, error = %e, "reports: mailing the scheduled report failed"),
        }
    }
    Ok(sent)
}

fn state_name(recipient: &str) -> String {
    format!("report:{recipient}")
}

/// `[from, to)` of the last complete month or quarter before `now` (UTC).
pub fn last_period(schedule: ReportSchedule, now: i64) -> Option<(i64, i64)> {
    let months = match schedule {
        ReportSchedule::Monthly => 1,
        ReportSchedule::Off => return None,
        ReportSchedule::Quarterly => 3,
    };
    let today = der::DateTime::from_unix_duration(Duration::from_secs(u64::try_from(now).ok()?)).ok()?;
    // Months since year 0, at the start of the current period.
    let current = i64::from(today.year()) * 12 + (i64::from(today.month()) - 1) / months * months;
    Some((month_start(current - months)?, month_start(current)?))
}

/// Unix time of the first day of month `index` (months since year 0).
fn month_start(index: i64) -> Option<i64> {
    let year = u16::try_from(index.div_euclid(12)).ok()?;
    let month = u8::try_from(index.rem_euclid(12) + 1).ok()?;
    let d = der::DateTime::new(year, month, 1, 0, 0, 0).ok()?;
    i64::try_from(d.unix_duration().as_secs()).ok()
}

fn attachment(report: &ComplianceReport, format: ReportAttachment) -> EmailFile {
    let stem = format!("privca-compliance-{}", super::date(report.from));
    match format {
        ReportAttachment::Html => EmailFile {
            name: format!("{stem}.html"),
            content_type: "text/html; charset=utf-8",
            bytes: to_html(report).into_bytes(),
        },
        ReportAttachment::Pdf => {
            EmailFile { name: format!("{stem}.pdf"), content_type: "application/pdf", bytes: to_pdf(report) }
        }
    }
}

/// The mail's text: the facts and totals (the attachment has the rows).
fn summary(report: &ComplianceReport) -> String {
    let mut s = format!("{}, {}\n\n", report.kind.title(), period(report));
    for (name, value) in &report.facts {
        s.push_str(&format!("{name}: {value}\n"));
    }
    s.push('\n');
    for t in &report.totals {
        s.push_str(&format!("{}: {}\n", t.label(), t.value));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_the_last_complete_month_or_quarter() {
        let day = |s: &str| super::super::command::day(s).unwrap();
        let now = day("2026-12-06") + 3600;
        assert_eq!(last_period(ReportSchedule::Monthly, now), Some((day("2026-11-01"), day("2026-12-01"))));
        assert_eq!(last_period(ReportSchedule::Quarterly, now), Some((day("2026-07-01"), day("2026-10-01"))));
        let jan = day("2027-01-15");
        assert_eq!(last_period(ReportSchedule::Monthly, jan), Some((day("2026-12-01"), day("2027-01-01"))));
        assert_eq!(last_period(ReportSchedule::Quarterly, jan), Some((day("2026-10-01"), day("2027-01-01"))));
        assert_eq!(
            last_period(ReportSchedule::Quarterly, day("2027-04-01")),
            Some((day("2027-01-01"), day("2027-04-01")))
        );
        assert_eq!(last_period(ReportSchedule::Off, now), None);
    }
}
