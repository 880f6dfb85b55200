//! Tombstones a compromised backup host would sign (it holds the write key): the newest
//! snapshot of a data set forgotten — which no retention policy does —, or most of a data
//! set's snapshots forgotten within a day. Prune keeps the first and refuses the second
//! without `--yes` (src/prune/floor.rs); the audit raises the alarm.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use super::{Finding, FindingKind};
use crate::format::{self, commit, tombstone::Tombstone};

/// One data set (host, job, source; a format-1 snapshot's is its host) as the audit sees it.
#[derive(Default)]
struct DataSet<'a> {
    live: BTreeSet<&'a str>,
    forgotten: Vec<&'a Tombstone>,
    /// (time, id, forgotten?) of its newest snapshot.
    newest: (&'a str, &'a str, bool),
}

impl<'a> DataSet<'a> {
    fn see(&mut self, time: &'a str, id: &'a str, forgotten: bool) {
        if (time, id) > (self.newest.0, self.newest.1) {
            self.newest = (time, id, forgotten);
        }
    }
}

/// `live`: (data set, time, id) of the verified, unforgotten commits (repeats across stores
/// are fine). Findings of kind [`FindingKind::NewestForgotten`] and
/// [`FindingKind::MassForget`].
pub(super) fn alarms<'a>(
    live: &[(commit::DataSet, &'a str, &'a str)],
    forgotten: &'a BTreeMap<String, Tombstone>,
    now: SystemTime,
) -> Vec<Finding> {
    let mut sets: BTreeMap<commit::DataSet, DataSet<'a>> = BTreeMap::new();
    for (key, time, id) in live {
        let set = sets.entry(key.clone()).or_default();
        set.live.insert(id);
        set.see(time, id, false);
    }
    for t in forgotten.values() {
        let set = sets.entry(t.data_set()).or_default();
        set.forgotten.push(t);
        set.see(&t.snapshot_time, &t.snapshot_id, true);
    }
    let day = Duration::from_secs(24 * 3600);
    let mut out = Vec::new();
    for (key, set) in sets {
        if set.newest.2 {
            out.push(Finding::new(
                "all",
                &format::tombstone_object(set.newest.1),
                FindingKind::NewestForgotten,
                format!(
                    "snapshot {}, the newest of data set {key}, is forgotten",
                    set.newest.1
                ),
            ));
        }
        let recent = set
            .forgotten
            .iter()
            .filter(|t| {
                format::parse_time(&t.forgotten_at)
                    .is_some_and(|at| now.duration_since(at).unwrap_or_default() < day)
            })
            .count();
        let total = set.live.len() + set.forgotten.len();
        if recent > 1 && recent * 2 > total {
            out.push(Finding::new(
                "all",
                format::FORGOTTEN_PREFIX,
                FindingKind::MassForget,
                format!(
                    "{recent} of the {total} snapshots of data set {key} were forgotten within the last day"
                ),
            ));
        }
    }
    out
}
