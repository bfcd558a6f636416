//! CSV (RFC 4180, CRLF line ends) of a report: one table whose first column says what each
//! line is — `fact`, `total` or `row` — so that one file carries the whole report and a
//! spreadsheet filter on that column separates them. Text cells that a spreadsheet would run
//! as a formula (`=`, `+`, `-`, `@`, tab, CR first) are prefixed with `'`.

use super::{datetime, period, ComplianceReport};

/// The header line.
pub(crate) const HEADER: &str = "record,section,item,value,subject,owner,time,detail";

/// Renders `report` as CSV.
pub fn to_csv(report: &ComplianceReport) -> String {
    let mut out = String::new();
    line(&mut out, &[HEADER]);
    let meta = [
        ("report", report.kind.title().to_owned()),
        ("period", period(report)),
        ("generated", datetime(report.generated_at)),
    ];
    for (name, value) in
        meta.iter().map(|(n, v)| (*n, v.as_str())).chain(report.facts.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    {
        line(&mut out, &["fact", "", &cell(name), &cell(value), "", "", "", ""]);
    }
    for t in &report.totals {
        line(&mut out, &["total", t.section.as_str(), &cell(&t.item), &t.value.to_string(), "", "", "", ""]);
    }
    for r in &report.rows {
        let at = r.at.map(datetime).unwrap_or_default();
        line(
            &mut out,
            &["row", r.section.as_str(), &cell(&r.item), "", &cell(&r.subject), &cell(&r.owner), &at, &cell(&r.detail)],
        );
    }
    out
}

fn line(out: &mut String, cells: &[&str]) {
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

/// A text cell, quoted when needed and defused against formula evaluation.
fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_owned() };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::reports::sample::sample;

    #[test]
    fn every_total_and_row_is_one_line() {
        let r = sample();
        let csv = to_csv(&r);
        let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines[0], HEADER);
        assert_eq!(lines.iter().filter(|l| l.starts_with("total,")).count(), r.totals.len());
        assert!(lines.contains(&"total,revoked,keyCompromise,1,,,,"), "{csv}");
        assert!(
            lines.iter().any(|l| l.starts_with("row,revoked,0a1b,,\"CN=<script>alert(1)</script>,O=\"\"x\"\"\"")),
            "{csv}"
        );
    }

    #[test]
    fn cells_are_quoted_and_defused() {
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("plain"), "plain");
    }
}
