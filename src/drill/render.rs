//! Drills for a terminal or a cron mail: the warnings of one drill, its details, its
//! result line, and the history as a table. (Reports — HTML, Markdown, metrics — are in
//! `report/`.)

use std::fmt::Write as _;

use super::record::{BadRecord, DrillRecord};
use crate::text::escape;
use crate::units::{binary_size, duration, versus};

/// What went wrong or needs a look, one line each (for stderr).
pub fn warnings(r: &DrillRecord) -> Vec<String> {
    let store = escape(&r.store);
    let mut out: Vec<String> = r
        .failures
        .iter()
        .map(|f| format!("drill {store}: {}", escape(f)))
        .collect();
    out.extend(
        r.cleanup_error
            .iter()
            .map(|e| format!("warning: drill {store}: {}", escape(e))),
    );
    out.extend(r.repairs.iter().map(|rep| {
        format!(
            "warning: store '{}' could not serve {} ({:?}); another replica did — to heal it: {}",
            rep.store,
            escape(&rep.reason),
            rep.kind,
            rep.kind.heal_hint()
        )
    }));
    out
}

/// The phases, data and estimate of a drill (for a terminal; cron mails get only the
/// result line, the record holds the rest).
pub fn details(r: &DrillRecord) -> String {
    let p = &r.phases;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "drill {} — store {}, snapshot {}",
        escape(&r.drill_id),
        escape(&r.store),
        r.snapshot_id.as_deref().map_or("—".into(), escape)
    );
    let _ = writeln!(
        out,
        "  phases     reach+list {}, manifest {}, data {}, check {}",
        duration(p.connect_list_secs),
        duration(p.manifest_secs),
        duration(p.data_secs),
        duration(p.check_secs)
    );
    let _ = writeln!(
        out,
        "  data       {} files, {} in {} objects, {:.1} MB/s; first byte after {}",
        r.files,
        binary_size(r.bytes),
        r.objects_fetched,
        r.throughput_mb_s,
        r.first_byte_secs.map_or("—".into(), duration)
    );
    if let Some(e) = r.rto_estimate_secs {
        let asked = r.sample.as_ref().map_or("", |s| s.requested.as_str());
        let _ = writeln!(
            out,
            "  estimate   full snapshot RTO ≈ {} (an ESTIMATE, extrapolated from the {} sample's {} measured)",
            duration(e),
            escape(asked),
            duration(r.rto_secs)
        );
    }
    out
}

/// `drill PASS: db1/exports snapshot 2026…-9f2c1a7b store tokyo RTO 1.2 s (target 30 min)
/// RPO 3 h 10 min (target 26 h)`.
pub fn result_line(r: &DrillRecord) -> String {
    format!(
        "drill {}: {} snapshot {} store {} RTO {}{} RPO {}",
        r.result.label(),
        escape(&r.data_set_label()),
        r.snapshot_id.as_deref().unwrap_or("-"),
        escape(&r.store),
        versus(r.reached_rto(), r.targets.rto_secs),
        if r.rto_estimate_secs.is_some() && r.result.recovered() {
            " [estimate]"
        } else {
            ""
        },
        versus(r.rpo_secs, r.targets.rpo_secs)
    )
}

/// The history as a table, and the records that could not be trusted (for stderr).
pub fn history(records: &[DrillRecord]) -> String {
    let mut out = format!(
        "{:<26} {:<24} {:<26} {:<12} {:<11} {:<17} {:>10} {:>10} {:>10}\n",
        "DRILL", "DATA SET", "SNAPSHOT", "STORE", "MODE", "RESULT", "RTO", "RPO", "MB/s"
    );
    for r in records {
        let _ = writeln!(
            out,
            "{:<26} {:<24} {:<26} {:<12} {:<11} {:<17} {:>10} {:>10} {:>10.1}",
            escape(&r.drill_id),
            escape(&r.data_set_label()),
            r.snapshot_id.as_deref().map_or("-".into(), escape),
            escape(&r.store),
            escape(&r.mode),
            r.result.label(),
            r.reached_rto().map_or("—".into(), duration),
            r.rpo_secs.map_or("—".into(), duration),
            r.throughput_mb_s
        );
    }
    let _ = writeln!(out, "{} drills", records.len());
    out
}

/// One line per record that could not be read or authenticated.
pub fn untrusted(bad: &[BadRecord]) -> Vec<String> {
    bad.iter()
        .map(|b| {
            format!(
                "warning: drill record {} not trusted: {}",
                escape(&b.object),
                escape(&b.reason)
            )
        })
        .collect()
}
