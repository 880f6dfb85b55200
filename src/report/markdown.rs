//! The Markdown report: a summary to paste into a continuity-plan drill log — the verdict
//! per data set and store, the summary line, why each failed drill failed, then every
//! drill, newest first.

use std::fmt::Write as _;

use super::{ReportOptions, summary};
use crate::drill::DrillRecord;
use crate::text::md_cell;
use crate::units::{binary_size, duration};

/// The Markdown report of `records`.
pub fn markdown(records: &[DrillRecord], opts: &ReportOptions) -> String {
    let l = opts.labels();
    let mut md = format!(
        "# {}\n\n{}\n\n",
        md_cell(&opts.title()),
        md_cell(&opts.generated(records.len()))
    );
    if records.is_empty() {
        md.push_str(l.no_drills);
        md.push('\n');
        super::audits::markdown(&mut md, opts);
        return md;
    }
    let mut newest_first = records.to_vec();
    newest_first.sort_by(|a, b| b.started.cmp(&a.started));
    let rows = summary::rows(records, opts);
    summary_table(&mut md, &rows, records, opts);
    failures(&mut md, &newest_first, opts);
    all_drills(&mut md, &newest_first, opts);
    phases(&mut md, &newest_first[0], opts);
    super::audits::markdown(&mut md, opts);
    md
}

fn row(md: &mut String, cells: &[String]) {
    md.push('|');
    for c in cells {
        let _ = write!(md, " {} |", md_cell(c));
    }
    md.push('\n');
}

fn header(md: &mut String, cells: &[&str]) {
    row(
        md,
        &cells.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>(),
    );
    md.push('|');
    md.push_str(&" --- |".repeat(cells.len()));
    md.push('\n');
}

fn summary_table(
    md: &mut String,
    rows: &[summary::Row<'_>],
    records: &[DrillRecord],
    opts: &ReportOptions,
) {
    let l = opts.labels();
    let _ = write!(
        md,
        "**{}**\n\n## {}\n\n",
        md_cell(&summary::line(records, rows, opts)),
        l.h_summary
    );
    header(md, &l.summary_columns());
    for r in rows {
        let full = r.full;
        row(
            md,
            &[
                r.set.clone(),
                r.store.clone(),
                format!("**{}**", r.verdict_label(opts)),
                full.map_or("—".into(), |f| opts.time(&f.started)),
                full.map_or("—".into(), |f| l.result(f.result).to_owned()),
                full.map_or("—".into(), |f| opts.rto(f)),
                full.map_or("—".into(), |f| {
                    opts.versus(f.rpo_secs, f.targets.rpo_secs)
                }),
                r.due_label(opts),
                super::audits::latest_for(&r.store, opts),
                r.reasons(opts).join("; "),
            ],
        );
    }
}

fn failures(md: &mut String, newest_first: &[DrillRecord], opts: &ReportOptions) {
    let l = opts.labels();
    let failed: Vec<&DrillRecord> = newest_first
        .iter()
        .filter(|r| !r.reasons().is_empty())
        .collect();
    if failed.is_empty() {
        return;
    }
    let _ = write!(md, "\n## {}\n\n", l.h_failures);
    for r in failed {
        let _ = writeln!(
            md,
            "- {} — {} {}, {} {}, {} {}: **{}** — {}",
            md_cell(&opts.time(&r.started)),
            l.c_store,
            md_cell(&r.store),
            l.c_data_set,
            md_cell(&r.data_set_label()),
            l.c_drill,
            md_cell(&r.drill_id),
            l.result(r.result),
            md_cell(&r.reasons().join("; "))
        );
    }
}

fn all_drills(md: &mut String, newest_first: &[DrillRecord], opts: &ReportOptions) {
    let l = opts.labels();
    let _ = write!(md, "\n## {}\n\n", l.h_all);
    header(
        md,
        &[
            l.c_when,
            l.c_drill,
            l.c_data_set,
            l.c_store,
            l.c_mode,
            l.c_operator,
            l.c_result,
            l.c_rto,
            l.c_rpo,
            l.c_data,
            l.c_reason,
        ],
    );
    for r in newest_first {
        row(
            md,
            &[
                opts.time(&r.started),
                r.drill_id.clone(),
                r.data_set_label(),
                r.store.clone(),
                l.mode(&r.mode).to_owned(),
                r.operator.clone().unwrap_or_else(|| "—".into()),
                l.result(r.result).to_owned(),
                opts.rto(r),
                opts.versus(r.rpo_secs, r.targets.rpo_secs),
                format!("{} {}, {}", r.files, l.files, binary_size(r.bytes)),
                r.reasons().join("; "),
            ],
        );
    }
}

fn phases(md: &mut String, last: &DrillRecord, opts: &ReportOptions) {
    let l = opts.labels();
    let p = &last.phases;
    let _ = write!(
        md,
        "\n## {} ({}, {}, {} {})\n\n",
        l.h_phases,
        md_cell(&last.drill_id),
        l.result(last.result),
        l.c_store,
        md_cell(&last.store)
    );
    header(md, &[l.c_phase, l.c_time]);
    let times = [
        p.connect_list_secs,
        p.manifest_secs,
        p.data_secs,
        p.check_secs,
    ];
    for (name, secs) in l.phases.iter().zip(times) {
        row(md, &[(*name).to_owned(), duration(secs)]);
    }
    row(
        md,
        &[
            l.phases[4].to_owned(),
            last.reached_rto().map_or("—".into(), duration),
        ],
    );
}
