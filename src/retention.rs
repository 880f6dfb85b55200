//! Retention: which snapshots a `--keep-*` policy keeps, and why (like restic's `forget`).
//!
//! Pure functions over snapshot times and tags; no I/O. `forget` applies the result.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// A retention policy. Every rule adds to what is kept; a snapshot matched by no rule is
/// forgotten. An empty policy keeps everything (forget refuses to run with one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Keep the newest N snapshots.
    pub keep_last: Option<usize>,
    /// Keep the newest snapshot of each of the last N hours that have one.
    pub keep_hourly: Option<usize>,
    /// ... days.
    pub keep_daily: Option<usize>,
    /// ... ISO weeks.
    pub keep_weekly: Option<usize>,
    /// ... months.
    pub keep_monthly: Option<usize>,
    /// ... years.
    pub keep_yearly: Option<usize>,
    /// Keep every snapshot younger than this, counted back from the newest snapshot.
    pub keep_within: Option<Duration>,
    /// Keep every snapshot carrying any of these tags.
    pub keep_tags: Vec<String>,
}

/// One snapshot as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Snapshot id.
    pub id: String,
    /// When it was taken.
    pub time: SystemTime,
    /// Its group (policies apply per group: by default its data set, see `forget
    /// --group-by`).
    pub group: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// The offset of the repository's time zone at `time`, in seconds east of UTC: hours,
    /// days, weeks, months and years are the local ones (a nightly at 08:00 and 10:00 in
    /// Tokyo is one day, not two).
    pub offset_secs: i64,
}

/// What the policy decided for one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Snapshot id.
    pub id: String,
    /// Kept or forgotten.
    pub keep: bool,
    /// Every rule that keeps it (e.g. `last`, `daily 2026-11-28`, `tag monthly-audit`);
    /// empty when forgotten.
    pub reasons: Vec<String>,
}

impl Policy {
    /// True when no rule is set. Counts of 0 and a zero `keep_within` count as unset (as in
    /// restic), so a policy written as all zeros keeps everything instead of nothing.
    pub fn is_empty(&self) -> bool {
        self.describe_parts().is_empty()
    }

    /// The policy in the words of its options, e.g. `keep-last 3, keep-daily 7`; `no policy`
    /// when empty.
    pub fn describe(&self) -> String {
        let parts = self.describe_parts();
        if parts.is_empty() {
            return "no policy".into();
        }
        parts.join(", ")
    }

    fn describe_parts(&self) -> Vec<String> {
        let mut parts: Vec<String> = Rule::ALL
            .iter()
            .filter_map(|r| r.count(self).map(|n| format!("keep-{} {n}", r.name())))
            .collect();
        if let Some(d) = self.within() {
            parts.push(format!("keep-within {}", short_duration(d)));
        }
        parts.extend(self.keep_tags.iter().map(|t| format!("keep-tag {t}")));
        parts
    }

    /// `keep_within`, unless unset or zero.
    fn within(&self) -> Option<Duration> {
        self.keep_within.filter(|d| !d.is_zero())
    }
}

/// Decide, for each snapshot, whether `policy` keeps it and why: one [`Decision`] per input,
/// in input order. Rules apply to each group's snapshots separately, newest first, and the
/// newest snapshot of a group is always kept: no policy empties a data set (only `forget
/// ID` can name it).
pub fn apply(policy: &Policy, snapshots: &[Candidate]) -> Vec<Decision> {
    let mut reasons = vec![Vec::new(); snapshots.len()];
    if policy.is_empty() {
        reasons.iter_mut().for_each(|r| r.push("no policy".into()));
    } else {
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, c) in snapshots.iter().enumerate() {
            groups.entry(c.group.as_str()).or_default().push(i);
        }
        for order in groups.values_mut() {
            // Newest first; the sort is stable, so equal times keep their input order.
            order.sort_by(|&a, &b| snapshots[b].time.cmp(&snapshots[a].time));
            apply_group(policy, snapshots, order, &mut reasons);
            // A policy of only `keep-tag` (or `keep-within` of nothing) would empty it.
            if let Some(&newest) = order.first()
                && reasons[newest].is_empty()
            {
                reasons[newest].push("newest of its group".into());
            }
        }
    }
    snapshots
        .iter()
        .zip(reasons)
        .map(|(c, reasons)| Decision {
            id: c.id.clone(),
            keep: !reasons.is_empty(),
            reasons,
        })
        .collect()
}

/// One group's snapshots (`order`: indices into `all`, newest first); adds the reasons of
/// every rule that keeps each of them.
fn apply_group(policy: &Policy, all: &[Candidate], order: &[usize], reasons: &mut [Vec<String>]) {
    let Some(&newest) = order.first() else { return };
    let newest = all[newest].time;
    // Per counting rule: how many more it may keep, and the bucket it kept last.
    let mut rules: Vec<(Rule, usize, Option<String>)> = Rule::ALL
        .iter()
        .filter_map(|&r| r.count(policy).map(|n| (r, n, None)))
        .collect();
    for &i in order {
        let c = &all[i];
        let t = UtcTime::from_system(shift(c.time, c.offset_secs));
        for (rule, left, last) in rules.iter_mut().filter(|(_, left, _)| *left > 0) {
            let bucket = rule.bucket(&t);
            // Snapshots are newest first, so the first one seen in a bucket is its newest:
            // later ones of the same bucket are already represented.
            if bucket.is_some() && bucket == *last {
                continue;
            }
            *left -= 1;
            reasons[i].push(match &bucket {
                Some(b) => format!("{} {b}", rule.name()),
                None => rule.name().to_owned(),
            });
            *last = bucket;
        }
        if let Some(d) = policy.within() {
            // Strictly younger than D, as restic does: "within 30d" of daily snapshots keeps 30.
            if newest.duration_since(c.time).unwrap_or_default() < d {
                reasons[i].push(format!("within {}", short_duration(d)));
            }
        }
        for tag in policy.keep_tags.iter().filter(|t| c.tags.contains(t)) {
            reasons[i].push(format!("tag {tag}"));
        }
    }
}

/// The counting rules, in the order their reasons are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Rule {
    const ALL: [Rule; 6] = [
        Rule::Last,
        Rule::Hourly,
        Rule::Daily,
        Rule::Weekly,
        Rule::Monthly,
        Rule::Yearly,
    ];

    fn name(self) -> &'static str {
        match self {
            Rule::Last => "last",
            Rule::Hourly => "hourly",
            Rule::Daily => "daily",
            Rule::Weekly => "weekly",
            Rule::Monthly => "monthly",
            Rule::Yearly => "yearly",
        }
    }

    /// The rule's count in `p`, unless unset or zero.
    fn count(self, p: &Policy) -> Option<usize> {
        let n = match self {
            Rule::Last => p.keep_last,
            Rule::Hourly => p.keep_hourly,
            Rule::Daily => p.keep_daily,
            Rule::Weekly => p.keep_weekly,
            Rule::Monthly => p.keep_monthly,
            Rule::Yearly => p.keep_yearly,
        };
        n.filter(|&n| n > 0)
    }

    /// The UTC bucket `t` falls in, as shown in reasons; `None` for `last`, where every
    /// snapshot counts on its own.
    fn bucket(self, t: &UtcTime) -> Option<String> {
        let UtcTime {
            year,
            month,
            day,
            hour,
            ..
        } = *t;
        Some(match self {
            Rule::Last => return None,
            Rule::Hourly => format!("{year:04}-{month:02}-{day:02}T{hour:02}"),
            Rule::Daily => format!("{year:04}-{month:02}-{day:02}"),
            Rule::Weekly => {
                let (y, w) = iso_week(t.days);
                format!("{y:04}-W{w:02}")
            }
            Rule::Monthly => format!("{year:04}-{month:02}"),
            Rule::Yearly => format!("{year:04}"),
        })
    }
}

/// `30d`, `12h`, `90m`: the largest whole unit, as a reason or description shows it.
fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() != 0 || s == 0 {
        return humantime::format_duration(d).to_string();
    }
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A point in time as a UTC calendar sees it (to the hour: no bucket is finer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UtcTime {
    /// Days since 1970-01-01.
    days: i64,
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
}

/// `t` moved by `secs` (east of UTC positive), for calendar buckets only.
fn shift(t: SystemTime, secs: i64) -> SystemTime {
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 { t + d } else { t - d }
}

impl UtcTime {
    fn from_system(t: SystemTime) -> UtcTime {
        // Whole seconds since the epoch, rounded down (also before 1970).
        let secs = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => {
                let d = e.duration();
                -(d.as_secs() as i64) - i64::from(d.subsec_nanos() > 0)
            }
        };
        let days = secs.div_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let hour = (secs.rem_euclid(86_400) / 3_600) as u32;
        UtcTime {
            days,
            year,
            month,
            day,
            hour,
        }
    }
}

// Calendar arithmetic after Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms":
// the year is shifted to start on March 1st so that the leap day comes last, and counted in
// 400-year eras of 146097 days.

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = i64::from((month + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day counted from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// ISO 8601 week `(week-year, week)` of a day counted from 1970-01-01. A week belongs to the
/// year of its Thursday, so early January can be in the previous year's week 52 or 53 and
/// late December in week 1 of the next.
fn iso_week(days: i64) -> (i64, u32) {
    let weekday = (days + 3).rem_euclid(7); // Monday = 0; 1970-01-01 was a Thursday
    let thursday = days - weekday + 3;
    let (year, _, _) = civil_from_days(thursday);
    let week = (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
    (year, week as u32)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const DAY: u64 = 86_400;
    /// 2025-10-24T03:00:00Z (`date -u -d '2025-10-24 03:00' +%s`).
    const FIRST: u64 = 1_761_274_800;
    /// 2026-01-01T12:00:00Z.
    const H2_FIRST: u64 = 1_767_268_800;
    /// Days of host h1 with a second snapshot at 15:00.
    const DOUBLES: [&str; 4] = ["2025-12-31", "2026-06-15", "2026-11-15", "2026-11-27"];

    /// The dates from `(y, m, d)` on, counted with a month-length table: deliberately not
    /// the code under test, so that a calendar bug there cannot hide in the fixture.
    fn dates(mut y: u32, mut m: u32, mut d: u32, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(format!("{y:04}-{m:02}-{d:02}"));
            let leap = y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
            let len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            d += 1;
            if d > len[m as usize - 1] {
                (d, m) = (1, m + 1);
            }
            if m > 12 {
                (m, y) = (1, y + 1);
            }
        }
        out
    }

    #[test]
    fn days_are_the_repository_time_zone_days() {
        // 08:00 and 10:00 in Tokyo on 2026-11-20: two UTC days, one local day.
        let at = |id: &str, rfc: &str, offset_secs: i64| Candidate {
            id: id.into(),
            time: humantime::parse_rfc3339(rfc).unwrap(),
            group: "g".into(),
            tags: vec![],
            offset_secs,
        };
        let policy = Policy {
            keep_daily: Some(2),
            ..Policy::default()
        };
        for (offset, kept) in [(0, 2), (9 * 3600, 1)] {
            let snaps = [
                at("a", "2026-11-19T23:00:00Z", offset),
                at("b", "2026-11-20T01:00:00Z", offset),
            ];
            let decisions = apply(&policy, &snaps);
            assert_eq!(
                decisions.iter().filter(|d| d.keep).count(),
                kept,
                "{decisions:?}"
            );
        }
        let tokyo = apply(&policy, &[at("b", "2026-11-20T01:00:00Z", 9 * 3600)]);
        assert_eq!(tokyo[0].reasons, ["daily 2026-11-20"]);
    }

    fn snap(id: String, secs: u64, host: &str, tags: &[&str]) -> Candidate {
        Candidate {
            id,
            time: UNIX_EPOCH + Duration::from_secs(secs),
            group: host.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            offset_secs: 0,
        }
    }

    /// Host h1: one snapshot a day at 03:00 UTC for 400 days (2025-10-24 to 2026-11-27), a
    /// second at 15:00 on the [`DOUBLES`] days; host h2: 2026-01-01 to 01-10 at 12:00.
    /// Ids are `host-YYYY-MM-DDTHH`. Tagged: two h1 snapshots and one h2 snapshot `audit`,
    /// one h1 snapshot `other`.
    fn history() -> Vec<Candidate> {
        let tags = |id: &str| -> &[&str] {
            match id {
                "h1-2025-11-15T03" | "h1-2026-03-31T03" | "h2-2026-01-05T12" => &["audit"],
                "h1-2026-02-02T03" => &["other"],
                _ => &[],
            }
        };
        let mut out = Vec::new();
        for (i, date) in dates(2025, 10, 24, 400).into_iter().enumerate() {
            let t = FIRST + i as u64 * DAY;
            let id = format!("h1-{date}T03");
            out.push(snap(id.clone(), t, "h1", tags(&id)));
            if DOUBLES.contains(&date.as_str()) {
                out.push(snap(format!("h1-{date}T15"), t + 12 * 3600, "h1", &[]));
            }
        }
        // Interleaved with h1 rather than appended, so grouping cannot rely on input order.
        for (i, date) in dates(2026, 1, 1, 10).into_iter().enumerate() {
            let id = format!("h2-{date}T12");
            let at = out.len() / 2 + i * 7;
            out.insert(
                at,
                snap(id.clone(), H2_FIRST + i as u64 * DAY, "h2", tags(&id)),
            );
        }
        out
    }

    /// The fixture's ids of `host` from `from` to `to` (inclusive; ids sort by time).
    fn ids_between(host: &str, from: &str, to: &str) -> Vec<String> {
        let (from, to) = (format!("{host}-{from}"), format!("{host}-{to}"));
        history()
            .into_iter()
            .map(|c| c.id)
            .filter(|id| id.starts_with(host) && *id >= from && *id <= to)
            .collect()
    }

    fn kept(policy: &Policy, snapshots: &[Candidate]) -> BTreeSet<String> {
        let decisions = apply(policy, snapshots);
        assert_eq!(decisions.len(), snapshots.len());
        for (d, c) in decisions.iter().zip(snapshots) {
            assert_eq!(d.id, c.id, "decisions are in input order");
            assert_eq!(d.keep, !d.reasons.is_empty(), "{d:?}");
        }
        decisions
            .into_iter()
            .filter(|d| d.keep)
            .map(|d| d.id)
            .collect()
    }

    fn set<S: AsRef<str>>(ids: impl IntoIterator<Item = S>) -> BTreeSet<String> {
        ids.into_iter().map(|s| s.as_ref().to_owned()).collect()
    }

    fn days(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n * DAY))
    }

    fn all_ids() -> Vec<String> {
        history().into_iter().map(|c| c.id).collect()
    }

    #[test]
    fn fixture_is_what_the_table_assumes() {
        let h = history();
        assert_eq!(h.len(), 400 + DOUBLES.len() + 10);
        let h1: Vec<_> = h.iter().filter(|c| c.group == "h1").collect();
        assert_eq!(h1.first().unwrap().id, "h1-2025-10-24T03");
        assert_eq!(h1.last().unwrap().id, "h1-2026-11-27T15");
        // 2026-11-27T15:00Z (`date -u -d '2026-11-27 15:00' +%s`).
        assert_eq!(
            h1.last().unwrap().time,
            UNIX_EPOCH + Duration::from_secs(1_795_791_600)
        );
    }

    #[test]
    fn table() {
        let h2_all = || ids_between("h2", "2026-01-01", "2026-01-10T12");
        let cases: Vec<(&str, Policy, BTreeSet<String>)> = vec![
            (
                "keep-last 5",
                Policy {
                    keep_last: Some(5),
                    ..Policy::default()
                },
                set([
                    "h1-2026-11-27T15",
                    "h1-2026-11-27T03",
                    "h1-2026-11-26T03",
                    "h1-2026-11-25T03",
                    "h1-2026-11-24T03",
                    "h2-2026-01-10T12",
                    "h2-2026-01-09T12",
                    "h2-2026-01-08T12",
                    "h2-2026-01-07T12",
                    "h2-2026-01-06T12",
                ]),
            ),
            (
                "keep-hourly 3",
                Policy {
                    keep_hourly: Some(3),
                    ..Policy::default()
                },
                set([
                    "h1-2026-11-27T15",
                    "h1-2026-11-27T03",
                    "h1-2026-11-26T03",
                    "h2-2026-01-10T12",
                    "h2-2026-01-09T12",
                    "h2-2026-01-08T12",
                ]),
            ),
            (
                // The double day counts once, by its newer snapshot.
                "keep-daily 7",
                Policy {
                    keep_daily: Some(7),
                    ..Policy::default()
                },
                set([
                    "h1-2026-11-27T15",
                    "h1-2026-11-26T03",
                    "h1-2026-11-25T03",
                    "h1-2026-11-24T03",
                    "h1-2026-11-23T03",
                    "h1-2026-11-22T03",
                    "h1-2026-11-21T03",
                    "h2-2026-01-10T12",
                    "h2-2026-01-09T12",
                    "h2-2026-01-08T12",
                    "h2-2026-01-07T12",
                    "h2-2026-01-06T12",
                    "h2-2026-01-05T12",
                    "h2-2026-01-04T12",
                ]),
            ),
            (
                // W48 (Fri 27th), W47 ends Sun 22nd, W46 ends Sun 15th (a double), W45 Sun 8th;
                // h2 spans only 2026-W01 (to Sun 4th) and W02.
                "keep-weekly 4",
                Policy {
                    keep_weekly: Some(4),
                    ..Policy::default()
                },
                set([
                    "h1-2026-11-27T15",
                    "h1-2026-11-22T03",
                    "h1-2026-11-15T15",
                    "h1-2026-11-08T03",
                    "h2-2026-01-10T12",
                    "h2-2026-01-04T12",
                ]),
            ),
            (
                "keep-monthly 12",
                Policy {
                    keep_monthly: Some(12),
                    ..Policy::default()
                },
                set([
                    "h1-2026-11-27T15",
                    "h1-2026-10-31T03",
                    "h1-2026-09-30T03",
                    "h1-2026-08-31T03",
                    "h1-2026-07-31T03",
                    "h1-2026-06-30T03",
                    "h1-2026-05-31T03",
                    "h1-2026-04-30T03",
                    "h1-2026-03-31T03",
                    "h1-2026-02-28T03",
                    "h1-2026-01-31T03",
                    "h1-2025-12-31T15",
                    "h2-2026-01-10T12",
                ]),
            ),
            (
                // Only two years have snapshots.
                "keep-yearly 3",
                Policy {
                    keep_yearly: Some(3),
                    ..Policy::default()
                },
                set(["h1-2026-11-27T15", "h1-2025-12-31T15", "h2-2026-01-10T12"]),
            ),
            (
                "keep-daily 7 + keep-weekly 4 + keep-monthly 6",
                Policy {
                    keep_daily: Some(7),
                    keep_weekly: Some(4),
                    keep_monthly: Some(6),
                    ..Policy::default()
                },
                set([
                    // daily
                    "h1-2026-11-27T15",
                    "h1-2026-11-26T03",
                    "h1-2026-11-25T03",
                    "h1-2026-11-24T03",
                    "h1-2026-11-23T03",
                    "h1-2026-11-22T03",
                    "h1-2026-11-21T03",
                    // weekly, beyond the daily ones
                    "h1-2026-11-15T15",
                    "h1-2026-11-08T03",
                    // monthly, beyond those
                    "h1-2026-10-31T03",
                    "h1-2026-09-30T03",
                    "h1-2026-08-31T03",
                    "h1-2026-07-31T03",
                    "h1-2026-06-30T03",
                    // h2: seven days cover its weeks and month
                    "h2-2026-01-10T12",
                    "h2-2026-01-09T12",
                    "h2-2026-01-08T12",
                    "h2-2026-01-07T12",
                    "h2-2026-01-06T12",
                    "h2-2026-01-05T12",
                    "h2-2026-01-04T12",
                ]),
            ),
            (
                // Counted back from h1's newest (11-27T15): after 10-28T15. h2 is younger
                // than 30 days measured from its own newest, not from h1's.
                "keep-within 30d",
                Policy {
                    keep_within: days(30),
                    ..Policy::default()
                },
                set(ids_between("h1", "2026-10-29", "2026-11-27T15")
                    .into_iter()
                    .chain(h2_all())),
            ),
            (
                // Exactly 2 days older than the newest is not within 2 days.
                "keep-within 2d, boundary",
                Policy {
                    keep_within: days(2),
                    ..Policy::default()
                },
                set([
                    "h1-2026-11-27T15",
                    "h1-2026-11-27T03",
                    "h1-2026-11-26T03",
                    "h2-2026-01-10T12",
                    "h2-2026-01-09T12",
                ]),
            ),
            (
                // And the newest of each group: no policy empties a data set.
                "keep-tag audit",
                Policy {
                    keep_tags: vec!["audit".into()],
                    ..Policy::default()
                },
                set([
                    "h1-2025-11-15T03",
                    "h1-2026-03-31T03",
                    "h2-2026-01-05T12",
                    "h1-2026-11-27T15",
                    "h2-2026-01-10T12",
                ]),
            ),
            (
                "keep-last bigger than the history",
                Policy {
                    keep_last: Some(1000),
                    ..Policy::default()
                },
                set(all_ids()),
            ),
            ("empty policy", Policy::default(), set(all_ids())),
            (
                // A count of 0 is no rule at all, not "keep nothing".
                "keep-last 0",
                Policy {
                    keep_last: Some(0),
                    keep_within: Some(Duration::ZERO),
                    ..Policy::default()
                },
                set(all_ids()),
            ),
        ];
        let history = history();
        for (name, policy, expected) in cases {
            let got = kept(&policy, &history);
            let missing: Vec<_> = expected.difference(&got).collect();
            let extra: Vec<_> = got.difference(&expected).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{name}: missing {missing:?}, extra {extra:?}"
            );
        }
    }

    #[test]
    fn reasons_name_each_rule_and_bucket() {
        let policy = Policy {
            keep_last: Some(1),
            keep_hourly: Some(1),
            keep_daily: Some(7),
            keep_weekly: Some(4),
            keep_monthly: Some(6),
            keep_yearly: Some(2),
            keep_within: days(30),
            keep_tags: vec!["audit".into()],
        };
        let decisions = apply(&policy, &history());
        let reasons = |id: &str| {
            decisions
                .iter()
                .find(|d| d.id == id)
                .unwrap()
                .reasons
                .clone()
        };
        assert_eq!(
            reasons("h1-2026-11-27T15"),
            [
                "last",
                "hourly 2026-11-27T15",
                "daily 2026-11-27",
                "weekly 2026-W48",
                "monthly 2026-11",
                "yearly 2026",
                "within 30d",
            ]
        );
        assert_eq!(reasons("h1-2026-11-27T03"), ["within 30d"]);
        assert_eq!(
            reasons("h1-2026-11-08T03"),
            ["weekly 2026-W45", "within 30d"]
        );
        assert_eq!(reasons("h1-2026-06-30T03"), ["monthly 2026-06"]);
        assert_eq!(reasons("h1-2025-12-31T15"), ["yearly 2025"]);
        assert_eq!(reasons("h1-2025-11-15T03"), ["tag audit"]);
        assert_eq!(
            reasons("h2-2026-01-04T12"),
            ["daily 2026-01-04", "weekly 2026-W01", "within 30d"]
        );
        assert!(
            reasons("h1-2026-02-02T03").is_empty(),
            "tag other is not kept"
        );
        let empty = apply(&Policy::default(), &history());
        assert!(empty.iter().all(|d| d.keep && d.reasons == ["no policy"]));
    }

    #[test]
    fn hosts_are_independent() {
        let policy = Policy {
            keep_last: Some(2),
            keep_monthly: Some(3),
            ..Policy::default()
        };
        let all = history();
        assert_eq!(
            kept(&policy, &all),
            set([
                "h1-2026-11-27T15",
                "h1-2026-11-27T03",
                "h1-2026-10-31T03",
                "h1-2026-09-30T03",
                "h2-2026-01-10T12",
                "h2-2026-01-09T12",
            ])
        );
        // h1 alone gets exactly the decisions it gets beside h2, and so does h2.
        let full = apply(&policy, &all);
        for host in ["h1", "h2"] {
            let alone: Vec<Candidate> = all.iter().filter(|c| c.group == host).cloned().collect();
            let beside: Vec<Decision> = full
                .iter()
                .zip(&all)
                .filter(|(_, c)| c.group == host)
                .map(|(d, _)| d.clone())
                .collect();
            assert_eq!(apply(&policy, &alone), beside, "{host}");
        }
        // Input order changes nothing but the order of the output.
        let mut reversed = all.clone();
        reversed.reverse();
        let mut back = apply(&policy, &reversed);
        back.reverse();
        assert_eq!(back, full);
    }

    #[test]
    fn describe_and_is_empty() {
        assert!(Policy::default().is_empty());
        assert_eq!(Policy::default().describe(), "no policy");
        let zeros = Policy {
            keep_daily: Some(0),
            keep_within: Some(Duration::ZERO),
            ..Policy::default()
        };
        assert!(zeros.is_empty());
        let p = Policy {
            keep_last: Some(3),
            keep_daily: Some(7),
            keep_within: days(30),
            keep_tags: vec!["audit".into()],
            ..Policy::default()
        };
        assert!(!p.is_empty());
        assert_eq!(
            p.describe(),
            "keep-last 3, keep-daily 7, keep-within 30d, keep-tag audit"
        );
        let tag_only = Policy {
            keep_tags: vec!["x".into()],
            ..Policy::default()
        };
        assert!(!tag_only.is_empty());
        assert_eq!(short_duration(Duration::from_secs(36 * 3600)), "36h");
        assert_eq!(short_duration(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(short_duration(Duration::from_secs(61)), "61s");
    }

    #[test]
    fn civil_dates_of_known_days() {
        // Seconds from `date -u -d DATE +%s`, divided by 86400.
        for (secs, ymd) in [
            (0, (1970, 1, 1)),
            (951_782_400, (2000, 2, 29)),
            (1_609_632_000, (2021, 1, 3)),
            (1_735_516_800, (2024, 12, 30)),
            (1_795_824_000, (2026, 11, 28)),
            (1_798_761_600, (2027, 1, 1)),
        ] {
            let days = secs / 86_400;
            assert_eq!(civil_from_days(days), ymd);
            assert_eq!(days_from_civil(ymd.0, ymd.1, ymd.2), days);
        }
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(
            days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28),
            1,
            "2100 is not leap"
        );
        // Round trip, day by day, across 1600-2400 (leap centuries, eras, negatives).
        let start = days_from_civil(1600, 1, 1);
        let mut prev = civil_from_days(start - 1);
        for d in start..days_from_civil(2400, 12, 31) {
            let c = civil_from_days(d);
            assert!(c > prev, "{c:?} after {prev:?}");
            assert_eq!(days_from_civil(c.0, c.1, c.2), d);
            prev = c;
        }
    }

    #[test]
    fn iso_weeks_of_known_days() {
        for (ymd, week) in [
            ((2026, 11, 28), (2026, 48)),
            ((2021, 1, 3), (2020, 53)),
            ((2024, 12, 30), (2025, 1)),
            ((2026, 1, 1), (2026, 1)),
            ((2026, 1, 5), (2026, 2)),
            ((2027, 1, 1), (2026, 53)),
            ((2020, 12, 31), (2020, 53)),
            ((2000, 2, 29), (2000, 9)),
            ((1970, 1, 1), (1970, 1)),
        ] {
            assert_eq!(
                iso_week(days_from_civil(ymd.0, ymd.1, ymd.2)),
                week,
                "{ymd:?}"
            );
        }
    }

    #[test]
    fn utc_time_of_system_time() {
        let t = UtcTime::from_system(UNIX_EPOCH + Duration::from_secs(1_795_791_600));
        assert_eq!((t.year, t.month, t.day, t.hour), (2026, 11, 27, 15));
        // Half a second before the epoch is still 1969-12-31T23, not 1970-01-01T00.
        let t = UtcTime::from_system(UNIX_EPOCH - Duration::from_millis(500));
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.days),
            (1969, 12, 31, 23, -1)
        );
    }
}
