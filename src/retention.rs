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
