//! The audit side of the drill report: the latest audit's verdict and coverage per store
//! (in the summary), and the audit history with each store's 30-day read coverage over
//! time — from the audit records kept in the repository (`audit --record`).

use std::fmt::Write as _;

use super::ReportOptions;
use super::chart::esc;
use crate::audit::record::AuditRecord;
use crate::audit::{StoreAudit, StoreStatus};

/// `12 %` of a ratio.
fn percent(ratio: f64) -> String {
    format!("{:.0} %", ratio * 100.0)
}

/// One store's line in one audit: `clean, 30-day coverage 100 %` / `2 problems, ...` /
/// `unreachable`.
fn store_verdict(s: &StoreAudit, opts: &ReportOptions) -> String {
    let l = opts.labels();
    if s.status == StoreStatus::Unreachable {
        return l.a_unreachable.into();
    }
    let verdict = if s.problems == 0 {
        l.a_clean.to_owned()
    } else {
        super::labels::fill(l.a_problems, &[("n", &s.problems.to_string())])
    };
    match &s.coverage {
        Some(c) => format!("{verdict}, {} {}", l.a_coverage, percent(c.object_ratio)),
        None => verdict,
    }
}

/// The newest audit's verdict for `store` (every store's problems for `all`), with its date.
pub(crate) fn latest_for(store: &str, opts: &ReportOptions) -> String {
    let Some(last) = opts.audits.last() else {
        return "—".into();
    };
    let r = &last.report;
    let verdict = if store == "all" {
        let l = opts.labels();
        if r.problems.is_empty() {
            l.a_clean.to_owned()
        } else {
            super::labels::fill(l.a_problems, &[("n", &r.problems.len().to_string())])
        }
    } else {
        match r.stores.iter().find(|s| s.store == store) {
            Some(s) => store_verdict(s, opts),
            None => return "—".into(),
        }
    };
    format!("{verdict} ({})", opts.time(&r.started))
}

/// The stores the audits name, in order of first appearance.
fn stores(audits: &[AuditRecord]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in audits {
        for s in &a.report.stores {
            if !out.contains(&s.store) {
                out.push(s.store.clone());
            }
        }
    }
    out
}

/// The cells of one audit: when, host, operator, problems, then one per store.
fn row(a: &AuditRecord, stores: &[String], opts: &ReportOptions) -> Vec<String> {
    let r = &a.report;
    let p = r.provenance.as_ref();
    let mut cells = vec![
        opts.time(&r.started),
        a.audit_id.clone(),
        p.map_or("—".into(), |p| p.host.clone()),
        p.and_then(|p| p.operator.clone())
            .unwrap_or_else(|| "—".into()),
        r.problems.len().to_string(),
    ];
    for name in stores {
        cells.push(
            r.stores
                .iter()
                .find(|s| &s.store == name)
                .map_or("—".into(), |s| store_verdict(s, opts)),
        );
    }
    cells
}

fn header(opts: &ReportOptions, stores: &[String]) -> Vec<String> {
    let l = opts.labels();
    let mut names: Vec<String> = [
        l.c_when,
        l.a_audit,
        l.c_host,
        l.c_operator,
        l.a_problems_col,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    names.extend(stores.iter().cloned());
    names
}

/// The audit history section of the HTML page, newest first.
pub(crate) fn html(page: &mut String, opts: &ReportOptions) {
    let l = opts.labels();
    let _ = write!(page, "<section id=\"audits\"><h2>{}</h2>", esc(l.h_audits));
    if opts.audits.is_empty() {
        let _ = write!(page, "<p class=\"none\">{}</p></section>", esc(l.no_audits));
        return;
    }
    let stores = stores(&opts.audits);
    page.push_str("<table><thead><tr>");
    for h in header(opts, &stores) {
        let _ = write!(page, "<th>{}</th>", esc(&h));
    }
    page.push_str("</tr></thead><tbody>");
    for a in opts.audits.iter().rev() {
        page.push_str("<tr>");
        for c in row(a, &stores, opts) {
            let _ = write!(page, "<td>{}</td>", esc(&c));
        }
        page.push_str("</tr>");
    }
    page.push_str("</tbody></table></section>");
}

/// The audit history section of the Markdown report, newest first.
pub(crate) fn markdown(md: &mut String, opts: &ReportOptions) {
    use crate::text::md_cell;
    let l = opts.labels();
    let _ = write!(md, "\n## {}\n\n", l.h_audits);
    if opts.audits.is_empty() {
        let _ = writeln!(md, "{}", l.no_audits);
        return;
    }
    let stores = stores(&opts.audits);
    let head = header(opts, &stores);
    let _ = writeln!(
        md,
        "| {} |\n|{}",
        head.iter()
            .map(|h| md_cell(h))
            .collect::<Vec<_>>()
            .join(" | "),
        " --- |".repeat(head.len())
    );
    for a in opts.audits.iter().rev() {
        let cells: Vec<String> = row(a, &stores, opts).iter().map(|c| md_cell(c)).collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
}
