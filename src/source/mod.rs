//! Walking the backup sources: which directories, files and symlinks go into a snapshot,
//! under which snapshot path, and what could not be read.
//!
//! The walk goes through descriptors ([`crate::localfs::tree`]): each directory is opened
//! relative to its parent with `O_NOFOLLOW`, so a user who owns a directory inside the
//! exports cannot swap it for a symlink and make a root-run backup list (or later read)
//! what lies outside the sources. A source given as a symlink (`/var/exports ->
//! /data/exports`) is followed, as `tar -h` does, and recorded as what it points to.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::{GlobSet, GlobSetBuilder};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::AtFlags;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::manifest::WirePath;
use crate::localfs::Stat;
use crate::localfs::tree::open_dir_at;

pub mod spool;
pub use spool::Items;

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
    /// Device (with `ino`, the file's identity: checked when the file is opened to read).
    pub dev: u64,
}

impl Meta {
    /// From `fstat`.
    pub fn from_stat(s: &Stat) -> Self {
        Meta {
            mode: s.mode & 0o7777,
            mtime: s.mtime,
            mtime_ns: s.mtime_ns,
            size: s.size,
            ino: s.ino,
            ctime: s.ctime,
            ctime_ns: s.ctime_ns,
            dev: s.dev,
        }
    }

    /// Did the content or the status of the file change between the two readings?
    pub fn changed_since(&self, earlier: &Meta) -> bool {
        (
            self.size,
            self.mtime,
            self.mtime_ns,
            self.ctime,
            self.ctime_ns,
        ) != (
            earlier.size,
            earlier.mtime,
            earlier.mtime_ns,
            earlier.ctime,
            earlier.ctime_ns,
        )
    }
}

/// A source root: the folder (or the folder of the file) a source names, with the identity
/// it had when walked.
#[derive(Debug)]
pub struct SourceRoot {
    /// Its path, symlinks resolved.
    pub path: PathBuf,
    /// Device and inode when walked: a root replaced since is refused.
    pub dev_ino: (u64, u64),
}

/// Where a file's bytes are: a path below a source root, never opened through a link.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The root.
    pub root: Arc<SourceRoot>,
    /// '/'-separated components below the root.
    pub rel: Vec<u8>,
}

impl SourceFile {
    /// The local path, for messages.
    pub fn display(&self) -> String {
        self.root
            .path
            .join(OsStr::from_bytes(&self.rel))
            .display()
            .to_string()
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
        src: SourceFile,
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
    pub items: Items,
    /// Unreadable paths (make the backup partial).
    pub skipped: Vec<Skipped>,
    /// Special files (sockets, devices, FIFOs) left out by design.
    pub ignored: Vec<Skipped>,
    /// What the excludes removed (only when [`Excludes::recording`] asked for it: a dry
    /// run names them; a backup does not keep a list it never shows).
    pub excluded: Vec<Excluded>,
}

/// An entry an exclude pattern removed (a folder's content is not walked).
#[derive(Debug, Clone, Serialize)]
pub struct Excluded {
    /// Its path in the snapshot it would have had.
    pub path: String,
    /// `file`, `dir`, `symlink` or `other`.
    pub kind: &'static str,
    /// A file's size in bytes (0 for the others).
    pub size: u64,
}

/// Exclude globs: patterns without `/` match a name at any depth; patterns starting with
/// `/` match the absolute local path; other patterns match the snapshot path.
#[derive(Debug)]
pub struct Excludes {
    names: GlobSet,
    absolute: GlobSet,
    relative: GlobSet,
    record: bool,
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
            record: false,
        })
    }

    /// Keep the list of what was excluded ([`Walked::excluded`]), for a dry run.
    pub fn recording(self) -> Self {
        Excludes {
            record: true,
            ..self
        }
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

/// Walk every source in order, keeping the items in memory. A missing source is skipped
/// (reported), not fatal.
pub fn walk(sources: &[PathBuf], excludes: &Excludes) -> Result<Walked> {
    walk_into(sources, excludes, Items::default())
}

/// Walk every source in order into `items` (a spool, for a backup).
pub fn walk_into(sources: &[PathBuf], excludes: &Excludes, items: Items) -> Result<Walked> {
    let mut walked = Walked {
        items,
        ..Walked::default()
    };
    let mut names = std::collections::HashSet::new();
    for source in sources {
        let top = source_name(source)?;
        if !names.insert(top.clone()) {
            return Err(Error::Usage(format!(
                "two sources are named '{}' in the snapshot; back them up separately or rename one",
                String::from_utf8_lossy(&top)
            )));
        }
        if let Err(reason) = walk_one(source, &top, excludes, &mut walked) {
            walked.skipped.push(Skipped {
                path: source.display().to_string(),
                reason,
            });
        }
    }
    Ok(walked)
}

/// A directory being walked: its descriptor, where it is, and the names left to visit.
struct Frame {
    fd: OwnedFd,
    rel: Vec<u8>,
    snap: Vec<u8>,
    names: std::vec::IntoIter<Vec<u8>>,
}

/// Walk one source. The root itself is resolved by path (the operator's choice, symlinks
/// followed); below it, everything goes through descriptors.
fn walk_one(
    source: &Path,
    top: &[u8],
    excludes: &Excludes,
    out: &mut Walked,
) -> std::result::Result<(), String> {
    let resolved = std::fs::canonicalize(source).map_err(|e| e.to_string())?;
    let md = std::fs::metadata(&resolved).map_err(|e| e.to_string())?;
    if md.is_file() {
        out.items.push(single_file(&resolved, top)?);
    } else if md.is_dir() {
        walk_tree(source, resolved, top, excludes, out)?;
    } else {
        out.ignored.push(Skipped {
            path: source.display().to_string(),
            reason: "special file (socket, FIFO or device) is not backed up".into(),
        });
    }
    Ok(())
}

/// A source that is one file: read through its parent directory's descriptor.
fn single_file(resolved: &Path, top: &[u8]) -> std::result::Result<Item, String> {
    let parent = resolved.parent().unwrap_or(Path::new("/"));
    let name = resolved
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default();
    let tree = crate::localfs::tree::DirTree::open(parent).map_err(|e| e.to_string())?;
    let st = rustix::fs::statat(
        tree.root(),
        OsStr::from_bytes(&name),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| e.to_string())?;
    let parent_st = Stat::of(tree.root()).map_err(|e| e.to_string())?;
    let root = Arc::new(SourceRoot {
        path: parent.to_path_buf(),
        dev_ino: (parent_st.dev, parent_st.ino),
    });
    Ok(Item::File {
        path: WirePath(top.to_vec()),
        src: SourceFile { root, rel: name },
        meta: Meta::from_stat(&Stat::from_raw(&st)),
    })
}

/// Walk the directory `resolved` depth first, names in bytewise order.
fn walk_tree(
    source: &Path,
    resolved: PathBuf,
    top: &[u8],
    excludes: &Excludes,
    out: &mut Walked,
) -> std::result::Result<(), String> {
    let tree = crate::localfs::tree::DirTree::open(&resolved).map_err(|e| e.to_string())?;
    let root_fd = rustix::io::fcntl_dupfd_cloexec(tree.root(), 0).map_err(|e| e.to_string())?;
    let st = Stat::of(&root_fd).map_err(|e| e.to_string())?;
    let root = Arc::new(SourceRoot {
        path: resolved,
        dev_ino: (st.dev, st.ino),
    });
    out.items.push(Item::Dir {
        path: WirePath(top.to_vec()),
        meta: Meta::from_stat(&st),
    });
    let names = list_dir(&root_fd).map_err(|e| e.to_string())?;
    let mut stack = vec![Frame {
        fd: root_fd,
        rel: Vec::new(),
        snap: top.to_vec(),
        names: names.into_iter(),
    }];
    while let Some(frame) = stack.last_mut() {
        let Some(name) = frame.names.next() else {
            stack.pop();
            continue;
        };
        let join = |base: &[u8]| {
            let mut p = base.to_vec();
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(&name);
            p
        };
        let (rel, snap) = (join(&frame.rel), join(&frame.snap));
        let local = source.join(OsStr::from_bytes(&rel));
        if excludes.excluded(OsStr::from_bytes(&name), &local, &snap) {
            if excludes.record {
                out.excluded.push(excluded(frame.fd.as_fd(), &name, &snap));
            }
            continue;
        }
        let found = Found {
            name: &name,
            rel,
            snap,
            local: &local,
        };
        if let Some(dir) = visit(frame.fd.as_fd(), found, &root, out) {
            stack.push(dir);
        }
    }
    Ok(())
}

/// What an excluded entry is, as `lstat` sees it (a dry run's list).
fn excluded(dir: BorrowedFd<'_>, name: &[u8], snap: &[u8]) -> Excluded {
    use rustix::fs::FileType as T;
    let st = rustix::fs::statat(dir, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW)
        .ok()
        .map(|st| Stat::from_raw(&st));
    let (kind, size) = match st.as_ref().map(Stat::kind) {
        Some(T::RegularFile) => ("file", st.map_or(0, |s| s.size)),
        Some(T::Directory) => ("dir", 0),
        Some(T::Symlink) => ("symlink", 0),
        _ => ("other", 0),
    };
    Excluded {
        path: String::from_utf8_lossy(snap).into_owned(),
        kind,
        size,
    }
}

/// An entry found in a directory being walked.
struct Found<'a> {
    name: &'a [u8],
    /// Its path below the source root.
    rel: Vec<u8>,
    /// Its path in the snapshot.
    snap: Vec<u8>,
    /// Its local path, for messages and excludes.
    local: &'a Path,
}

/// Record one entry of the directory `dir`; a subdirectory to descend into is returned.
/// What cannot be read is skipped with why (the backup is partial); special files are
/// ignored by design.
fn visit(
    dir: BorrowedFd<'_>,
    f: Found<'_>,
    root: &Arc<SourceRoot>,
    out: &mut Walked,
) -> Option<Frame> {
    let skip = |out: &mut Walked, reason: String| {
        out.skipped.push(Skipped {
            path: f.local.display().to_string(),
            reason,
        })
    };
    let st = match rustix::fs::statat(dir, OsStr::from_bytes(f.name), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Stat::from_raw(&st),
        Err(e) => {
            skip(out, std::io::Error::from(e).to_string());
            return None;
        }
    };
    use rustix::fs::FileType as T;
    match st.kind() {
        T::Directory => match descend(dir, f.name, &st) {
            Ok((fd, names)) => {
                out.items.push(Item::Dir {
                    path: WirePath(f.snap.clone()),
                    meta: Meta::from_stat(&st),
                });
                return Some(Frame {
                    fd,
                    rel: f.rel,
                    snap: f.snap,
                    names: names.into_iter(),
                });
            }
            Err(why) => skip(out, why),
        },
        T::RegularFile => out.items.push(Item::File {
            path: WirePath(f.snap),
            src: SourceFile {
                root: root.clone(),
                rel: f.rel,
            },
            meta: Meta::from_stat(&st),
        }),
        T::Symlink => match rustix::fs::readlinkat(dir, OsStr::from_bytes(f.name), Vec::new()) {
            Ok(t) => out.items.push(Item::Symlink {
                path: WirePath(f.snap),
                target: WirePath(t.into_bytes()),
                meta: Meta::from_stat(&st),
            }),
            Err(e) => skip(out, std::io::Error::from(e).to_string()),
        },
        _ => out.ignored.push(Skipped {
            path: f.local.display().to_string(),
            reason: "special file (socket, FIFO or device) is not backed up".into(),
        }),
    }
    None
}

/// Open the subdirectory `name` of `dir` and list it. Opened without following a link, and
/// checked to be the directory `st` just looked at: a swap in between is skipped, never
/// followed.
fn descend(
    dir: BorrowedFd<'_>,
    name: &[u8],
    st: &Stat,
) -> std::result::Result<(OwnedFd, Vec<Vec<u8>>), String> {
    let fd =
        open_dir_at(dir, name, false).map_err(|e| format!("cannot open the directory: {e}"))?;
    match Stat::of(&fd) {
        Ok(now) if (now.dev, now.ino) == (st.dev, st.ino) => {}
        _ => return Err("the directory was replaced while it was walked".into()),
    }
    let names = list_dir(&fd).map_err(|e| e.to_string())?;
    Ok((fd, names))
}

/// The names in a directory, sorted bytewise (the order snapshots and the files cache use).
fn list_dir(fd: &OwnedFd) -> std::io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(fd)? {
        let n = entry?.file_name().to_bytes().to_vec();
        if n != b"." && n != b".." {
            names.push(n);
        }
    }
    names.sort_unstable();
    Ok(names)
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
            .into_vec()
            .unwrap()
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
    fn a_source_given_as_a_symlink_is_followed_and_recorded_as_what_it_points_to() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data/exports");
        fs::create_dir_all(data.join("sub")).unwrap();
        fs::write(data.join("sub/a.csv"), "x").unwrap();
        fs::write(dir.path().join("data/one.csv"), "y").unwrap();
        let var = dir.path().join("var");
        fs::create_dir(&var).unwrap();
        std::os::unix::fs::symlink(&data, var.join("exports")).unwrap();
        std::os::unix::fs::symlink("../data/one.csv", var.join("one.csv")).unwrap();
        let ex = Excludes::new(&[]).unwrap();
        let w = walk(&[var.join("exports"), var.join("one.csv")], &ex).unwrap();
        let items = w.items.into_vec().unwrap();
        let kinds: Vec<(String, &str)> = items
            .iter()
            .map(|i| match i {
                Item::Dir { path, .. } => (path.display(), "dir"),
                Item::File { path, .. } => (path.display(), "file"),
                Item::Symlink { path, .. } => (path.display(), "symlink"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("exports".to_owned(), "dir"),
                ("exports/sub".to_owned(), "dir"),
                ("exports/sub/a.csv".to_owned(), "file"),
                ("one.csv".to_owned(), "file"),
            ]
        );
        assert!(w.skipped.is_empty(), "{:?}", w.skipped);
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
