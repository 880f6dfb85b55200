//! Drill reports from the same records: JSON, Markdown (for a continuity-plan drill log),
//! a self-contained HTML page with inline SVG charts, and a Prometheus textfile.

mod html;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::format;
use crate::metrics::{Sample, Textfile};
use crate::text::md_cell;

pub use self::html::html;
use crate::drill::{DrillRecord, DrillResult};

/// Render by the file's extension: `.json`, `.md`/`.markdown`, `.html`/`.htm`.
pub fn render_for(path: &Path, records: &[DrillRecord], title: &str) -> Result<String, String> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => serde_json::to_string_pretty(records).map_err(|e| e.to_string()),
        Some("md" | "markdown") => Ok(markdown(records, title)),
        Some("html" | "htm") => Ok(html(records, title)),
        _ => Err(format!(
            "{}: the report format comes from the extension: .json, .md or .html",
            path.display()
        )),
    }
}

use crate::units::decimal_size as size;
pub use crate::units::{binary_size, count, duration, versus};

/// The last record of each store and data set, by start time: keyed by (store, `host/job`).
pub fn latest_per_store(records: &[DrillRecord]) -> BTreeMap<(String, String), &DrillRecord> {
    let mut latest: BTreeMap<(String, String), &DrillRecord> = BTreeMap::new();
    for r in records {
        let key = (r.store.clone(), r.data_set_label());
        let slot = latest.entry(key).or_insert(r);
        if r.started > slot.started {
            *slot = r;
        }
    }
    latest
}

/// A Markdown summary fit to paste into a continuity-plan drill log.
pub fn markdown(records: &[DrillRecord], title: &str) -> String {
    let mut md = format!("# {title}\n\n");
    if records.is_empty() {
        md.push_str("No drill has been recorded yet.\n");
        return md;
    }
    md.push_str("| date (UTC) | data set | store | snapshot | mode | result | RTO | RPO | files | data | throughput |\n");
    md.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | ---: | ---: | ---: |\n");
    for r in records {
        let rto = match r.rto_estimate_secs {
            Some(e) => format!(
                "{} measured, {} estimated for the full snapshot",
                duration(r.rto_secs),
                versus(Some(e), r.targets.rto_secs)
            ),
            None => versus(Some(r.rto_secs), r.targets.rto_secs),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | **{}** | {} | {} | {} | {} | {:.1} MB/s |",
            md_cell(&r.started.get(..16).unwrap_or(&r.started).replace('T', " ")),
            md_cell(&r.data_set_label()),
            md_cell(&r.store),
            md_cell(r.snapshot_id.as_deref().unwrap_or("—")),
            md_cell(&r.mode),
            r.result.label(),
            rto,
            versus(r.rpo_secs, r.targets.rpo_secs),
            r.files,
            size(r.bytes),
            r.throughput_mb_s
        );
    }
    let last = records
        .iter()
        .max_by(|a, b| a.started.cmp(&b.started))
        .expect("not empty");
    let p = &last.phases;
    let _ = write!(
        md,
        "\n## Latest drill: {} ({}, {}, store {})\n\n\
         | phase | time |\n| --- | ---: |\n\
         | reach the store, list and verify snapshots | {} |\n\
         | fetch and verify the manifest | {} |\n\
         | download, decrypt, decompress, write, verify | {} |\n\
         | validation command | {} |\n\
         | **recovery time (RTO)** | **{}** |\n\n\
         Time to first restored byte: {}. Inside the data phase (overlapping): download {}, \
         decrypt and decompress {}, write {}, SHA-256 verification {}.\n",
        md_cell(&last.drill_id),
        last.result.label(),
        md_cell(&last.data_set_label()),
        md_cell(&last.store),
        duration(p.connect_list_secs),
        duration(p.manifest_secs),
        duration(p.data_secs),
        duration(p.check_secs),
        duration(last.rto_secs),
        last.first_byte_secs.map_or("—".into(), duration),
        duration(last.stages.download_secs),
        duration(last.stages.decrypt_secs),
        duration(last.stages.write_secs),
        duration(last.stages.verify_secs),
    );
    for f in &last.failures {
        let _ = writeln!(md, "- failure: {}", md_cell(f));
    }
    md
}

/// A value of a drill's record, when it has one.
type Value = fn(&DrillRecord) -> Option<f64>;

/// The per-store gauges, in the order they are written (`snapdrill_drill_result`, one
/// series per result, goes after the first two).
const GAUGES: [(&str, &str, Value); 10] = [
    (
        "snapdrill_drill_last_run_timestamp_seconds",
        "Unix time the last drill of the store finished.",
        |r| {
            format::parse_time(&r.finished)
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64())
        },
    ),
    (
        "snapdrill_drill_success",
        "1 if the last drill verified every byte and met its targets, else 0.",
        |r| Some(f64::from(u8::from(r.result == DrillResult::Pass))),
    ),
    (
        "snapdrill_drill_rto_seconds",
        "Measured recovery time of the last drill (start to verified data).",
        |r| Some(r.rto_secs),
    ),
    (
        "snapdrill_drill_rto_estimate_seconds",
        "Extrapolated full-snapshot recovery time of the last drill, when it was a sample.",
        |r| r.rto_estimate_secs,
    ),
    (
        "snapdrill_drill_rpo_seconds",
        "Age of the newest snapshot in the store when the last drill started.",
        |r| r.rpo_secs,
    ),
    (
        "snapdrill_drill_rto_target_seconds",
        "Recovery-time objective the last drill was judged against.",
        |r| r.targets.rto_secs,
    ),
    (
        "snapdrill_drill_rpo_target_seconds",
        "Recovery-point objective the last drill was judged against.",
        |r| r.targets.rpo_secs,
    ),
    (
        "snapdrill_drill_restored_bytes",
        "Content bytes the last drill restored and verified.",
        |r| Some(r.bytes as f64),
    ),
    (
        "snapdrill_drill_restored_files",
        "Files the last drill restored and verified.",
        |r| Some(r.files as f64),
    ),
    (
        "snapdrill_drill_throughput_bytes_per_second",
        "Content bytes per second over the data phase of the last drill.",
        |r| Some(r.throughput_mb_s * 1e6),
    ),
];

/// A Prometheus textfile (for node_exporter's textfile collector) with the latest drill of
/// each store.
pub fn prometheus(records: &[DrillRecord]) -> String {
    let latest = latest_per_store(records);
    let per = |f: Value| -> Vec<Sample> {
        latest
            .iter()
            .filter_map(|((s, d), r)| {
                f(r).map(|v| (vec![("store", s.clone()), ("data_set", d.clone())], v))
            })
            .collect()
    };
    let mut t = Textfile::new();
    for (i, (name, help, value)) in GAUGES.into_iter().enumerate() {
        if i == 2 {
            t.gauge(
                "snapdrill_drill_result",
                "Result of the last drill: 1 for the result it had, 0 for the others.",
                by_result(&latest),
            );
        }
        t.gauge(name, help, per(value));
    }
    t.finish()
}

/// One series per store and result: 1 for the result the store's last drill had.
fn by_result(latest: &BTreeMap<(String, String), &DrillRecord>) -> Vec<Sample<'static>> {
    let results = [
        DrillResult::Pass,
        DrillResult::TargetMissed,
        DrillResult::IntegrityFailure,
        DrillResult::KeyFailure,
        DrillResult::Error,
    ];
    let mut samples = Vec::new();
    for ((s, d), r) in latest {
        for candidate in results {
            let name = serde_json::to_value(candidate)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            samples.push((
                vec![
                    ("store", s.clone()),
                    ("data_set", d.clone()),
                    ("result", name),
                ],
                f64::from(u8::from(r.result == candidate)),
            ));
        }
    }
    samples
}
