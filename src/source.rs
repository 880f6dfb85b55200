//! Walking the backup sources: which directories, files and symlinks go into a snapshot,
//! under which snapshot path, and what could not be read.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use globset::{GlobSet, GlobSetBuilder};
use serde::Serialize;
use walkdir::WalkDir;

use crate::error::{Error, Result};
use crate::format::manifest::WirePath;

/// File metadata as recorded in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits.
    pub mode: u32,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Modification time, nanoseconds.
    pub mtime_ns: u32,
    /// Size in bytes.
    pub size: u64,
    /// Inode number.
    pub ino: u64,
    /// Status change time, seconds.
    pub ctime: i64,
    /// Status change time, nanoseconds.
    pub ctime_ns: u32,
}

impl Meta {
    /// Read from `std::fs::Metadata`.
    pub fn from_fs(m: &std::fs::Metadata) -> Self {
        Meta {
            mode: m.mode() & 0o7777,
            mtime: m.mtime(),
            mtime_ns: m.mtime_nsec().clamp(0, 999_999_999) as u32,
            size: m.len(),
            ino: m.ino(),
            ctime: m.ctime(),
            ctime_ns: m.ctime_nsec().clamp(0, 999_999_999) as u32,
        }
    }
}

/// One thing found in the sources.
#[derive(Debug, Clone)]
pub enum Item {
    /// A directory.
    Dir {
        /// Snapshot path.
        path: WirePath,
        /// Metadata.
        meta: Meta,
    },
    /// A regular file, to be read later.
    File {
        /// Snapshot path.
        path: WirePath,
        /// Where to read it.
        abs: PathBuf,
        /// Metadata at walk time.
        meta: Meta,
    },
    /// A symbolic link.
    Symlink {
        /// Snapshot path.
        path: WirePath,
        /// The link's content.
        target: WirePath,
        /// Metadata.
        meta: Meta,
    },
}

/// A path that was not backed up, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Local path.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// The result of walking every source.
#[derive(Debug, Default)]
pub struct Walked {
    /// Items in snapshot order.
    pub items: Vec<Item>,
    /// Unreadable paths (make the backup partial).
    pub skipped: Vec<Skipped>,
    /// Special files (sockets, devices, FIFOs) left out by design.
    pub ignored: Vec<Skipped>,
}

/// Exclude globs: patterns without `/` match a name at any depth; patterns starting with
/// `/` match the absolute local path; other patterns match the snapshot path.
#[derive(Debug)]
pub struct Excludes {
    names: GlobSet,
    absolute: GlobSet,
    relative: GlobSet,
}

impl Excludes {
    /// Compile the patterns.
    pub fn new(patterns: &[String]) -> Result<Self> {
        let mut names = GlobSetBuilder::new();
        let mut absolute = GlobSetBuilder::new();
        let mut relative = GlobSetBuilder::new();
        for p in patterns {
            let glob = globset::GlobBuilder::new(p.trim_end_matches('/'))
                .literal_separator(true)
                .build()
                .map_err(|e| Error::Usage(format!("exclude pattern '{p}': {e}")))?;
            if !p.contains('/') {
                names.add(glob);
            } else if p.starts_with('/') {
                absolute.add(glob);
            } else {
                relative.add(glob);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build()
                .map_err(|e| Error::Usage(format!("exclude patterns: {e}")))
        };
        Ok(Excludes {
            names: build(names)?,
            absolute: build(absolute)?,
            relative: build(relative)?,
        })
    }

    fn excluded(&self, name: &OsStr, abs: &Path, snapshot_path: &[u8]) -> bool {
        self.names.is_match(Path::new(name))
            || self.absolute.is_match(abs)
            || self
                .relative
                .is_match(Path::new(OsStr::from_bytes(snapshot_path)))
    }
}

/// The top-level name a source gets in the snapshot (its base name).
pub fn source_name(source: &Path) -> Result<Vec<u8>> {
    let named = match source.file_name() {
        Some(n) => Some(n.to_owned()),
        None => std::fs::canonicalize(source)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_owned())),
    };
    named.map(|n| n.as_bytes().to_vec()).ok_or_else(|| {
        Error::Usage(format!(
            "cannot back up '{}': name a directory or file below /",
            source.display()
        ))
    })
}

/// Walk every source in order. A missing source is skipped (reported), not fatal.
pub fn walk(sources: &[PathBuf], excludes: &Excludes) -> Result<Walked> {
    let mut walked = Walked::default();
    let mut names = std::collections::HashSet::new();
    for source in sources {
        let top = source_name(source)?;
        if !names.insert(top.clone()) {
            return Err(Error::Usage(format!(
                "two sources are named '{}' in the snapshot; back them up separately or rename one",
                String::from_utf8_lossy(&top)
            )));
        }
        walk_one(source, &top, excludes, &mut walked);
    }
    Ok(walked)
}

fn walk_one(source: &Path, top: &[u8], excludes: &Excludes, out: &mut Walked) {
    let walker = WalkDir::new(source)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            let rel = snapshot_path(top, source, e.path());
            e.depth() == 0 || !excludes.excluded(e.file_name(), e.path(), &rel)
        });
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(err) => {
                let path = err.path().unwrap_or(source).display().to_string();
                let reason = err
                    .io_error()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| err.to_string());
                out.skipped.push(Skipped { path, reason });
                continue;
            }
        };
        let path = WirePath(snapshot_path(top, source, entry.path()));
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(err) => {
                out.skipped.push(Skipped {
                    path: entry.path().display().to_string(),
                    reason: err.to_string(),
                });
                continue;
            }
        };
        let ft = meta.file_type();
        let m = Meta::from_fs(&meta);
        if ft.is_dir() {
            out.items.push(Item::Dir { path, meta: m });
        } else if ft.is_file() {
            out.items.push(Item::File {
                path,
                abs: entry.path().to_owned(),
                meta: m,
            });
        } else if ft.is_symlink() {
            match std::fs::read_link(entry.path()) {
                Ok(t) => out.items.push(Item::Symlink {
                    path,
                    target: WirePath(t.as_os_str().as_bytes().to_vec()),
                    meta: m,
                }),
                Err(err) => out.skipped.push(Skipped {
                    path: entry.path().display().to_string(),
                    reason: err.to_string(),
                }),
            }
        } else {
            out.ignored.push(Skipped {
                path: entry.path().display().to_string(),
                reason: "special file (socket, FIFO or device) is not backed up".into(),
            });
        }
    }
}

fn snapshot_path(top: &[u8], source: &Path, path: &Path) -> Vec<u8> {
    let mut p = top.to_vec();
    if let Ok(rel) = path.strip_prefix(source) {
        for c in rel.components() {
            p.push(b'/');
            p.extend_from_slice(c.as_os_str().as_bytes());
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn walks_in_order_with_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("exports");
        fs::create_dir_all(root.join("b/tmp")).unwrap();
        fs::write(root.join("a.csv"), "x").unwrap();
        fs::write(root.join("b/c.tmp"), "x").unwrap();
        fs::write(root.join("b/d.json"), "x").unwrap();
        fs::write(root.join("b/tmp/e"), "x").unwrap();
        std::os::unix::fs::symlink("a.csv", root.join("link")).unwrap();
        let ex = Excludes::new(&["*.tmp".into(), "exports/b/tmp".into()]).unwrap();
        let w = walk(std::slice::from_ref(&root), &ex).unwrap();
        let paths: Vec<String> = w
            .items
            .iter()
            .map(|i| match i {
                Item::Dir { path, .. } | Item::File { path, .. } | Item::Symlink { path, .. } => {
                    path.display()
                }
            })
            .collect();
        assert_eq!(
            paths,
            [
                "exports",
                "exports/a.csv",
                "exports/b",
                "exports/b/d.json",
                "exports/link"
            ]
        );
        assert!(w.skipped.is_empty());
    }

    #[test]
    fn a_missing_source_is_skipped_and_duplicates_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ex = Excludes::new(&[]).unwrap();
        let w = walk(&[dir.path().join("nope")], &ex).unwrap();
        assert_eq!(w.skipped.len(), 1);
        fs::create_dir_all(dir.path().join("x/data")).unwrap();
        fs::create_dir_all(dir.path().join("y/data")).unwrap();
        assert!(walk(&[dir.path().join("x/data"), dir.path().join("y/data")], &ex).is_err());
    }
}
