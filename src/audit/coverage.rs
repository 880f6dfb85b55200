//! The coverage file (`<state_dir>/coverage/<repository-id>.json`): when each object of
//! each store was last downloaded and found to match its signed SHA-256. It orders
//! `--read-data-subset SIZE` and `--budget` (least recently read first) and gives the
//! coverage the report states. Losing it loses nothing but that history.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// How recent a read must be to count as coverage.
pub const WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

const VERSION: u32 = 1;

/// Where the coverage file of a repository lives.
pub fn path(state_dir: &Path, repository_id: &str) -> PathBuf {
    state_dir
        .join("coverage")
        .join(format!("{repository_id}.json"))
}

/// Seconds since the Unix epoch.
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Per store, per object: Unix seconds of the last verified read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoverageFile {
    version: u32,
    stores: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Default for CoverageFile {
    fn default() -> Self {
        CoverageFile {
            version: VERSION,
            stores: BTreeMap::new(),
        }
    }
}

impl CoverageFile {
    /// Load the file; a missing one is empty, an unreadable one is replaced (and said so).
    pub fn load(path: &Path) -> (Self, Option<String>) {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Self::default(), None),
            Err(e) => {
                return (
                    Self::default(),
                    Some(format!(
                        "cannot read the coverage file {} ({e}); starting a new one",
                        path.display()
                    )),
                );
            }
        };
        match serde_json::from_slice::<CoverageFile>(&bytes) {
            Ok(c) if c.version <= VERSION => (c, None),
            Ok(c) => (
                Self::default(),
                Some(format!(
                    "the coverage file {} has version {}, newer than this snapdrill; starting a new one",
                    path.display(),
                    c.version
                )),
            ),
            Err(e) => (
                Self::default(),
                Some(format!(
                    "the coverage file {} is garbled ({e}); starting a new one",
                    path.display()
                )),
            ),
        }
    }

    /// Write the file atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        crate::localfs::atomic::write(
            path,
            text.as_bytes(),
            crate::localfs::atomic::NewMode::Private,
            false,
        )
    }

    /// When `object` was last read and verified in `store`.
    pub fn last_read(&self, store: &str, object: &str) -> Option<u64> {
        self.stores.get(store)?.get(object).copied()
    }

    /// Remember a verified read.
    pub fn record(&mut self, store: &str, object: &str, secs: u64) {
        self.stores
            .entry(store.to_owned())
            .or_default()
            .insert(object.to_owned(), secs);
    }

    /// Forget a read: the object failed its last check.
    pub fn forget(&mut self, store: &str, object: &str) {
        if let Some(objects) = self.stores.get_mut(store) {
            objects.remove(object);
        }
    }

    /// Forget the objects of `store` that `keep` rejects (gone from the store).
    pub fn retain(&mut self, store: &str, keep: impl Fn(&str) -> bool) {
        if let Some(objects) = self.stores.get_mut(store) {
            objects.retain(|o, _| keep(o));
        }
    }
}

/// The share of a store's objects read and verified within [`WINDOW`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageSummary {
    /// The window, in days.
    pub window_days: u64,
    /// Objects the store's commits list and it holds.
    pub objects: u64,
    /// Of those, read within the window.
    pub objects_read: u64,
    /// Bytes of `objects`.
    pub bytes: u64,
    /// Bytes of `objects_read`.
    pub bytes_read: u64,
    /// `objects_read / objects` (1 when there is nothing to read).
    pub object_ratio: f64,
    /// `bytes_read / bytes`.
    pub byte_ratio: f64,
    /// Every object read within the window.
    pub complete: bool,
}

/// Coverage in `store` of `objects` (each a name and a size).
pub fn summarize(
    cov: &CoverageFile,
    store: &str,
    objects: impl Iterator<Item = (String, u64)>,
    now: SystemTime,
) -> CoverageSummary {
    let cutoff = unix_secs(now).saturating_sub(WINDOW.as_secs());
    let (mut count, mut bytes, mut recent, mut bytes_read) = (0u64, 0u64, 0u64, 0u64);
    for (name, size) in objects {
        count += 1;
        bytes += size;
        if cov.last_read(store, &name).is_some_and(|t| t >= cutoff) {
            recent += 1;
            bytes_read += size;
        }
    }
    let ratio = |part: u64, all: u64| {
        if all == 0 {
            1.0
        } else {
            part as f64 / all as f64
        }
    };
    CoverageSummary {
        window_days: WINDOW.as_secs() / 86400,
        objects: count,
        objects_read: recent,
        bytes,
        bytes_read,
        object_ratio: ratio(recent, count),
        byte_ratio: ratio(bytes_read, bytes),
        complete: recent == count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_reads_do_not_count_and_garbage_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "r");
        let now = SystemTime::now();
        let o = |n: &str, size| (n.to_owned(), size);
        let mut cov = CoverageFile::default();
        cov.record("a", "x", unix_secs(now));
        cov.record("a", "y", unix_secs(now) - WINDOW.as_secs() - 10);
        cov.save(&p).unwrap();
        let (back, note) = CoverageFile::load(&p);
        assert!(note.is_none());
        let s = summarize(&back, "a", [o("x", 30), o("y", 10)].into_iter(), now);
        assert_eq!((s.objects_read, s.bytes_read, s.complete), (1, 30, false));
        assert_eq!(s.byte_ratio, 0.75);
        std::fs::write(&p, "{not json").unwrap();
        let (fresh, note) = CoverageFile::load(&p);
        assert!(note.unwrap().contains("garbled"));
        assert_eq!(fresh.last_read("a", "x"), None);
    }
}
