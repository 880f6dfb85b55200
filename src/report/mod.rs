//! Drill reports from the same records: JSON, Markdown (for a continuity-plan drill log),
//! a self-contained HTML page with inline SVG charts (printable, and as PDF through a
//! headless Chromium), and a Prometheus textfile. HTML and Markdown speak English or
//! Japanese and show times in a configured zone.

mod audits;
mod chart;
mod html;
mod labels;
mod markdown;
pub mod pdf;
mod summary;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::format;
use crate::metrics::{Sample, Textfile};
use crate::select::Zone;

pub use self::html::html;
pub use self::labels::Lang;
pub use self::markdown::markdown;
use crate::drill::{DrillRecord, DrillResult};

/// How a report is written: language, time zone, the drill interval it judges against,
/// and the moment it is written (what "overdue" is measured from).
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The title (default: the language's).
    pub title: Option<String>,
    /// Labels' language (`--lang`, `[report] lang`).
    pub lang: Lang,
    /// The zone dates are shown in (`[report] time_zone`, else `[repository] timezone`).
    pub zone: Zone,
    /// A data set and store whose last full drill is older than this is overdue
    /// (`[drill] every`).
    pub every: Option<Duration>,
    /// Now.
    pub now: SystemTime,
    /// The audit records kept in the repository, oldest first (`audit --record`).
    pub audits: Vec<crate::audit::record::AuditRecord>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            title: None,
            lang: Lang::En,
            zone: Zone::utc(),
            every: None,
            now: SystemTime::now(),
            audits: Vec::new(),
        }
    }
}

impl ReportOptions {
    pub(crate) fn labels(&self) -> &'static labels::Labels {
        self.lang.labels()
    }

    /// The title.
    pub fn title(&self) -> String {
        self.title
            .clone()
            .unwrap_or_else(|| self.labels().title.to_owned())
    }

    /// A record's RFC 3339 time in the report's zone, with its offset.
    pub(crate) fn time(&self, t: &str) -> String {
        format::parse_time(t).map_or_else(|| t.to_owned(), |t| self.zone.show(t))
    }

    /// `{value} (target {target}[, MISSED])`, `{value}`, or `—` without a value.
    pub(crate) fn versus(&self, value: Option<f64>, target: Option<f64>) -> String {
        let l = self.labels();
        match (value, target) {
            (Some(v), Some(t)) => {
                let mut target = duration(t);
                if v > t {
                    target = format!("{target}, {}", l.missed);
                }
                labels::fill(l.versus, &[("value", &duration(v)), ("target", &target)])
            }
            (Some(v), None) => duration(v),
            (None, _) => "—".into(),
        }
    }

    /// A drill's RTO against its target: `—` when it never recovered the data; a sample's
    /// estimate marked as one.
    pub(crate) fn rto(&self, r: &DrillRecord) -> String {
        let shown = self.versus(r.reached_rto(), r.targets.rto_secs);
        match (r.reached_rto(), r.rto_estimate_secs) {
            (Some(_), Some(_)) => format!("{shown} [{}]", self.labels().estimate),
            _ => shown,
        }
    }

    /// `Generated ... Times are in Asia/Tokyo.`
    pub(crate) fn generated(&self, drills: usize) -> String {
        labels::fill(
            self.labels().generated,
            &[
                ("when", &self.zone.show(self.now)),
                ("version", env!("CARGO_PKG_VERSION")),
                ("n", &drills.to_string()),
                ("zone", &self.zone.name()),
            ],
        )
    }
}

/// Render by the file's extension: `.json`, `.md`/`.markdown`, `.html`/`.htm`.
pub fn render_for(
    path: &Path,
    records: &[DrillRecord],
    opts: &ReportOptions,
) -> Result<String, String> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => serde_json::to_string_pretty(records).map_err(|e| e.to_string()),
        Some("md" | "markdown") => Ok(markdown(records, opts)),
        Some("html" | "htm") => Ok(html(records, opts)),
        _ => Err(format!(
            "{}: the report format comes from the extension: .json, .md or .html",
            path.display()
        )),
    }
}

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
        "Measured recovery time of the last drill (start to verified data); absent when it did not recover the data.",
        |r| r.result.recovered().then_some(r.rto_secs),
    ),
    (
        "snapdrill_drill_rto_estimate_seconds",
        "Extrapolated full-snapshot recovery time of the last drill, when it was a sample.",
        |r| r.rto_estimate_secs.filter(|_| r.result.recovered()),
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
    let mut samples = Vec::new();
    for ((s, d), r) in latest {
        for candidate in DrillResult::ALL {
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
