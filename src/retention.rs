//! Retention: which snapshots a `--keep-*` policy keeps, and why (like restic's `forget`).
//!
//! Pure functions over snapshot times and tags; no I/O. `forget` applies the result.

use std::time::{Duration, SystemTime};

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
    /// Its host (policies apply per host).
    pub host: String,
    /// Its tags.
    pub tags: Vec<String>,
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
    /// Does the policy keep everything (no rule given)?
    pub fn is_empty(&self) -> bool {
        *self == Policy::default()
    }

    /// The policy as `keep-last 3, keep-daily 7`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let counts = [
            ("keep-last", self.keep_last),
            ("keep-hourly", self.keep_hourly),
            ("keep-daily", self.keep_daily),
            ("keep-weekly", self.keep_weekly),
            ("keep-monthly", self.keep_monthly),
            ("keep-yearly", self.keep_yearly),
        ];
        for (name, n) in counts {
            if let Some(n) = n {
                parts.push(format!("{name} {n}"));
            }
        }
        if let Some(d) = self.keep_within {
            parts.push(format!("keep-within {}", humantime::format_duration(d)));
        }
        for t in &self.keep_tags {
            parts.push(format!("keep-tag {t}"));
        }
        if parts.is_empty() {
            "no policy (keep everything)".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Decide for every snapshot, in input order. Rules apply per host, newest first.
pub fn apply(policy: &Policy, snapshots: &[Candidate]) -> Vec<Decision> {
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); snapshots.len()];
    let mut hosts: Vec<&str> = snapshots.iter().map(|c| c.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    for host in hosts {
        let mut group: Vec<usize> = (0..snapshots.len())
            .filter(|&i| snapshots[i].host == host)
            .collect();
        group.sort_by(|&a, &b| snapshots[b].time.cmp(&snapshots[a].time));
        decide_group(policy, snapshots, &group, &mut reasons);
    }
    snapshots
        .iter()
        .zip(reasons)
        .map(|(c, r)| Decision {
            id: c.id.clone(),
            keep: policy.is_empty() || !r.is_empty(),
            reasons: if policy.is_empty() {
                vec!["no policy".into()]
            } else {
                r
            },
        })
        .collect()
}

/// The name of the time bucket a snapshot falls in.
type BucketOf = fn(SystemTime) -> String;

/// `group` is newest first.
fn decide_group(policy: &Policy, all: &[Candidate], group: &[usize], reasons: &mut [Vec<String>]) {
    if let Some(n) = policy.keep_last {
        for &i in group.iter().take(n) {
            reasons[i].push("last".into());
        }
    }
    let buckets: [(Option<usize>, &str, BucketOf); 5] = [
        (policy.keep_hourly, "hourly", |t| civil(t).hour()),
        (policy.keep_daily, "daily", |t| civil(t).day()),
        (policy.keep_weekly, "weekly", |t| civil(t).iso_week()),
        (policy.keep_monthly, "monthly", |t| civil(t).month()),
        (policy.keep_yearly, "yearly", |t| civil(t).year.to_string()),
    ];
    for (count, name, bucket_of) in buckets {
        let Some(n) = count else { continue };
        let mut seen: Vec<String> = Vec::new();
        for &i in group {
            let b = bucket_of(all[i].time);
            if seen.len() >= n {
                break;
            }
            if !seen.contains(&b) {
                reasons[i].push(format!("{name} {b}"));
                seen.push(b);
            }
        }
    }
    if let (Some(d), Some(&newest)) = (policy.keep_within, group.first()) {
        for &i in group {
            let age = all[newest]
                .time
                .duration_since(all[i].time)
                .unwrap_or_default();
            if age <= d {
                reasons[i].push(format!("within {}", humantime::format_duration(d)));
            }
        }
    }
    for &i in group {
        for t in all[i].tags.iter().filter(|t| policy.keep_tags.contains(t)) {
            reasons[i].push(format!("tag {t}"));
        }
    }
}

/// A UTC civil time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    days: i64,
}

impl Civil {
    fn hour(&self) -> String {
        format!("{}T{:02}", self.day(), self.hour)
    }
    fn day(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
    fn month(&self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }
    /// ISO 8601 week: weeks start on Monday; week 1 holds the year's first Thursday.
    fn iso_week(&self) -> String {
        let weekday = (self.days + 3).rem_euclid(7); // 0 = Monday (1970-01-01 was a Thursday)
        let thursday = self.days - weekday + 3;
        let year = civil_from_days(thursday).0;
        let week = (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
        format!("{year:04}-W{week:02}")
    }
}

fn civil(t: SystemTime) -> Civil {
    let secs = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let days = secs.div_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: (secs.rem_euclid(86_400) / 3600) as u32,
        days,
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
