//! `diff A B [PATH…]`: what changed between two snapshots — entries added, removed, and
//! changed in content (size or SHA-256) or in metadata (type, mode, mtime, symlink target).
//!
//! A directory's mtime changes whenever an entry is added to or removed from it, which the
//! diff already shows as `+` and `-` lines: for directories only type and mode count. The
//! comparison is pure over two verified manifests ([`diff`]); [`between`] opens them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::Scope;
use crate::error::Result;
use crate::format::manifest::{Entry, EntryKind, Manifest, WirePath};
use crate::keys::Identities;
use crate::repository::{Repository, Snapshot};
use crate::restore;

/// How an entry changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Only in B.
    Added,
    /// Only in A.
    Removed,
    /// In both, different.
    Modified,
}

/// One difference of a modified entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "what", rename_all = "lowercase")]
pub enum Difference {
    /// A file's content: size or SHA-256.
    Content {
        /// Size in A.
        from_size: u64,
        /// Size in B.
        to_size: u64,
    },
    /// It is another kind of entry.
    Type {
        /// In A.
        from: EntryKind,
        /// In B.
        to: EntryKind,
    },
    /// Permission bits.
    Mode {
        /// In A.
        from: u32,
        /// In B.
        to: u32,
    },
    /// Modification time (files and symlinks), as seconds and nanoseconds.
    Mtime {
        /// In A.
        from: (i64, u32),
        /// In B.
        to: (i64, u32),
    },
    /// A symlink's target.
    Target {
        /// In A.
        from: WirePath,
        /// In B.
        to: WirePath,
    },
}

/// One changed entry.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Added, removed or modified.
    pub change: ChangeKind,
    /// The path in the snapshots.
    pub path: WirePath,
    /// What it is (in B; in A when removed).
    #[serde(rename = "type")]
    pub kind: EntryKind,
    /// For a modified entry, what differs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<Difference>,
}

/// The differences between snapshots A and B.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    /// Snapshot A (the older, usually).
    pub a: String,
    /// Snapshot B.
    pub b: String,
    /// Changes, by path.
    pub changes: Vec<Change>,
    /// Counts.
    pub added: u64,
    /// Entries only in A.
    pub removed: u64,
    /// Entries in both that differ.
    pub modified: u64,
}

/// Open snapshots `a` and `b` and compare the entries `scope` admits.
pub async fn between(
    repo: &Repository,
    a: &Snapshot,
    b: &Snapshot,
    scope: &Scope,
    identities: Arc<Identities>,
) -> Result<DiffReport> {
    let ma = restore::open_snapshot(repo, a.commit.clone(), identities.clone()).await?;
    let mb = restore::open_snapshot(repo, b.commit.clone(), identities).await?;
    let which = format!("{} or {}", a.commit.snapshot_id, b.commit.snapshot_id);
    scope.check_matched(&[&ma.manifest, &mb.manifest], &which)?;
    Ok(diff(&ma.manifest, &mb.manifest, scope))
}

/// Compare two manifests over the entries `scope` admits, by path.
pub fn diff(a: &Manifest, b: &Manifest, scope: &Scope) -> DiffReport {
    let by_path = |m: &'_ Manifest| -> BTreeMap<Vec<u8>, Entry> {
        m.entries
            .iter()
            .filter(|e| scope.admits(&e.path.0))
            .map(|e| (e.path.0.clone(), e.clone()))
            .collect()
    };
    let (ea, mut eb) = (by_path(a), by_path(b));
    let mut changes = Vec::new();
    for (path, old) in ea {
        let change = match eb.remove(&path) {
            None => Some((ChangeKind::Removed, old.kind, Vec::new())),
            Some(new) => {
                let d = differences(&old, &new);
                (!d.is_empty()).then_some((ChangeKind::Modified, new.kind, d))
            }
        };
        if let Some((change, kind, differences)) = change {
            changes.push(Change {
                change,
                path: old.path,
                kind,
                differences,
            });
        }
    }
    changes.extend(eb.into_values().map(|new| Change {
        change: ChangeKind::Added,
        path: new.path,
        kind: new.kind,
        differences: Vec::new(),
    }));
    changes.sort_by(|x, y| x.path.cmp(&y.path));
    let count = |k| changes.iter().filter(|c| c.change == k).count() as u64;
    DiffReport {
        a: a.snapshot_id.clone(),
        b: b.snapshot_id.clone(),
        added: count(ChangeKind::Added),
        removed: count(ChangeKind::Removed),
        modified: count(ChangeKind::Modified),
        changes,
    }
}

/// What differs between two entries at one path.
fn differences(a: &Entry, b: &Entry) -> Vec<Difference> {
    if a.kind != b.kind {
        return vec![Difference::Type {
            from: a.kind,
            to: b.kind,
        }];
    }
    let mut out = Vec::new();
    if a.kind == EntryKind::File && (a.size != b.size || a.sha256 != b.sha256) {
        out.push(Difference::Content {
            from_size: a.file_size(),
            to_size: b.file_size(),
        });
    }
    if a.kind == EntryKind::Symlink && a.target != b.target {
        let none = || WirePath(Vec::new());
        out.push(Difference::Target {
            from: a.target.clone().unwrap_or_else(none),
            to: b.target.clone().unwrap_or_else(none),
        });
    }
    if a.mode != b.mode {
        out.push(Difference::Mode {
            from: a.mode,
            to: b.mode,
        });
    }
    if a.kind != EntryKind::Dir && (a.mtime, a.mtime_ns) != (b.mtime, b.mtime_ns) {
        out.push(Difference::Mtime {
            from: (a.mtime, a.mtime_ns),
            to: (b.mtime, b.mtime_ns),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explore::tests::manifest;
    use serde_json::json;

    fn a() -> Manifest {
        manifest(
            "A",
            json!([
                {"path": "x", "type": "dir", "mtime": 1},
                {"path": "x/a.csv", "type": "file", "size": 3, "sha256": "1", "offset": 0},
                {"path": "x/gone.txt", "type": "file", "size": 0, "sha256": "e", "offset": 3},
                {"path": "x/same", "type": "file", "size": 1, "sha256": "s", "offset": 3},
                {"path": "x/link", "type": "symlink", "target": "a.csv"},
                {"path": "x/mode", "type": "file", "size": 0, "sha256": "e", "offset": 4, "mode": 420},
                {"path": "x/kind", "type": "file", "size": 0, "sha256": "e", "offset": 4},
            ]),
        )
    }

    fn b() -> Manifest {
        manifest(
            "B",
            json!([
                {"path": "x", "type": "dir", "mtime": 2},
                {"path": "x/a.csv", "type": "file", "size": 4, "sha256": "2", "offset": 0, "mtime": 5},
                {"path": "x/new.txt", "type": "file", "size": 0, "sha256": "e", "offset": 4},
                {"path": "x/same", "type": "file", "size": 1, "sha256": "s", "offset": 9},
                {"path": "x/link", "type": "symlink", "target": "b.csv"},
                {"path": "x/mode", "type": "file", "size": 0, "sha256": "e", "offset": 4, "mode": 384},
                {"path": "x/kind", "type": "dir"},
            ]),
        )
    }

    #[test]
    fn added_removed_and_modified_by_path() {
        let r = diff(&a(), &b(), &Scope::all());
        let lines: Vec<(ChangeKind, String)> = r
            .changes
            .iter()
            .map(|c| (c.change, c.path.display()))
            .collect();
        assert_eq!(
            lines,
            [
                (ChangeKind::Modified, "x/a.csv".into()),
                (ChangeKind::Removed, "x/gone.txt".into()),
                (ChangeKind::Modified, "x/kind".into()),
                (ChangeKind::Modified, "x/link".into()),
                (ChangeKind::Modified, "x/mode".into()),
                (ChangeKind::Added, "x/new.txt".into()),
            ],
            "a directory's mtime and a moved offset are not changes"
        );
        assert_eq!((r.added, r.removed, r.modified), (1, 1, 4));
        assert_eq!(
            r.changes[0].differences,
            [
                Difference::Content {
                    from_size: 3,
                    to_size: 4
                },
                Difference::Mtime {
                    from: (1_764_300_000, 0),
                    to: (5, 0)
                }
            ]
        );
        assert_eq!(
            r.changes[2].differences,
            [Difference::Type {
                from: EntryKind::File,
                to: EntryKind::Dir
            }]
        );
        assert_eq!(
            r.changes[4].differences,
            [Difference::Mode { from: 420, to: 384 }]
        );
    }

    #[test]
    fn the_scope_limits_the_comparison() {
        let s = Scope::new(&[], &["*.csv".into()]).unwrap();
        let r = diff(&a(), &b(), &s);
        assert_eq!(r.changes.len(), 1);
        assert_eq!(r.changes[0].path.display(), "x/a.csv");
        assert!(diff(&a(), &a(), &Scope::all()).changes.is_empty());
    }
}
