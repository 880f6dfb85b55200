//! The HTML drill report: one self-contained page (inline CSS and SVG, no scripts, no
//! external assets) that opens anywhere, including an air-gapped auditor's laptop.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{duration, latest_per_store, size, versus};
use crate::drill::{DrillRecord, DrillResult};
use crate::format;

/// Colors of the stores' series, in order of first appearance.
pub(super) const STORE_COLORS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
];
const TARGET_COLOR: &str = "#d62728";

fn esc(s: &str) -> String {
    crate::text::html(s)
}

fn result_color(r: DrillResult) -> &'static str {
    match r {
        DrillResult::Pass => "#2e7d32",
        DrillResult::TargetMissed => "#f9a825",
        DrillResult::IntegrityFailure | DrillResult::KeyFailure => "#c62828",
        DrillResult::Error => "#6d6d6d",
    }
}

/// `2026-11-28 05:38:02` from an RFC 3339 time.
fn short_time(t: &str) -> String {
    t.get(..19).unwrap_or(t).replace('T', " ")
}

fn unix(t: &str) -> f64 {
    format::parse_time(t)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

struct Frame {
    x0: f64,
    x1: f64,
    ymax: f64,
}

const W: f64 = 960.0;
const H: f64 = 280.0;
/// Chart margins: left, right, top, bottom.
const L: f64 = 80.0;
const R: f64 = 24.0;
const T: f64 = 20.0;
const B: f64 = 44.0;

impl Frame {
    fn x(&self, t: f64) -> f64 {
        L + (t - self.x0) / (self.x1 - self.x0) * (W - L - R)
    }
    fn y(&self, v: f64) -> f64 {
        H - B - v / self.ymax * (H - T - B)
    }
}

/// A drill's point on a chart: the drill, its start (Unix seconds) and its value.
type Point<'a> = (&'a DrillRecord, f64, f64);

impl Frame {
    /// The frame around `points` (and the target): one drill gets a one-hour window around
    /// it, several their span plus 5 % each side; values from 0 to 15 % above the largest.
    fn fit(points: &[Point<'_>], target: Option<f64>) -> Frame {
        let (tmin, tmax) = points
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
        let pad = if tmax > tmin {
            ((tmax - tmin) * 0.05).max(0.5)
        } else {
            1800.0
        };
        let vmax = points
            .iter()
            .map(|p| p.2)
            .fold(target.unwrap_or(0.0), f64::max);
        Frame {
            x0: tmin - pad,
            x1: tmax + pad,
            ymax: if vmax > 0.0 { vmax * 1.15 } else { 1.0 },
        }
    }

    /// Grid lines with their values, and the first and last time.
    fn axes(&self, svg: &mut String, fmt: &impl Fn(f64) -> String) {
        for i in 0..=4 {
            let v = self.ymax * f64::from(i) / 4.0;
            let y = self.y(v);
            let _ = write!(
                svg,
                "<line x1=\"{L}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e0e0e0\"/>\
                 <text x=\"{}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{}</text>",
                W - R,
                L - 8.0,
                y + 4.0,
                esc(&fmt(v))
            );
        }
        let (x0, x1) = (self.x0, self.x1);
        for (t, anchor) in [
            (x0 + (x1 - x0) * 0.05, "start"),
            (x1 - (x1 - x0) * 0.05, "end"),
        ] {
            let label = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t.max(0.0)),
            );
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" class=\"axis\" text-anchor=\"{anchor}\">{}</text>",
                self.x(t),
                H - 14.0,
                esc(&label.to_string().replace('T', " "))
            );
        }
    }

    /// The dashed target line.
    fn target(&self, svg: &mut String, t: f64, fmt: &impl Fn(f64) -> String) {
        let y = self.y(t);
        let _ = write!(
            svg,
            "<line class=\"target\" x1=\"{L}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{TARGET_COLOR}\" stroke-width=\"2\" stroke-dasharray=\"8 6\"/>\
             <text x=\"{}\" y=\"{:.1}\" class=\"axis\" fill=\"{TARGET_COLOR}\" text-anchor=\"end\">target {}</text>",
            W - R,
            W - R - 4.0,
            y - 6.0,
            esc(&fmt(t))
        );
    }

    /// One series' drills (a store and a data set): a faint line through them and a point per drill, ringed in the
    /// result's color when it did not pass.
    fn series(
        &self,
        svg: &mut String,
        key: &str,
        color: &str,
        points: &[Point<'_>],
        fmt: &impl Fn(f64) -> String,
    ) {
        let mut series: Vec<&Point<'_>> =
            points.iter().filter(|p| series_key(p.0) == key).collect();
        series.sort_by(|a, b| a.1.total_cmp(&b.1));
        if series.len() > 1 {
            let path: Vec<String> = series
                .iter()
                .map(|p| format!("{:.1},{:.1}", self.x(p.1), self.y(p.2)))
                .collect();
            let _ = write!(
                svg,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-opacity=\"0.45\" stroke-width=\"2\"/>",
                path.join(" ")
            );
        }
        for p in series {
            let ring = if p.0.result == DrillResult::Pass {
                color
            } else {
                result_color(p.0.result)
            };
            let _ = write!(
                svg,
                "<circle class=\"point\" data-store=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"7\" fill=\"{color}\" stroke=\"{ring}\" stroke-width=\"3\">\
                 <title>{} {} — {} ({})</title></circle>",
                esc(&p.0.store),
                self.x(p.1),
                self.y(p.2),
                esc(key),
                esc(&p.0.started),
                esc(&fmt(p.2)),
                p.0.result.label()
            );
        }
    }
}

/// The series a drill belongs to in the charts: its store and its data set (two data sets
/// of one store have different sizes, so one line through both would mean nothing).
fn series_key(r: &DrillRecord) -> String {
    format!("{} · {}", r.store, r.data_set_label())
}

/// A line chart of one value per drill, one series per store and data set, with an
/// optional target line.
fn line_chart(
    id: &str,
    records: &[DrillRecord],
    colors: &BTreeMap<String, &str>,
    value: impl Fn(&DrillRecord) -> Option<f64>,
    target: Option<f64>,
    fmt: impl Fn(f64) -> String,
) -> String {
    let points: Vec<Point<'_>> = records
        .iter()
        .filter_map(|r| value(r).map(|v| (r, unix(&r.started), v)))
        .collect();
    if points.is_empty() {
        return "<p class=\"none\">No data yet.</p>".into();
    }
    let f = Frame::fit(&points, target);
    let mut svg = format!(
        "<svg id=\"{id}\" viewBox=\"0 0 {W} {H}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#ffffff\"/>"
    );
    f.axes(&mut svg, &fmt);
    if let Some(t) = target {
        f.target(&mut svg, t, &fmt);
    }
    for (key, color) in colors {
        f.series(&mut svg, key, color, &points, &fmt);
    }
    svg.push_str("</svg>");
    svg
}

fn timeline(records: &[DrillRecord]) -> String {
    let n = records.len().max(1) as f64;
    let w = ((W - 20.0) / n).min(40.0);
    let mut svg = format!(
        "<svg id=\"timeline\" viewBox=\"0 0 {W} 60\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (i, r) in records.iter().enumerate() {
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"10\" width=\"{:.1}\" height=\"36\" rx=\"3\" fill=\"{}\"><title>{} {} {}</title></rect>",
            10.0 + i as f64 * w,
            w - 3.0,
            result_color(r.result),
            esc(&r.started),
            esc(&r.store),
            r.result.label()
        );
    }
    svg.push_str("</svg>");
    svg
}

fn phase_bar(r: &DrillRecord) -> String {
    let p = &r.phases;
    let parts = [
        ("reach store and list", p.connect_list_secs, "#90caf9"),
        ("manifest", p.manifest_secs, "#ce93d8"),
        ("download, decrypt, write, verify", p.data_secs, "#1565c0"),
        ("validation command", p.check_secs, "#ffb74d"),
    ];
    let total: f64 = parts.iter().map(|p| p.1).sum::<f64>().max(1e-9);
    let mut svg =
        format!("<svg id=\"phases\" viewBox=\"0 0 {W} 104\" xmlns=\"http://www.w3.org/2000/svg\">");
    let mut x = 10.0;
    for (i, (name, secs, color)) in parts.iter().enumerate() {
        let w = secs / total * (W - 20.0);
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"8\" width=\"{w:.1}\" height=\"34\" fill=\"{color}\"><title>{name}: {}</title></rect>",
            duration(*secs)
        );
        let (lx, ly) = (10.0 + (i % 2) as f64 * 470.0, 56.0 + (i / 2) as f64 * 22.0);
        let _ = write!(
            svg,
            "<rect x=\"{lx}\" y=\"{ly}\" width=\"14\" height=\"14\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\" class=\"axis\">{name}: {}</text>",
            lx + 20.0,
            ly + 12.0,
            esc(&duration(*secs))
        );
        x += w;
    }
    svg.push_str("</svg>");
    svg
}

/// The whole drill history as one self-contained HTML page.
pub fn html(records: &[DrillRecord], title: &str) -> String {
    let mut records = records.to_vec();
    records.sort_by(|a, b| a.started.cmp(&b.started));
    let mut colors: BTreeMap<String, &str> = BTreeMap::new();
    for r in &records {
        let n = colors.len();
        colors
            .entry(series_key(r))
            .or_insert(STORE_COLORS[n % STORE_COLORS.len()]);
    }
    let rto_target = records.iter().rev().find_map(|r| r.targets.rto_secs);
    let mut page = head(title, records.len());
    latest_table(&mut page, &records);
    page.push_str("<p class=\"legend\">");
    for (key, color) in &colors {
        let _ = write!(
            page,
            "<span><svg width=\"12\" height=\"12\" style=\"border:0;width:12px\"><circle cx=\"6\" cy=\"6\" r=\"5\" fill=\"{color}\"/></svg> {}</span>",
            esc(key)
        );
    }
    page.push_str("</p><h2>Recovery time (RTO) per drill</h2>");
    page.push_str(&line_chart(
        "rto-chart",
        &records,
        &colors,
        |r| Some(r.judged_rto()),
        rto_target,
        duration,
    ));
    page.push_str("<h2>Throughput per drill</h2>");
    page.push_str(&line_chart(
        "throughput-chart",
        &records,
        &colors,
        |r| (r.result != DrillResult::Error).then_some(r.throughput_mb_s),
        None,
        |v| format!("{v:.0} MB/s"),
    ));
    page.push_str("<h2>Pass / fail timeline</h2>");
    page.push_str(&timeline(&records));
    if let Some(last) = records.last() {
        let _ = write!(
            page,
            "<h2>Latest drill: phases ({}, {}, store {}, RTO {})</h2>",
            esc(&last.drill_id),
            esc(&last.data_set_label()),
            esc(&last.store),
            duration(last.rto_secs)
        );
        page.push_str(&phase_bar(last));
        for f in &last.failures {
            let _ = write!(page, "<p>failure: {}</p>", esc(f));
        }
    }
    all_drills_table(&mut page, &records);
    page.push_str("</body></html>\n");
    page
}

/// The page's head, style and opening lines.
fn head(title: &str, drills: usize) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:24px;color:#212121;max-width:1040px}}\
         h1{{font-size:22px}}h2{{font-size:17px;margin-top:28px}}svg{{width:100%;height:auto;border:1px solid #e0e0e0}}\
         .axis{{font-size:12px;fill:#555}}table{{border-collapse:collapse;font-size:13px;width:100%}}\
         td,th{{border-bottom:1px solid #e0e0e0;padding:4px 6px;text-align:left}}.badge{{color:#fff;padding:1px 6px;border-radius:3px}}\
         .legend span{{margin-right:14px}}.none{{color:#777}}</style></head><body><h1>{t}</h1>\
         <p>Generated {g} by snapdrill {v}. {n} drills recorded.</p>",
        t = esc(title),
        g = esc(&format::format_time(std::time::SystemTime::now())),
        v = env!("CARGO_PKG_VERSION"),
        n = drills
    )
}

/// The latest drill of each store, against its targets.
fn latest_table(page: &mut String, records: &[DrillRecord]) {
    page.push_str("<h2>Latest drill per data set and store</h2><table><tr><th>data set</th><th>store</th><th>when (UTC)</th><th>result</th><th>RTO</th><th>RPO</th><th>data</th><th>snapshot</th></tr>");
    for ((store, set), r) in latest_per_store(records) {
        let rto = match r.rto_estimate_secs {
            Some(e) => format!(
                "{} (sample; full estimate {})",
                duration(r.rto_secs),
                versus(Some(e), r.targets.rto_secs)
            ),
            None => versus(Some(r.rto_secs), r.targets.rto_secs),
        };
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><span class=\"badge\" style=\"background:{}\">{}</span></td><td>{}</td><td>{}</td><td>{} files, {}</td><td>{}</td></tr>",
            esc(&set),
            esc(&store),
            esc(&short_time(&r.started)),
            result_color(r.result),
            r.result.label(),
            esc(&rto),
            esc(&versus(r.rpo_secs, r.targets.rpo_secs)),
            r.files,
            size(r.bytes),
            esc(r.snapshot_id.as_deref().unwrap_or("—"))
        );
    }
    page.push_str("</table>");
}

/// Every drill, newest first.
fn all_drills_table(page: &mut String, records: &[DrillRecord]) {
    page.push_str("<h2>All drills</h2><table><tr><th>when (UTC)</th><th>data set</th><th>store</th><th>mode</th><th>result</th><th>RTO</th><th>first byte</th><th>throughput</th><th>host</th><th>operator</th></tr>");
    for r in records.iter().rev() {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} MB/s</td><td>{}</td><td>{}</td></tr>",
            esc(&short_time(&r.started)),
            esc(&r.data_set_label()),
            esc(&r.store),
            esc(&r.mode),
            r.result.label(),
            duration(r.rto_secs),
            r.first_byte_secs.map_or("—".into(), duration),
            r.throughput_mb_s,
            esc(&r.host),
            esc(r.operator.as_deref().unwrap_or("—"))
        );
    }
    page.push_str("</table>");
}
