//! Data-set health at backup time: is the export whole before it is saved, and did it
//! shrink since the last backup? Restic, Borg and Kopia save whatever they find; a
//! continuity tool that saves a half-written export every night proves nothing.
//!
//! - `complete_marker`: the export tool writes this file last. Absent in a source folder →
//!   the job fails and no snapshot is written. Replaced while the backup read the folder
//!   (a new export started) → the same.
//! - `expect`: files that must be there; one missing → the job fails, no snapshot.
//! - `shrink_alert`: a file, or the whole data set, shrinking by more than this share
//!   against the data set's previous backup on this host → the backup is partial (exit 3)
//!   with the file named; the snapshot is still written. Files with a line count are
//!   measured in lines, others in bytes (only files of at least [`TRACKED_BYTES`]); files
//!   that appear or disappear are not compared (renamed daily files would be noise; use
//!   `expect` for the ones that must be there). The previous backup is remembered in the
//!   state folder, because a backup host cannot read the manifests it writes.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Health;
use crate::error::{Error, Result};
use crate::format::manifest::{Entry, EntryKind};
use crate::localfs::atomic::{self, NewMode};

/// Files below this size are not tracked by bytes for `shrink_alert`.
pub(super) const TRACKED_BYTES: u64 = 1 << 20;
/// At most this many files are compared one by one (the largest); the total always is.
pub(super) const TRACKED_FILES: usize = 10_000;

/// A complete marker as found before the backup read its folder.
pub(super) struct Marker {
    path: PathBuf,
    /// (device, inode, mtime, mtime_ns): a marker rewritten by a new export differs.
    stamp: (u64, u64, i64, i64),
}

/// Before reading: every source folder holds its complete marker, and every expected
/// file is there. Either missing fails the job with no snapshot.
pub(super) fn check_before(health: &Health, paths: &[PathBuf]) -> Result<Vec<Marker>> {
    let mut markers = Vec::new();
    if let Some(name) = &health.complete_marker {
        for dir in paths {
            let path = dir.join(name);
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => markers.push(Marker {
                    stamp: stamp(&m),
                    path,
                }),
                _ => return Err(incomplete(&path, "is missing")),
            }
        }
    }
    for rel in &health.expect {
        if !paths.iter().any(|dir| dir.join(rel).exists()) {
            return Err(Error::Fatal {
                message: format!(
                    "the expected file {rel} is in none of the job's folders ({}): no snapshot was written",
                    list(paths)
                ),
                hint: Some("check the export that writes it; back up again once it is there (or remove it from `expect`)".into()),
            });
        }
    }
    Ok(markers)
}

/// After reading, before committing: each marker is still the one found before.
pub(super) fn check_after(markers: &[Marker]) -> Result<()> {
    for m in markers {
        match std::fs::symlink_metadata(&m.path) {
            Ok(now) if now.is_file() && stamp(&now) == m.stamp => {}
            _ => {
                return Err(incomplete(
                    &m.path,
                    "was removed or replaced while the backup read the folder (a new export started)",
                ));
            }
        }
    }
    Ok(())
}

fn stamp(m: &std::fs::Metadata) -> (u64, u64, i64, i64) {
    (m.dev(), m.ino(), m.mtime(), m.mtime_nsec())
}

fn incomplete(path: &Path, what: &str) -> Error {
    Error::Fatal {
        message: format!(
            "the export is not complete: its marker {} {what}; no snapshot was written",
            path.display()
        ),
        hint: Some(
            "the export tool writes the marker last: back up after it has finished (a later cron slot, or chain the backup after the export)".into(),
        ),
    }
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a data set looked like at its last backup on this host.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Baseline {
    /// Content bytes of the whole data set.
    total_bytes: u64,
    /// Path -> (bytes, lines) of the tracked files.
    files: BTreeMap<String, (u64, Option<u64>)>,
}

impl Baseline {
    /// Measure the next file of the backup. Files are tracked one by one up to
    /// [`TRACKED_FILES`]; beyond that the largest are kept (a data set of a million small
    /// exports is watched by its total and its largest files, in bounded memory).
    pub(super) fn add(&mut self, e: &Entry) {
        if e.kind != EntryKind::File {
            return;
        }
        self.total_bytes += e.file_size();
        if e.lines.is_some() || e.file_size() >= TRACKED_BYTES {
            let path = String::from_utf8_lossy(&e.path.0).into_owned();
            self.files.insert(path, (e.file_size(), e.lines));
            if self.files.len() >= 2 * TRACKED_FILES {
                self.finish();
            }
        }
    }

    /// Keep only the [`TRACKED_FILES`] largest tracked files.
    pub(super) fn finish(&mut self) {
        if self.files.len() <= TRACKED_FILES {
            return;
        }
        let mut all: Vec<_> = std::mem::take(&mut self.files).into_iter().collect();
        all.select_nth_unstable_by(TRACKED_FILES, |a, b| b.1.0.cmp(&a.1.0));
        all.truncate(TRACKED_FILES);
        self.files = all.into_iter().collect();
    }

    /// The remembered baseline at `path`, if any (unreadable = none: a first backup).
    pub(super) fn load(path: &Path) -> Option<Baseline> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Remember this baseline for the next backup.
    pub(super) fn save(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        atomic::write(path, &json, NewMode::Private, false)
    }

    /// What shrank by more than `percent` since `before`, one sentence each.
    pub(super) fn shrunk_since(&self, before: &Baseline, percent: u32) -> Vec<String> {
        let mut out = Vec::new();
        let too_much =
            |old: u64, new: u64| new < old && (old - new) * 100 > old * u64::from(percent);
        for (path, &(bytes, lines)) in &self.files {
            let Some(&(old_bytes, old_lines)) = before.files.get(path) else {
                continue;
            };
            let (old, new, unit) = match (old_lines, lines) {
                (Some(o), Some(n)) => (o, n, "lines"),
                _ => (old_bytes, bytes, "bytes"),
            };
            if too_much(old, new) {
                out.push(format!(
                    "{path} shrank from {old} to {new} {unit} (-{}%) since the previous backup of this data set, more than shrink_alert {percent}%",
                    (old - new) * 100 / old
                ));
            }
        }
        if too_much(before.total_bytes, self.total_bytes) {
            out.push(format!(
                "the data set shrank from {} to {} bytes (-{}%) since its previous backup, more than shrink_alert {percent}%",
                before.total_bytes,
                self.total_bytes,
                (before.total_bytes - self.total_bytes) * 100 / before.total_bytes
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(total: u64, files: &[(&str, u64, Option<u64>)]) -> Baseline {
        Baseline {
            total_bytes: total,
            files: files
                .iter()
                .map(|(p, b, l)| (p.to_string(), (*b, *l)))
                .collect(),
        }
    }

    #[test]
    fn a_marker_replaced_during_the_backup_fails_it() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join(".complete");
        std::fs::write(&marker, b"").unwrap();
        let health = Health {
            complete_marker: Some(".complete".into()),
            ..Health::default()
        };
        let paths = [dir.path().to_path_buf()];
        let found = check_before(&health, &paths).unwrap();
        check_after(&found).unwrap();
        // A new export removes the marker and, when done, writes a new one.
        std::fs::remove_file(&marker).unwrap();
        let err = check_after(&found).unwrap_err().to_string();
        assert!(err.contains("removed or replaced"), "{err}");
        let hold = dir.path().join("hold");
        std::fs::write(&hold, b"").unwrap(); // keeps the old inode number from coming back
        std::fs::write(&marker, b"").unwrap();
        assert!(check_after(&found).is_err());
    }

    #[test]
    fn shrinking_is_measured_in_lines_when_counted_and_against_the_threshold() {
        let before = baseline(100, &[("a.csv", 50, Some(1000)), ("big.bin", 40, None)]);
        let now = baseline(95, &[("a.csv", 60, Some(600)), ("big.bin", 39, None)]);
        let alerts = now.shrunk_since(&before, 30);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert!(
            alerts[0].starts_with("a.csv shrank from 1000 to 600 lines (-40%)"),
            "{alerts:?}"
        );
        assert!(
            now.shrunk_since(&before, 40).is_empty(),
            "exactly 40% is not more than 40%"
        );
        let emptied = baseline(10, &[]);
        let alerts = emptied.shrunk_since(&before, 30);
        assert_eq!(
            alerts.len(),
            1,
            "a vanished file is not compared, the total is: {alerts:?}"
        );
        assert!(
            alerts[0].contains("data set shrank from 100 to 10"),
            "{alerts:?}"
        );
    }
}
