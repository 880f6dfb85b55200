//! The ten-second summary: one verdict per data set and store, from its latest full drill,
//! the latest drill of every mode, and the configured drill interval.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::ReportOptions;
use crate::drill::{DrillRecord, DrillResult};
use crate::format;

/// A data set and store's verdict, worst first in the order of attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The latest drill of some mode did not pass.
    Attention,
    /// No full drill was ever recorded.
    NoFullDrill,
    /// The latest full drill is older than `[drill] every`.
    Overdue,
    /// Every mode's latest drill passed and the full drill is recent enough.
    Ok,
}

/// One line of the summary.
pub(crate) struct Row<'a> {
    pub(crate) set: String,
    pub(crate) store: String,
    /// The newest full drill.
    pub(crate) full: Option<&'a DrillRecord>,
    /// The newest drill of a mode that did not pass (the newest such, when several).
    pub(crate) failing: Option<&'a DrillRecord>,
    /// When the next full drill is due (`[drill] every` after the last one).
    pub(crate) due: Option<SystemTime>,
    pub(crate) verdict: Verdict,
}

fn started(r: &DrillRecord) -> SystemTime {
    format::parse_time(&r.started).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The summary rows, by data set then store.
pub(crate) fn rows<'a>(records: &'a [DrillRecord], opts: &ReportOptions) -> Vec<Row<'a>> {
    // (data set, store) -> mode -> newest drill of that mode.
    let mut newest: BTreeMap<(String, String), BTreeMap<&str, &DrillRecord>> = BTreeMap::new();
    for r in records {
        let modes = newest
            .entry((r.data_set_label(), r.store.clone()))
            .or_default();
        let slot = modes.entry(r.mode.as_str()).or_insert(r);
        if r.started > slot.started {
            *slot = r;
        }
    }
    newest
        .into_iter()
        .map(|((set, store), modes)| {
            let full = modes.get("full").copied();
            let failing = modes
                .values()
                .filter(|r| r.result != DrillResult::Pass)
                .max_by(|a, b| a.started.cmp(&b.started))
                .copied();
            let due = full.and_then(|f| Some(started(f) + opts.every?));
            let verdict = if failing.is_some() {
                Verdict::Attention
            } else if full.is_none() {
                Verdict::NoFullDrill
            } else if due.is_some_and(|d| d < opts.now) {
                Verdict::Overdue
            } else {
                Verdict::Ok
            };
            Row {
                set,
                store,
                full,
                failing,
                due,
                verdict,
            }
        })
        .collect()
}

/// The one-line summary: drills, passed, not passed, pairs needing a full drill.
pub(crate) fn line(records: &[DrillRecord], rows: &[Row<'_>], opts: &ReportOptions) -> String {
    let passed = records
        .iter()
        .filter(|r| r.result == DrillResult::Pass)
        .count();
    let behind = rows
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Overdue | Verdict::NoFullDrill))
        .count();
    super::labels::fill(
        opts.labels().summary_line,
        &[
            ("n", &records.len().to_string()),
            ("passed", &passed.to_string()),
            ("failed", &(records.len() - passed).to_string()),
            ("overdue", &behind.to_string()),
        ],
    )
}

impl Row<'_> {
    /// The verdict's label.
    pub(crate) fn verdict_label(&self, opts: &ReportOptions) -> &'static str {
        let l = opts.labels();
        match self.verdict {
            Verdict::Ok => l.v_ok,
            Verdict::Attention => l.v_attention,
            Verdict::Overdue => l.v_overdue,
            Verdict::NoFullDrill => l.v_no_full,
        }
    }

    /// `due 2026-12-05` / `overdue since 2026-12-05` / no interval configured / `—`.
    pub(crate) fn due_label(&self, opts: &ReportOptions) -> String {
        let l = opts.labels();
        match (self.full, self.due) {
            (None, _) => "—".into(),
            (Some(_), None) => l.no_interval.into(),
            (Some(_), Some(d)) => {
                let template = if d < opts.now {
                    l.overdue_since
                } else {
                    l.due_on
                };
                super::labels::fill(template, &[("date", &opts.zone.day(d))])
            }
        }
    }

    /// Why the pair needs attention: the failing drill's reasons, with its mode when it is
    /// not the full drill.
    pub(crate) fn reasons(&self, opts: &ReportOptions) -> Vec<String> {
        let Some(r) = self.failing else {
            return Vec::new();
        };
        let l = opts.labels();
        r.reasons()
            .into_iter()
            .map(|why| {
                format!(
                    "{} {} ({}): {why}",
                    l.mode(&r.mode),
                    opts.time(&r.started),
                    l.result(r.result)
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::drill::record::CheckOutcome;

    const DAY: u64 = 86400;

    /// A drill of `store` (data set db1/exports) that started `days_ago` days before `now`.
    fn drill(
        store: &str,
        mode: &str,
        days_ago: u64,
        result: DrillResult,
        now: SystemTime,
    ) -> DrillRecord {
        let started = format::format_time(now - Duration::from_secs(days_ago * DAY));
        let mut r = DrillRecord::new(
            format!("{store}-{mode}-{days_ago}"),
            started,
            "ops".into(),
            store.into(),
            mode,
        );
        r.snapshot_host = Some("db1".into());
        r.job = Some("exports".into());
        r.result = result;
        r.rto_secs = 0.25;
        r
    }

    fn opts(every_days: Option<u64>, now: SystemTime) -> ReportOptions {
        ReportOptions {
            every: every_days.map(|d| Duration::from_secs(d * DAY)),
            now,
            ..ReportOptions::default()
        }
    }

    #[test]
    fn verdicts_follow_the_interval_the_modes_and_the_failures() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut check = drill("osaka", "verify-only", 1, DrillResult::CheckFailed, now);
        check.check = Some(CheckOutcome {
            command: "exit 3".into(),
            exit_code: Some(3),
            signal: None,
            error: None,
        });
        check.failures.push(check.check.as_ref().unwrap().failure());
        let records = vec![
            drill("tokyo", "full", 10, DrillResult::Pass, now),
            drill("osaka", "full", 2, DrillResult::Pass, now),
            check,
            drill("sapporo", "verify-only", 1, DrillResult::Pass, now),
        ];
        let weekly = opts(Some(7), now);
        let rows = rows(&records, &weekly);
        let by = |s: &str| rows.iter().find(|r| r.store == s).unwrap();
        assert_eq!(by("tokyo").verdict, Verdict::Overdue);
        assert!(by("tokyo").due_label(&weekly).starts_with("overdue since "));
        assert_eq!(by("osaka").verdict, Verdict::Attention);
        let why = by("osaka").reasons(&weekly).join("; ");
        assert!(
            why.contains("the check `exit 3` exited with status 3"),
            "{why}"
        );
        assert_eq!(by("sapporo").verdict, Verdict::NoFullDrill);
        // A monthly interval: the 10-day-old full drill is fine.
        let monthly = opts(Some(30), now);
        let rows = super::rows(&records, &monthly);
        assert_eq!(
            rows.iter().find(|r| r.store == "tokyo").unwrap().verdict,
            Verdict::Ok
        );
        // No interval configured: never overdue, and said so.
        let none = opts(None, now);
        let rows = super::rows(&records, &none);
        let tokyo = rows.iter().find(|r| r.store == "tokyo").unwrap();
        assert_eq!(tokyo.verdict, Verdict::Ok);
        assert_eq!(tokyo.due_label(&none), none.labels().no_interval);
        assert_eq!(
            line(&records, &rows, &none),
            "4 drills: 3 passed, 1 did not pass; 1 data set and store pairs overdue or without a full drill."
        );
    }

    #[test]
    fn a_drill_that_did_not_recover_shows_no_rto() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let o = opts(None, now);
        let mut bad = drill("osaka", "full", 0, DrillResult::IntegrityFailure, now);
        bad.rto_secs = 0.0;
        bad.targets.rto_secs = Some(1800.0);
        bad.failures
            .push("chunks/ab12 missing in store 'osaka'".into());
        assert_eq!(o.rto(&bad), "—");
        let md = super::super::markdown(std::slice::from_ref(&bad), &o);
        assert!(!md.contains("0 ms (target"), "{md}");
        assert!(md.contains("chunks/ab12 missing in store 'osaka'"), "{md}");
        let good = drill("osaka", "full", 0, DrillResult::Pass, now);
        assert_eq!(o.rto(&good), "250 ms");
    }
}
