//! PDF of a report (A4 landscape), written with `pdf-writer` and the standard Type 1 fonts every
//! PDF reader carries (Helvetica for prose and totals, Courier for the tables, so that columns
//! are cut to width by counting characters): no font file is embedded or needed. Text is
//! WinAnsi-encoded; characters outside it print as `?`. Each total is one text line,
//! `section / item: count`, so that `pdftotext` reads back exactly the totals of the CSV.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::{datetime, period, ComplianceReport, Section};

const WIDTH: f32 = 842.0;
const HEIGHT: f32 = 595.0;
const MARGIN: f32 = 40.0;
const SANS: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");
const MONO: Name<'static> = Name(b"F3");
/// Table text size; Courier is 0.6 em wide.
const MONO_SIZE: f32 = 7.0;
/// Table columns, in characters (item, subject, owner, time, detail).
const COLUMNS: [usize; 5] = [34, 44, 18, 16, 66];

/// Renders `report` as a PDF document.
pub fn to_pdf(report: &ComplianceReport) -> Vec<u8> {
    let mut w = Writer::new(report.kind.title());
    w.text(BOLD, 16.0, 22.0, report.kind.title());
    w.text(SANS, 10.0, 14.0, &format!("Period: {}", period(report)));
    w.text(SANS, 10.0, 14.0, &format!("Generated: {} UTC", datetime(report.generated_at)));
    for (name, value) in &report.facts {
        w.text(SANS, 10.0, 14.0, &format!("{name}: {value}"));
    }
    w.gap(8.0);
    w.heading("Totals");
    for t in &report.totals {
        w.text(SANS, 9.0, 12.0, &format!("{}: {}", t.label(), t.value));
    }
    let mut sections: Vec<Section> = report.rows.iter().map(|r| r.section).collect();
    sections.sort_unstable();
    sections.dedup();
    for s in sections {
        w.gap(8.0);
        w.heading(s.title());
        w.text(MONO, MONO_SIZE, 10.0, &table_line(&s.columns().map(str::to_owned)));
        w.rule();
        for r in report.rows.iter().filter(|r| r.section == s) {
            let cells = [
                r.item.clone(),
                r.subject.clone(),
                r.owner.clone(),
                r.at.map(datetime).unwrap_or_default(),
                r.detail.clone(),
            ];
            w.text(MONO, MONO_SIZE, 9.0, &table_line(&cells));
        }
    }
    w.finish()
}

/// One table line: each cell cut or padded to its column.
fn table_line(cells: &[String; 5]) -> String {
    let mut line = String::new();
    for (cell, width) in cells.iter().zip(COLUMNS) {
        let chars: Vec<char> = cell.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        if chars.len() > width {
            line.extend(&chars[..width - 1]);
            line.push('\u{2026}');
        } else {
            line.extend(&chars);
            line.extend(std::iter::repeat_n(' ', width - chars.len()));
        }
        line.push(' ');
    }
    line.trim_end().to_owned()
}

/// WinAnsiEncoding bytes of `s` (Latin-1 plus the ellipsis; `?` for the rest).
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            '\u{2026}' => 0x85,
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            _ => b'?',
        })
        .collect()
}

/// Lays text out top-down on as many pages as it takes.
struct Writer {
    title: String,
    pages: Vec<Content>,
    y: f32,
}

impl Writer {
    fn new(title: &str) -> Writer {
        let mut w = Writer { title: title.to_owned(), pages: Vec::new(), y: 0.0 };
        w.new_page();
        w
    }

    fn new_page(&mut self) {
        let mut page = Content::new();
        let footer = format!("{} - page {}", self.title, self.pages.len() + 1);
        page.begin_text();
        page.set_font(SANS, 8.0);
        page.next_line(MARGIN, MARGIN / 2.0);
        page.show(Str(&win_ansi(&footer)));
        page.end_text();
        self.pages.push(page);
        self.y = HEIGHT - MARGIN;
    }

    /// Room for `height` more points on this page, or a new page.
    fn room(&mut self, height: f32) {
        if self.y - height < MARGIN {
            self.new_page();
        }
    }

    fn gap(&mut self, height: f32) {
        self.y -= height;
    }

    fn text(&mut self, font: Name<'static>, size: f32, leading: f32, text: &str) {
        self.room(leading);
        self.y -= leading;
        let y = self.y;
        if let Some(page) = self.pages.last_mut() {
            page.begin_text();
            page.set_font(font, size);
            page.next_line(MARGIN, y);
            page.show(Str(&win_ansi(text)));
            page.end_text();
        }
    }

    fn heading(&mut self, text: &str) {
        self.room(40.0);
        self.text(BOLD, 12.0, 16.0, text);
        self.rule();
    }

    fn rule(&mut self) {
        let y = self.y - 3.0;
        if let Some(page) = self.pages.last_mut() {
            page.set_line_width(0.5);
            page.move_to(MARGIN, y);
            page.line_to(WIDTH - MARGIN, y);
            page.stroke();
        }
        self.y -= 4.0;
    }

    fn finish(self) -> Vec<u8> {
        let mut pdf = Pdf::new();
        let (catalog, tree, info) = (Ref::new(1), Ref::new(2), Ref::new(3));
        let fonts =
            [(SANS, Ref::new(4), "Helvetica"), (BOLD, Ref::new(5), "Helvetica-Bold"), (MONO, Ref::new(6), "Courier")];
        let first = 7;
        let ids: Vec<(Ref, Ref)> =
            (0..self.pages.len() as i32).map(|i| (Ref::new(first + 2 * i), Ref::new(first + 2 * i + 1))).collect();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree).kids(ids.iter().map(|(page, _)| *page)).count(ids.len() as i32);
        pdf.document_info(info).title(TextStr(&self.title)).producer(TextStr("privca"));
        for (name, id, base) in fonts {
            let _ = name;
            pdf.type1_font(id).base_font(Name(base.as_bytes())).encoding_predefined(Name(b"WinAnsiEncoding"));
        }
        for ((page_id, content_id), content) in ids.iter().zip(self.pages) {
            let mut page = pdf.page(*page_id);
            page.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT)).parent(tree).contents(*content_id);
            let mut resources = page.resources();
            let mut font_dict = resources.fonts();
            for (name, id, _) in fonts {
                font_dict.pair(name, id);
            }
            font_dict.finish();
            resources.finish();
            page.finish();
            pdf.stream(*content_id, &content.finish());
        }
        pdf.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::reports::sample::sample;

    #[test]
    fn a_pdf_with_every_total_as_a_line() {
        let pdf = to_pdf(&sample());
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.ends_with(b"%%EOF") || pdf.ends_with(b"%%EOF\n"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("(revoked / keyCompromise: 1)"), "{text}");
        assert!(text.contains("/BaseFont /Courier"));
    }

    #[test]
    fn long_reports_take_several_pages() {
        let mut r = sample();
        let row = r.rows[0].clone();
        r.rows = vec![row; 200];
        let pdf = to_pdf(&r);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Count 4") || text.contains("/Count 5"), "{}", text.matches("/Count").count());
    }

    #[test]
    fn cells_are_cut_to_their_column() {
        let long = "x".repeat(50);
        let line = table_line(&[long.clone(), "s".into(), "o".into(), "t".into(), "d".into()]);
        assert_eq!(line.chars().count(), 34 + 1 + 44 + 1 + 18 + 1 + 16 + 1 + 1);
        assert!(line.starts_with(&format!("{}\u{2026} s", "x".repeat(33))));
        assert_eq!(win_ansi("é\u{2026}€<"), vec![0xe9, 0x85, b'?', b'<']);
    }
}
