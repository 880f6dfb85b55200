//! The HTML drill report: one self-contained page (inline CSS and SVG, no scripts, no
//! external assets) that opens anywhere, including an air-gapped auditor's laptop, and
//! prints as a clean A4 document.

use std::fmt::Write as _;

use super::chart::{self, Scale, Spec, esc, result_color};
use super::{Lang, ReportOptions, summary};
use crate::drill::DrillRecord;
use crate::units::{binary_size, duration};

/// CJK fonts first for Japanese; after the Latin ones for English (a Japanese operator
/// name in an English report still renders).
const FONTS_JA: &str =
    "\"Noto Sans CJK JP\", \"Hiragino Sans\", \"Yu Gothic\", \"Meiryo\", \"Noto Sans\", sans-serif";
const FONTS_EN: &str = "system-ui, \"Noto Sans\", \"DejaVu Sans\", \"Noto Sans CJK JP\", \"Hiragino Sans\", \"Yu Gothic\", \"Meiryo\", sans-serif";

/// Screen and print styles. Print: A4 with margins, each section from a new page, no
/// clipped tables (they wrap), rows and charts never split.
const STYLE: &str = "body{margin:24px;color:#212121;max-width:1040px}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}\
svg{width:100%;height:auto;border:1px solid #e0e0e0}svg text{font-family:inherit}\
.axis{font-size:12px;fill:#555}.value{font-size:10px;fill:#333}.cell-label{font-size:11px;fill:#fff;font-weight:bold}\
table{border-collapse:collapse;font-size:13px;width:100%}\
td,th{border-bottom:1px solid #e0e0e0;padding:4px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word}\
td.why{min-width:16em;overflow-wrap:anywhere}\
.badge{color:#fff;padding:1px 6px;border-radius:3px;white-space:nowrap}\
.legend span{margin-right:14px;white-space:nowrap}.none{color:#777}.reason{color:#b71c1c}\
.summary-line{font-size:15px;font-weight:bold}\
@page{size:A4;margin:14mm 12mm}\
@media print{body{margin:0;max-width:none;font-size:10pt}\
section{break-before:page}section.first{break-before:auto}\
h2{break-after:avoid}svg,.legend{break-inside:avoid}tr{break-inside:avoid}\
table{font-size:8pt;table-layout:auto}thead{display:table-header-group}\
td,th{padding:2px 3px}}";

/// The whole drill history as one self-contained HTML page.
pub fn html(records: &[DrillRecord], opts: &ReportOptions) -> String {
    let l = opts.labels();
    let mut records = records.to_vec();
    records.sort_by(|a, b| a.started.cmp(&b.started));
    let mut page = head(opts, records.len());
    if records.is_empty() {
        let _ = write!(page, "<p>{}</p>", l.no_drills);
        super::audits::html(&mut page, opts);
        page.push_str("</body></html>\n");
        return page;
    }
    summary_section(&mut page, &records, opts);
    failures_section(&mut page, &records, opts);
    charts_section(&mut page, &records, opts);
    if let Some(last) = records.last() {
        phases_section(&mut page, last, opts);
    }
    all_drills_section(&mut page, &records, opts);
    super::audits::html(&mut page, opts);
    page.push_str("</body></html>\n");
    page
}

/// The page's head, style and opening lines.
fn head(opts: &ReportOptions, drills: usize) -> String {
    let fonts = match opts.lang {
        Lang::Ja => FONTS_JA,
        Lang::En => FONTS_EN,
    };
    format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:{fonts}}}{STYLE}</style></head><body><h1>{t}</h1><p>{g}</p>",
        lang = opts.lang.code(),
        t = esc(&opts.title()),
        g = esc(&opts.generated(drills)),
    )
}

fn badge(r: &DrillRecord, opts: &ReportOptions) -> String {
    format!(
        "<span class=\"badge\" style=\"background:{}\">{}</span>",
        result_color(r.result),
        esc(opts.labels().result(r.result))
    )
}

fn cells(page: &mut String, values: &[String]) {
    page.push_str("<tr>");
    for v in values {
        let class = if v.starts_with("<div class=\"reason\">") {
            " class=\"why\""
        } else {
            ""
        };
        let _ = write!(page, "<td{class}>{v}</td>");
    }
    page.push_str("</tr>");
}

fn header(page: &mut String, names: &[&str]) {
    page.push_str("<table><thead><tr>");
    for n in names {
        let _ = write!(page, "<th>{}</th>", esc(n));
    }
    page.push_str("</tr></thead><tbody>");
}

/// Reasons, one per line; a cell of them is marked `why` (it wraps anywhere: object names
/// are long).
fn reasons(list: &[String]) -> String {
    list.iter()
        .map(|r| format!("<div class=\"reason\">{}</div>", esc(r)))
        .collect()
}

/// The verdict per data set and store.
fn summary_section(page: &mut String, records: &[DrillRecord], opts: &ReportOptions) {
    let l = opts.labels();
    let rows = summary::rows(records, opts);
    let _ = write!(
        page,
        "<section class=\"first\" id=\"summary\"><h2>{}</h2><p class=\"summary-line\">{}</p>",
        esc(l.h_summary),
        esc(&summary::line(records, &rows, opts))
    );
    header(page, &l.summary_columns());
    for r in &rows {
        let full = r.full;
        let color = match r.verdict {
            summary::Verdict::Ok => "#2e7d32",
            summary::Verdict::Overdue | summary::Verdict::NoFullDrill => "#ef6c00",
            summary::Verdict::Attention => "#c62828",
        };
        cells(
            page,
            &[
                esc(&r.set),
                esc(&r.store),
                format!(
                    "<span class=\"badge\" style=\"background:{color}\">{}</span>",
                    esc(r.verdict_label(opts))
                ),
                full.map_or("—".into(), |f| esc(&opts.time(&f.started))),
                full.map_or("—".into(), |f| badge(f, opts)),
                full.map_or("—".into(), |f| esc(&opts.rto(f))),
                full.map_or("—".into(), |f| {
                    esc(&opts.versus(f.rpo_secs, f.targets.rpo_secs))
                }),
                esc(&r.due_label(opts)),
                esc(&super::audits::latest_for(&r.store, opts)),
                reasons(&r.reasons(opts)),
            ],
        );
    }
    page.push_str("</tbody></table></section>");
}

/// Every drill that did not pass, newest first, with its reasons as text.
fn failures_section(page: &mut String, records: &[DrillRecord], opts: &ReportOptions) {
    let l = opts.labels();
    let failed: Vec<&DrillRecord> = records
        .iter()
        .rev()
        .filter(|r| !r.reasons().is_empty())
        .collect();
    if failed.is_empty() {
        return;
    }
    let _ = write!(
        page,
        "<section id=\"failures\"><h2>{}</h2>",
        esc(l.h_failures)
    );
    header(
        page,
        &[
            l.c_when,
            l.c_store,
            l.c_data_set,
            l.c_mode,
            l.c_result,
            l.c_reason,
        ],
    );
    for r in failed {
        cells(
            page,
            &[
                esc(&opts.time(&r.started)),
                esc(&r.store),
                esc(&r.data_set_label()),
                esc(l.mode(&r.mode)),
                badge(r, opts),
                reasons(&r.reasons()),
            ],
        );
    }
    page.push_str("</tbody></table></section>");
}

/// The series legend, RTO (log scale, each drill's target), RPO, throughput by mode, and
/// the store × date grid.
fn charts_section(page: &mut String, records: &[DrillRecord], opts: &ReportOptions) {
    let l = opts.labels();
    let colors = chart::colors(records);
    let _ = write!(
        page,
        "<section id=\"charts\"><h2>{}</h2><p class=\"legend\">",
        esc(l.h_rto)
    );
    for (key, color) in &colors {
        let _ = write!(
            page,
            "<span><svg width=\"12\" height=\"12\" style=\"border:0;width:12px\"><circle cx=\"6\" cy=\"6\" r=\"5\" fill=\"{color}\"/></svg> {}</span>",
            esc(key)
        );
    }
    page.push_str("</p>");
    page.push_str(&chart::chart(
        records,
        &colors,
        &Spec {
            id: "rto-chart",
            scale: Scale::LogDuration,
            value: &DrillRecord::reached_rto,
            target: &|r| r.targets.rto_secs,
            missed: &|r| {
                r.targets
                    .rto_secs
                    .is_some_and(|t| r.reached_rto().is_some_and(|v| v > t))
            },
            mark_unrecovered: true,
            fmt: &duration,
        },
        opts,
    ));
    let _ = write!(page, "<h2>{}</h2>", esc(l.h_rpo));
    page.push_str(&chart::chart(
        records,
        &colors,
        &Spec {
            id: "rpo-chart",
            scale: Scale::LogDuration,
            value: &|r| r.rpo_secs,
            target: &|r| r.targets.rpo_secs,
            missed: &|r| {
                r.targets
                    .rpo_secs
                    .is_some_and(|t| r.rpo_secs.is_none_or(|v| v > t))
            },
            mark_unrecovered: false,
            fmt: &duration,
        },
        opts,
    ));
    let _ = write!(page, "<h2>{}</h2>", esc(l.h_throughput));
    page.push_str(&chart::chart(
        records,
        &colors,
        &Spec {
            id: "throughput-chart",
            scale: Scale::Linear,
            value: &|r| r.result.recovered().then_some(r.throughput_mb_s),
            target: &|_| None,
            missed: &|_| false,
            mark_unrecovered: false,
            fmt: &|v| format!("{v:.0} MB/s"),
        },
        opts,
    ));
    let _ = write!(page, "<h2>{}</h2>", esc(l.h_timeline));
    page.push_str(&chart::timeline(records, opts));
    page.push_str("</section>");
}

/// The latest drill's four phases as a bar with visible labels.
fn phases_section(page: &mut String, r: &DrillRecord, opts: &ReportOptions) {
    let l = opts.labels();
    let _ = write!(
        page,
        "<section id=\"phases\"><h2>{} ({}, {}, {} {}, RTO {})</h2>",
        esc(l.h_phases),
        esc(&r.drill_id),
        esc(&r.data_set_label()),
        esc(l.c_store),
        esc(&r.store),
        esc(&r.reached_rto().map_or("—".into(), duration))
    );
    let p = &r.phases;
    let parts = [
        (p.connect_list_secs, "#90caf9"),
        (p.manifest_secs, "#ce93d8"),
        (p.data_secs, "#1565c0"),
        (p.check_secs, "#ffb74d"),
    ];
    let total: f64 = parts.iter().map(|p| p.0).sum::<f64>().max(1e-9);
    let w_all = 940.0;
    page.push_str(
        "<svg id=\"phase-bar\" viewBox=\"0 0 960 104\" xmlns=\"http://www.w3.org/2000/svg\">",
    );
    let mut x = 10.0;
    for (i, (secs, color)) in parts.iter().enumerate() {
        let w = secs / total * w_all;
        let (lx, ly) = (10.0 + (i % 2) as f64 * 470.0, 56.0 + (i / 2) as f64 * 22.0);
        let _ = write!(
            page,
            "<rect x=\"{x:.1}\" y=\"8\" width=\"{w:.1}\" height=\"34\" fill=\"{color}\"/>\
             <rect x=\"{lx}\" y=\"{ly}\" width=\"14\" height=\"14\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\" class=\"axis\">{}: {}</text>",
            lx + 20.0,
            ly + 12.0,
            esc(l.phases[i]),
            esc(&duration(*secs))
        );
        x += w;
    }
    page.push_str("</svg>");
    let failures = r.reasons();
    page.push_str(&reasons(&failures));
    page.push_str("</section>");
}

/// Every drill, newest first.
fn all_drills_section(page: &mut String, records: &[DrillRecord], opts: &ReportOptions) {
    let l = opts.labels();
    let _ = write!(page, "<section id=\"all\"><h2>{}</h2>", esc(l.h_all));
    header(
        page,
        &[
            l.c_when,
            l.c_drill,
            l.c_data_set,
            l.c_store,
            l.c_mode,
            l.c_result,
            l.c_rto,
            l.c_rpo,
            l.c_data,
            l.c_first_byte,
            l.c_throughput,
            l.c_host,
            l.c_operator,
            l.c_reason,
        ],
    );
    for r in records.iter().rev() {
        cells(
            page,
            &[
                esc(&opts.time(&r.started)),
                esc(&r.drill_id),
                esc(&r.data_set_label()),
                esc(&r.store),
                esc(l.mode(&r.mode)),
                badge(r, opts),
                esc(&opts.rto(r)),
                esc(&opts.versus(r.rpo_secs, r.targets.rpo_secs)),
                esc(&format!(
                    "{} {}, {}",
                    r.files,
                    l.files,
                    binary_size(r.bytes)
                )),
                esc(&r.first_byte_secs.map_or("—".into(), duration)),
                esc(&format!("{:.1} MB/s", r.throughput_mb_s)),
                esc(&r.host),
                esc(r.operator.as_deref().unwrap_or("—")),
                reasons(&r.reasons()),
            ],
        );
    }
    page.push_str("</tbody></table></section>");
}
