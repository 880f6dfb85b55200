//! The report's inline SVG charts: values per drill over time on a log (or linear) axis,
//! one series per store and data set, one line per mode (full, verify-only, sample) drawn
//! with its own marker, each drill's own target drawn at that drill, visible value labels;
//! and the results as a store × date grid with a legend. No scripts, no tooltips needed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::ReportOptions;
use crate::drill::{DrillRecord, DrillResult};
use crate::format;

/// Colors of the series, in order of first appearance.
pub(crate) const SERIES_COLORS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
];
const TARGET_COLOR: &str = "#d62728";

pub(crate) fn esc(s: &str) -> String {
    crate::text::html(s)
}

/// A result's color (the same in every chart, table and legend).
pub(crate) fn result_color(r: DrillResult) -> &'static str {
    match r {
        DrillResult::Pass => "#2e7d32",
        DrillResult::TargetMissed => "#f9a825",
        DrillResult::CheckFailed => "#ef6c00",
        DrillResult::IntegrityFailure | DrillResult::KeyFailure => "#c62828",
        DrillResult::Error => "#6d6d6d",
    }
}

/// The series a drill belongs to: its store and its data set (two data sets of one store
/// have different sizes, so one line through both would mean nothing).
pub(crate) fn series_key(r: &DrillRecord) -> String {
    format!("{} · {}", r.store, r.data_set_label())
}

/// Series colors by key, in order of first appearance in `records` (sorted by time).
pub(crate) fn colors(records: &[DrillRecord]) -> BTreeMap<String, &'static str> {
    let mut colors = BTreeMap::new();
    for r in records {
        let n = colors.len();
        colors
            .entry(series_key(r))
            .or_insert(SERIES_COLORS[n % SERIES_COLORS.len()]);
    }
    colors
}

fn unix(t: &str) -> f64 {
    format::parse_time(t)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

fn system_time(secs: f64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(secs.max(0.0))
}

const W: f64 = 960.0;
const H: f64 = 330.0;
/// Chart margins: left, right, top, bottom (the bottom holds dates and the mode legend).
const L: f64 = 80.0;
const R: f64 = 24.0;
const T: f64 = 28.0;
const B: f64 = 64.0;
/// Points up to this many get their value written beside them.
const LABELLED_POINTS: usize = 40;

/// The vertical scale of a chart.
#[derive(Clone, Copy)]
pub(crate) enum Scale {
    /// Logarithmic, between "nice" durations (1 ms … 1 y): 30 ms and a 30-minute target
    /// both stay visible.
    LogDuration,
    /// Linear from 0.
    Linear,
}

/// Log-axis ticks: seconds and their label.
const LOG_TICKS: [(f64, &str); 14] = [
    (0.001, "1 ms"),
    (0.01, "10 ms"),
    (0.1, "100 ms"),
    (1.0, "1 s"),
    (10.0, "10 s"),
    (60.0, "1 min"),
    (600.0, "10 min"),
    (3600.0, "1 h"),
    (6.0 * 3600.0, "6 h"),
    (86400.0, "1 d"),
    (7.0 * 86400.0, "7 d"),
    (30.0 * 86400.0, "30 d"),
    (365.0 * 86400.0, "1 y"),
    (3650.0 * 86400.0, "10 y"),
];

/// What a chart plots.
pub(crate) struct Spec<'a> {
    pub(crate) id: &'a str,
    pub(crate) scale: Scale,
    /// The drill's value, if it has one.
    pub(crate) value: &'a dyn Fn(&DrillRecord) -> Option<f64>,
    /// The drill's own target, if it had one.
    pub(crate) target: &'a dyn Fn(&DrillRecord) -> Option<f64>,
    /// Whether the value missed (its marker is ringed in the result's color).
    pub(crate) missed: &'a dyn Fn(&DrillRecord) -> bool,
    /// Mark drills without a value that did not recover (an ✕ along the top).
    pub(crate) mark_unrecovered: bool,
    pub(crate) fmt: &'a dyn Fn(f64) -> String,
}

struct Frame {
    x0: f64,
    x1: f64,
    scale: Scale,
    /// The value range: seconds for log (lo, hi), or (0, max) for linear.
    lo: f64,
    hi: f64,
}

impl Frame {
    fn fit(times: &[f64], values: &[f64], scale: Scale) -> Frame {
        let (tmin, tmax) = times
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &t| (a.min(t), b.max(t)));
        let pad = if tmax > tmin {
            ((tmax - tmin) * 0.06).max(0.5)
        } else {
            1800.0
        };
        let vmin = values.iter().copied().fold(f64::MAX, f64::min);
        let vmax = values.iter().copied().fold(0.0, f64::max);
        let (lo, hi) = match scale {
            Scale::LogDuration => {
                let lo = LOG_TICKS
                    .iter()
                    .rev()
                    .find(|t| t.0 <= vmin)
                    .map_or(LOG_TICKS[0].0, |t| t.0);
                let hi = LOG_TICKS
                    .iter()
                    .find(|t| t.0 >= vmax && t.0 > lo)
                    .map_or(LOG_TICKS[LOG_TICKS.len() - 1].0, |t| t.0);
                (lo, hi)
            }
            Scale::Linear => (0.0, if vmax > 0.0 { vmax * 1.15 } else { 1.0 }),
        };
        Frame {
            x0: tmin - pad,
            x1: tmax + pad,
            scale,
            lo,
            hi,
        }
    }

    fn x(&self, t: f64) -> f64 {
        L + (t - self.x0) / (self.x1 - self.x0) * (W - L - R)
    }

    fn y(&self, v: f64) -> f64 {
        let share = match self.scale {
            Scale::LogDuration => {
                (v.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
            }
            Scale::Linear => v / self.hi,
        };
        H - B - share * (H - T - B)
    }

    /// Grid lines with their values, and dated ticks along the time axis.
    fn axes(&self, svg: &mut String, opts: &ReportOptions, fmt: &dyn Fn(f64) -> String) {
        let ticks: Vec<(f64, String)> = match self.scale {
            Scale::LogDuration => LOG_TICKS
                .iter()
                .filter(|t| t.0 >= self.lo && t.0 <= self.hi)
                .map(|t| (t.0, t.1.to_owned()))
                .collect(),
            Scale::Linear => (0..=4)
                .map(|i| {
                    let v = self.hi * f64::from(i) / 4.0;
                    (v, fmt(v))
                })
                .collect(),
        };
        for (v, label) in ticks {
            let y = self.y(v);
            let _ = write!(
                svg,
                "<line x1=\"{L}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e0e0e0\"/>\
                 <text x=\"{}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{}</text>",
                W - R,
                L - 8.0,
                y + 4.0,
                esc(&label)
            );
        }
        let span = self.x1 - self.x0;
        // `12-02 07:31:36` within an hour, `12-02 07:31` within three days, else the day.
        let shown = if span < 3600.0 {
            5..19
        } else if span < 3.0 * 86400.0 {
            5..16
        } else {
            0..10
        };
        for i in 0..5 {
            let t = self.x0 + span * (0.06 + 0.88 * f64::from(i) / 4.0);
            let label = opts
                .zone
                .show(system_time(t))
                .get(shown.clone())
                .unwrap_or_default()
                .to_owned();
            let x = self.x(t);
            let _ = write!(
                svg,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#bdbdbd\"/>\
                 <text x=\"{x:.1}\" y=\"{}\" class=\"axis\" text-anchor=\"middle\">{}</text>",
                H - B,
                H - B + 5.0,
                H - B + 18.0,
                esc(&label)
            );
        }
    }
}

/// A drill's point: the drill, its time, its value.
type Point<'a> = (&'a DrillRecord, f64, f64);

/// The marker of a mode: circle (full), square (verify-only), triangle (sample).
fn marker(mode: &str, x: f64, y: f64, fill: &str, stroke: &str, width: f64) -> String {
    let style = format!("fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{width}\"");
    match mode {
        "verify-only" => format!(
            "<rect class=\"point\" x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" {style}/>",
            x - 6.0,
            y - 6.0
        ),
        "sample" => format!(
            "<polygon class=\"point\" points=\"{x:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\" {style}/>",
            y - 8.0,
            x - 7.0,
            y + 6.0,
            x + 7.0,
            y + 6.0
        ),
        _ => format!("<circle class=\"point\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"7\" {style}/>"),
    }
}

/// The dash pattern of a mode's line.
fn dash(mode: &str) -> &'static str {
    match mode {
        "verify-only" => " stroke-dasharray=\"6 4\"",
        "sample" => " stroke-dasharray=\"2 4\"",
        _ => "",
    }
}

/// A chart of `spec` over `records` (sorted by time).
pub(crate) fn chart(
    records: &[DrillRecord],
    colors: &BTreeMap<String, &str>,
    spec: &Spec<'_>,
    opts: &ReportOptions,
) -> String {
    let points: Vec<Point<'_>> = records
        .iter()
        .filter_map(|r| (spec.value)(r).map(|v| (r, unix(&r.started), v)))
        .collect();
    let unrecovered: Vec<&DrillRecord> = records
        .iter()
        .filter(|r| spec.mark_unrecovered && (spec.value)(r).is_none() && !r.result.recovered())
        .collect();
    if points.is_empty() && unrecovered.is_empty() {
        return format!("<p class=\"none\">{}</p>", opts.labels().no_data);
    }
    let times: Vec<f64> = points
        .iter()
        .map(|p| p.1)
        .chain(unrecovered.iter().map(|r| unix(&r.started)))
        .collect();
    let values: Vec<f64> = points
        .iter()
        .map(|p| p.2)
        .chain(records.iter().filter_map(|r| (spec.target)(r)))
        .collect();
    let f = Frame::fit(&times, &values, spec.scale);
    let mut svg = format!(
        "<svg id=\"{}\" viewBox=\"0 0 {W} {H}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#ffffff\"/>",
        spec.id
    );
    f.axes(&mut svg, opts, spec.fmt);
    targets(&mut svg, &f, records, spec);
    for (key, color) in colors {
        for mode in ["full", "verify-only", "sample"] {
            let series: Vec<&Point<'_>> = points
                .iter()
                .filter(|p| p.0.mode == mode && &series_key(p.0) == key)
                .collect();
            draw_series(&mut svg, &f, &series, color, spec, points.len());
        }
    }
    for r in unrecovered {
        let _ = write!(
            svg,
            "<text class=\"unrecovered\" x=\"{:.1}\" y=\"{}\" fill=\"{}\" font-size=\"18\" text-anchor=\"middle\">✕</text>",
            f.x(unix(&r.started)),
            T - 6.0,
            result_color(r.result)
        );
    }
    mode_legend(&mut svg, spec, opts);
    svg.push_str("</svg>");
    svg
}

/// Each drill's own target, as a short red bar at the drill's time, and each distinct
/// target written once.
fn targets(svg: &mut String, f: &Frame, records: &[DrillRecord], spec: &Spec<'_>) {
    let mut written: Vec<f64> = Vec::new();
    for r in records {
        let Some(t) = (spec.target)(r) else { continue };
        let (x, y) = (f.x(unix(&r.started)), f.y(t));
        let _ = write!(
            svg,
            "<line class=\"target\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{TARGET_COLOR}\" stroke-width=\"3\"/>",
            x - 9.0,
            x + 9.0
        );
        if !written.iter().any(|w| (w - t).abs() < 1e-9) {
            written.push(t);
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" fill=\"{TARGET_COLOR}\">{}</text>",
                x + 12.0,
                y - 5.0,
                esc(&(spec.fmt)(t))
            );
        }
    }
}

/// One series and mode: a faint line through its drills, a marker per drill (ringed in
/// the result's color when the value missed its target), and the value beside it.
fn draw_series(
    svg: &mut String,
    f: &Frame,
    series: &[&Point<'_>],
    color: &str,
    spec: &Spec<'_>,
    total: usize,
) {
    let Some(first) = series.first() else { return };
    if series.len() > 1 {
        let path: Vec<String> = series
            .iter()
            .map(|p| format!("{:.1},{:.1}", f.x(p.1), f.y(p.2)))
            .collect();
        let _ = write!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-opacity=\"0.5\" stroke-width=\"2\"{}/>",
            path.join(" "),
            dash(&first.0.mode)
        );
    }
    for p in series {
        let (x, y) = (f.x(p.1), f.y(p.2));
        let (ring, width) = if (spec.missed)(p.0) {
            (result_color(p.0.result), 3.0)
        } else {
            (color, 1.0)
        };
        svg.push_str(&marker(&p.0.mode, x, y, color, ring, width));
        if total <= LABELLED_POINTS {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"value\">{}</text>",
                x + 9.0,
                y + 4.0,
                esc(&(spec.fmt)(p.2))
            );
        }
    }
}

/// Under the chart: what the markers, the red bars and the ✕ mean.
fn mode_legend(svg: &mut String, spec: &Spec<'_>, opts: &ReportOptions) {
    let l = opts.labels();
    let y = H - 18.0;
    let mut x = L;
    for (i, mode) in ["full", "verify-only", "sample"].iter().enumerate() {
        svg.push_str(&marker(mode, x + 6.0, y, "#9e9e9e", "#9e9e9e", 1.0));
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{}</text>",
            x + 18.0,
            y + 4.0,
            esc(l.modes[i])
        );
        x += 150.0;
    }
    let _ = write!(
        svg,
        "<line x1=\"{x:.1}\" x2=\"{:.1}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{TARGET_COLOR}\" stroke-width=\"3\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{}</text>",
        x + 18.0,
        x + 24.0,
        y + 4.0,
        esc(l.target_each)
    );
    x += 190.0;
    if spec.mark_unrecovered {
        let _ = write!(
            svg,
            "<text x=\"{x:.1}\" y=\"{:.1}\" fill=\"{}\" font-size=\"16\">✕</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{}</text>",
            y + 6.0,
            result_color(DrillResult::IntegrityFailure),
            x + 18.0,
            y + 4.0,
            esc(l.not_recovered)
        );
    }
    if matches!(spec.scale, Scale::LogDuration) {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"end\">{}</text>",
            W - R,
            T - 12.0,
            esc(l.log_scale)
        );
    }
}

/// The results as a grid: one row per store and data set, one column per day (in the
/// report's zone), each cell colored and labelled with the day's worst result (and how
/// many drills), the dates written above, a legend below.
pub(crate) fn timeline(records: &[DrillRecord], opts: &ReportOptions) -> String {
    let l = opts.labels();
    let mut days: Vec<String> = records
        .iter()
        .filter_map(|r| format::parse_time(&r.started).map(|t| opts.zone.day(t)))
        .collect();
    days.sort();
    days.dedup();
    let mut cells: BTreeMap<(String, usize), Vec<&DrillRecord>> = BTreeMap::new();
    for r in records {
        let Some(day) = format::parse_time(&r.started).map(|t| opts.zone.day(t)) else {
            continue;
        };
        let col = days.iter().position(|d| *d == day).unwrap_or(0);
        cells.entry((series_key(r), col)).or_default().push(r);
    }
    let rows: Vec<String> = colors(records).into_keys().collect();
    let (left, top, row_h) = (230.0, 86.0, 30.0);
    let col_w = ((W - left - 10.0) / days.len().max(1) as f64).min(110.0);
    let height = top + row_h * rows.len() as f64 + 20.0 + 22.0 * 2.0;
    let mut svg = format!(
        "<svg id=\"timeline\" viewBox=\"0 0 {W} {height}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{height}\" fill=\"#ffffff\"/>"
    );
    for (i, day) in days.iter().enumerate() {
        let x = left + col_w * (i as f64 + 0.5);
        let _ = write!(
            svg,
            "<text class=\"axis\" transform=\"translate({x:.1},{}) rotate(-45)\">{}</text>",
            top - 8.0,
            esc(day)
        );
    }
    for (j, row) in rows.iter().enumerate() {
        let y = top + row_h * j as f64;
        let _ = write!(
            svg,
            "<text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y + row_h / 2.0 + 4.0,
            esc(row)
        );
        for i in 0..days.len() {
            let Some(drills) = cells.get(&(row.clone(), i)) else {
                continue;
            };
            let worst = drills
                .iter()
                .map(|r| r.result)
                .max_by_key(|r| r.severity())
                .unwrap_or(DrillResult::Pass);
            let label = match drills.len() {
                1 => l.short(worst).to_owned(),
                n => format!("{} ×{n}", l.short(worst)),
            };
            let x = left + col_w * i as f64;
            let _ = write!(
                svg,
                "<rect class=\"cell\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" class=\"cell-label\" text-anchor=\"middle\">{}</text>",
                x + 2.0,
                y + 2.0,
                col_w - 4.0,
                row_h - 4.0,
                result_color(worst),
                x + col_w / 2.0,
                y + row_h / 2.0 + 4.0,
                esc(&label)
            );
        }
    }
    result_legend(&mut svg, top + row_h * rows.len() as f64 + 20.0, opts);
    svg.push_str("</svg>");
    svg
}

/// Under the grid: each result's color, short label and full label.
fn result_legend(svg: &mut String, top: f64, opts: &ReportOptions) {
    let l = opts.labels();
    let (mut x, mut y) = (10.0, top);
    for r in DrillResult::ALL {
        if x > W - 240.0 {
            x = 10.0;
            y += 22.0;
        }
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"14\" height=\"14\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{} = {}</text>",
            result_color(r),
            x + 20.0,
            y + 12.0,
            esc(l.short(r)),
            esc(l.result(r))
        );
        x += 300.0;
    }
}
