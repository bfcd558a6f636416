//! Self-contained HTML of a report: one page with its own style sheet, no script, no external
//! resource, and a Content-Security-Policy that forbids both. Every value from the ledger
//! (subjects, owners, reasons, errors) is escaped, so a certificate subject cannot inject markup.

use std::fmt::Write;

use super::{datetime, period, ComplianceReport, Section};

const STYLE: &str = "body{font-family:system-ui,Helvetica,Arial,sans-serif;margin:2em;color:#111}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #999}\
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;\
vertical-align:top}th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}";

/// Renders `report` as one HTML document.
pub fn to_html(report: &ComplianceReport) -> String {
    let mut h = String::with_capacity(4096 + report.rows.len() * 200);
    let title = report.kind.title();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>{t}, {p}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n<dl>\
         <dt>Period</dt><dd>{p}</dd><dt>Generated</dt><dd>{g} UTC</dd>",
        t = escape(title),
        p = escape(&period(report)),
        g = escape(&datetime(report.generated_at)),
    );
    for (name, value) in &report.facts {
        let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", escape(name), escape(value));
    }
    h.push_str("</dl>\n<h2 id=\"totals\">Totals</h2>\n<table><tr><th>section</th><th>item</th><th>count</th></tr>\n");
    for t in &report.totals {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(t.section.title()),
            escape(&t.item),
            t.value
        );
    }
    h.push_str("</table>\n");
    let mut sections: Vec<Section> = report.rows.iter().map(|r| r.section).collect();
    sections.sort_unstable();
    sections.dedup();
    for s in sections {
        let _ = write!(h, "<h2 id=\"{}\">{}</h2>\n<table><tr>", s.as_str(), escape(s.title()));
        for c in s.columns() {
            let _ = write!(h, "<th>{}</th>", escape(c));
        }
        h.push_str("</tr>\n");
        for r in report.rows.iter().filter(|r| r.section == s) {
            let at = r.at.map(datetime).unwrap_or_default();
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&r.item),
                escape(&r.subject),
                escape(&r.owner),
                escape(&at),
                escape(&r.detail)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</body></html>\n");
    h
}

/// Escapes text for an HTML element or a quoted attribute.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::reports::sample::sample;

    #[test]
    fn values_are_escaped_and_the_page_loads_nothing() {
        let html = to_html(&sample());
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("CN=&lt;script&gt;alert(1)&lt;/script&gt;,O=&quot;x&quot;"), "{html}");
        assert!(html.contains("web &amp; mail"));
        assert!(!html.contains("src=") && !html.contains("href="), "self-contained");
        assert!(html.contains("default-src 'none'"));
    }

    #[test]
    fn every_total_is_a_table_row() {
        let r = sample();
        let html = to_html(&r);
        assert_eq!(html.matches("<td class=\"n\">").count(), r.totals.len());
        assert!(html.contains("<td>Revoked</td><td>keyCompromise</td><td class=\"n\">1</td>"));
        assert!(html.contains("2026-09-01 to 2026-11-30 (UTC)"), "{html}");
    }
}
