//! `find PATTERN…`: which snapshots hold a path matching a glob — the responder's first
//! question after "a file is gone": since when, and which snapshot still has it.
//!
//! Patterns match as `exclude` globs do ([`PathGlobs::matches`]: no `/` = a name at any
//! depth, with `/` = the path from the snapshot's root); an entry matches by itself (a
//! matching directory is reported, not its content). Every admitted snapshot's manifest is
//! read (that needs the identity); the search itself ([`Finder`]) is pure over manifests.
//!
//! Results are per data set and path: the first and last snapshot holding it, the first
//! snapshot after that which lacks it (when it went), and its versions — runs of
//! appearances with the same type, size, SHA-256, mode, mtime and target.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt;
use serde::Serialize;

use crate::error::{Error, Result, exit};
use crate::format::commit::DataSet;
use crate::format::manifest::{Entry, EntryKind, Manifest, WirePath};
use crate::keys::Identities;
use crate::repository::{Repository, Selection, Snapshot, SnapshotList};
use crate::restore::{self, PathGlobs};

/// Manifests fetched ahead while the previous ones are searched.
const AHEAD: usize = 4;

/// A snapshot, as find reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seen {
    /// Its id.
    pub snapshot_id: String,
    /// Its time (RFC 3339, UTC, from the signed commit).
    pub time: String,
}

/// One state of a path over consecutive appearances.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    /// What it is.
    #[serde(rename = "type")]
    pub kind: EntryKind,
    /// Files: content length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Files: SHA-256 of the content, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Permission bits.
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Modification time, nanoseconds.
    pub mtime_ns: u32,
    /// Symlinks: the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<WirePath>,
    /// The first snapshot holding it so.
    pub first: Seen,
    /// The last one.
    pub last: Seen,
    /// How many of the snapshots searched hold it so.
    pub snapshots: u64,
}

impl Version {
    fn same_state(&self, e: &Entry) -> bool {
        self.kind == e.kind
            && self.size == e.size
            && self.sha256 == e.sha256
            && self.mode == e.mode
            && (self.mtime, self.mtime_ns) == (e.mtime, e.mtime_ns)
            && self.target == e.target
    }
}

/// One matching path of one data set.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// The data set (host, job, source) whose snapshots hold it.
    pub data_set: DataSet,
    /// The path in the snapshot.
    pub path: WirePath,
    /// The first snapshot searched that holds it.
    pub first: Seen,
    /// The last one.
    pub last: Seen,
    /// The first snapshot of the data set after `last` that lacks it — when it went.
    /// `None`: the newest snapshot searched still holds it.
    pub gone_in: Option<Seen>,
    /// How many of the snapshots searched hold it.
    pub snapshots: u64,
    /// Its states, oldest first.
    pub versions: Vec<Version>,
}

/// A snapshot whose manifest could not be read: left out of the search.
#[derive(Debug, Clone, Serialize)]
pub struct Unreadable {
    /// The snapshot.
    pub snapshot_id: String,
    /// Why.
    pub error: String,
    /// The exit code that error maps to.
    pub exit_code: i32,
}

/// What `find` found.
#[derive(Debug, Clone, Serialize)]
pub struct FindReport {
    /// The patterns.
    pub patterns: Vec<String>,
    /// Snapshots whose manifests were searched.
    pub searched: u64,
    /// Matching paths, by data set and path.
    pub found: Vec<Found>,
    /// Snapshots left out because their manifest could not be read.
    pub unreadable: Vec<Unreadable>,
}

impl FindReport {
    /// 0, or the worst exit code of the unreadable snapshots (13 for a damaged one).
    pub fn exit_code(&self) -> i32 {
        self.unreadable
            .iter()
            .fold(exit::OK, |a, u| exit::worst(a, u.exit_code))
    }
}

/// The search, fed one manifest at a time (each data set's snapshots oldest first).
#[derive(Debug)]
pub struct Finder {
    globs: PathGlobs,
    sets: BTreeMap<DataSet, SetSearch>,
}

/// One data set's snapshots so far, and its matches with the index of their last one.
#[derive(Debug, Default)]
struct SetSearch {
    order: Vec<Seen>,
    found: BTreeMap<Vec<u8>, (Found, usize)>,
}

impl Finder {
    /// A search for `patterns` (a usage error when one is not a glob).
    pub fn new(patterns: &[String]) -> Result<Self> {
        if patterns.is_empty() {
            return Err(Error::Usage("find needs a pattern".into()));
        }
        Ok(Finder {
            globs: PathGlobs::new(patterns, "find")?,
            sets: BTreeMap::new(),
        })
    }

    /// Search one snapshot's manifest.
    pub fn add(&mut self, set: &DataSet, seen: Seen, manifest: &Manifest) {
        let search = self.sets.entry(set.clone()).or_default();
        let index = search.order.len();
        search.order.push(seen.clone());
        for e in manifest
            .entries
            .iter()
            .filter(|e| self.globs.matches(&e.path.0))
        {
            let (found, last) = search
                .found
                .entry(e.path.0.clone())
                .or_insert_with(|| (new_found(set, e, &seen), index));
            *last = index;
            found.last = seen.clone();
            found.snapshots += 1;
            match found.versions.last_mut() {
                Some(v) if v.same_state(e) => {
                    v.last = seen.clone();
                    v.snapshots += 1;
                }
                _ => found.versions.push(version(e, &seen)),
            }
        }
    }

    /// Every match, by data set and path, with when it went.
    pub fn finish(self) -> Vec<Found> {
        let mut out = Vec::new();
        for search in self.sets.into_values() {
            for (mut found, last) in search.found.into_values() {
                found.gone_in = search.order.get(last + 1).cloned();
                out.push(found);
            }
        }
        out
    }
}

fn new_found(set: &DataSet, e: &Entry, seen: &Seen) -> Found {
    Found {
        data_set: set.clone(),
        path: e.path.clone(),
        first: seen.clone(),
        last: seen.clone(),
        gone_in: None,
        snapshots: 0,
        versions: Vec::new(),
    }
}

fn version(e: &Entry, seen: &Seen) -> Version {
    Version {
        kind: e.kind,
        size: e.size,
        sha256: e.sha256.clone(),
        mode: e.mode,
        mtime: e.mtime,
        mtime_ns: e.mtime_ns,
        target: e.target.clone(),
        first: seen.clone(),
        last: seen.clone(),
        snapshots: 1,
    }
}

/// Search every snapshot `sel` admits (taken at or after `since`, when given) for
/// `patterns`. A snapshot whose manifest cannot be read is reported and left out; an
/// identity that cannot open the repository stops the search at once.
pub async fn find(
    repo: &Repository,
    list: &SnapshotList,
    sel: &Selection,
    since: Option<SystemTime>,
    patterns: &[String],
    identities: Arc<Identities>,
) -> Result<FindReport> {
    let mut finder = Finder::new(patterns)?;
    restore::dedup_key(repo, &identities)?;
    let snapshots: Vec<&Snapshot> = list
        .data_sets(sel)
        .into_iter()
        .flatten()
        .filter(|s| since.is_none_or(|t| taken(s) >= t))
        .collect();
    let mut opened = futures::stream::iter(snapshots)
        .map(|s| {
            let ids = identities.clone();
            async move { (s, restore::open_snapshot(repo, s.commit.clone(), ids).await) }
        })
        .buffered(AHEAD);
    let (mut searched, mut unreadable) = (0, Vec::new());
    while let Some((s, result)) = opened.next().await {
        let seen = Seen {
            snapshot_id: s.commit.snapshot_id.clone(),
            time: s.commit.time.clone(),
        };
        match result {
            Ok(o) => {
                finder.add(&s.commit.data_set(), seen, &o.manifest);
                searched += 1;
            }
            Err(e) => unreadable.push(Unreadable {
                snapshot_id: seen.snapshot_id,
                error: e.to_string(),
                exit_code: e.exit_code(),
            }),
        }
    }
    Ok(FindReport {
        patterns: patterns.to_vec(),
        searched,
        found: finder.finish(),
        unreadable,
    })
}

fn taken(s: &Snapshot) -> SystemTime {
    crate::format::parse_time(&s.commit.time).unwrap_or(std::time::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explore::tests::manifest;
    use serde_json::json;

    fn set(host: &str) -> DataSet {
        DataSet {
            host: host.into(),
            job: Some("default".into()),
            source: None,
        }
    }

    fn seen(id: &str) -> Seen {
        Seen {
            snapshot_id: id.into(),
            time: format!("time of {id}"),
        }
    }

    fn file(path: &str, sha: &str) -> serde_json::Value {
        json!({"path": path, "type": "file", "size": 3, "sha256": sha, "offset": 0})
    }

    /// Four snapshots of host `h`: `old.csv` only in the first, `a.csv` changed in the third.
    fn four_snapshots(f: &mut Finder) {
        let snaps = [
            json!([{"path": "x", "type": "dir"}, file("x/old.csv", "o"), file("x/a.csv", "1")]),
            json!([{"path": "x", "type": "dir"}, file("x/a.csv", "1")]),
            json!([{"path": "x", "type": "dir"}, file("x/a.csv", "2")]),
            json!([{"path": "x", "type": "dir"}, file("x/a.csv", "2")]),
        ];
        for (i, entries) in snaps.into_iter().enumerate() {
            let id = format!("s{i}");
            f.add(&set("h"), seen(&id), &manifest(&id, entries));
        }
    }

    #[test]
    fn a_deleted_file_is_found_with_when_it_went() {
        let mut f = Finder::new(&["old.csv".into()]).unwrap();
        four_snapshots(&mut f);
        let found = f.finish();
        assert_eq!(found.len(), 1);
        let old = &found[0];
        assert_eq!(old.path.display(), "x/old.csv");
        assert_eq!(
            (
                old.first.snapshot_id.as_str(),
                old.last.snapshot_id.as_str()
            ),
            ("s0", "s0")
        );
        assert_eq!(old.gone_in, Some(seen("s1")));
        assert_eq!(old.snapshots, 1);
        assert_eq!(old.versions[0].sha256.as_deref(), Some("o"));
    }

    #[test]
    fn versions_are_runs_of_the_same_state() {
        let mut f = Finder::new(&["*.csv".into()]).unwrap();
        four_snapshots(&mut f);
        let found = f.finish();
        let a = found
            .iter()
            .find(|x| x.path.display() == "x/a.csv")
            .unwrap();
        assert_eq!(a.gone_in, None, "still in the newest snapshot");
        assert_eq!(a.snapshots, 4);
        let runs: Vec<_> = a
            .versions
            .iter()
            .map(|v| {
                (
                    v.sha256.clone().unwrap(),
                    v.first.snapshot_id.clone(),
                    v.last.snapshot_id.clone(),
                    v.snapshots,
                )
            })
            .collect();
        assert_eq!(
            runs,
            [
                ("1".into(), "s0".into(), "s1".into(), 2),
                ("2".into(), "s2".into(), "s3".into(), 2)
            ]
        );
    }

    #[test]
    fn data_sets_are_searched_apart() {
        let mut f = Finder::new(&["x/a.csv".into()]).unwrap();
        f.add(
            &set("h1"),
            seen("a0"),
            &manifest("a0", json!([file("x/a.csv", "1")])),
        );
        f.add(
            &set("h2"),
            seen("b0"),
            &manifest("b0", json!([file("x/a.csv", "1")])),
        );
        f.add(&set("h1"), seen("a1"), &manifest("a1", json!([])));
        let found = f.finish();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].data_set.host, "h1");
        assert_eq!(found[0].gone_in, Some(seen("a1")));
        assert_eq!(found[1].gone_in, None, "h2's only snapshot still holds it");
    }

    #[test]
    fn an_entry_matches_by_itself_not_by_its_folder() {
        let mut f = Finder::new(&["x".into()]).unwrap();
        four_snapshots(&mut f);
        let paths: Vec<String> = f.finish().iter().map(|x| x.path.display()).collect();
        assert_eq!(paths, ["x"]);
    }
}
