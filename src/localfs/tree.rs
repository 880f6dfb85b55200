//! A directory tree reached only through descriptors.
//!
//! The root is opened by path (it is the operator's: a backup source, a restore target) —
//! following a symlink there is the operator's choice. Every directory below it is opened
//! relative to its parent with `O_NOFOLLOW | O_DIRECTORY`: a local user who swaps a
//! directory for a symlink after it was walked or created makes the next open fail, instead
//! of redirecting a root-run backup to read, or a root-run restore to write, elsewhere.
//!
//! Work proceeds in tree order, so the tree keeps the chain of directories it opened last
//! and reopens only what changed: one `openat` per new directory, not per file.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};

use super::Stat;

/// Flags of every directory open below the root.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NONBLOCK);

/// A root directory and the chain of directories below it opened last.
#[derive(Debug)]
pub struct DirTree {
    root: Arc<OwnedFd>,
    root_path: PathBuf,
    /// Components below the root, each with its open directory.
    chain: Vec<(Vec<u8>, Arc<OwnedFd>)>,
}

impl DirTree {
    /// Open `path` as the root (following symlinks in `path` itself).
    pub fn open(path: &Path) -> io::Result<Self> {
        let root = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )?;
        Ok(DirTree {
            root: Arc::new(root),
            root_path: path.to_path_buf(),
            chain: Vec::new(),
        })
    }

    /// Another handle on the same root, with its own chain (one per thread).
    pub fn share(&self) -> Self {
        DirTree {
            root: self.root.clone(),
            root_path: self.root_path.clone(),
            chain: Vec::new(),
        }
    }

    /// The root's descriptor.
    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// The root's path, for messages.
    pub fn root_path(&self) -> &Path {
        &self.root_path
    }

    /// The local path of `rel` below the root, for messages only (never opened by path).
    pub fn display(&self, rel: &[u8]) -> PathBuf {
        if rel.is_empty() {
            self.root_path.clone()
        } else {
            self.root_path.join(OsStr::from_bytes(rel))
        }
    }

    /// The directory `rel` ('/'-separated components below the root; empty for the root),
    /// opened component by component without following any link. With `create`, missing
    /// directories are made with mode 0700 (their own mode is applied when a restore ends).
    /// A component that is a symlink, a file or anything else fails with
    /// [`io::ErrorKind::NotADirectory`]-like errors (`ELOOP` or `ENOTDIR`).
    pub fn dir(&mut self, rel: &[u8], create: bool) -> io::Result<Arc<OwnedFd>> {
        let parts: Vec<&[u8]> = if rel.is_empty() {
            Vec::new()
        } else {
            rel.split(|&b| b == b'/').collect()
        };
        let same = self
            .chain
            .iter()
            .zip(&parts)
            .take_while(|((name, _), part)| name.as_slice() == **part)
            .count();
        self.chain.truncate(same);
        for part in &parts[same..] {
            if part.is_empty() || *part == b"." || *part == b".." {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a plain path component",
                ));
            }
            let parent = self.chain.last().map_or(&self.root, |(_, fd)| fd).clone();
            let fd = open_dir_at(parent.as_fd(), part, create)?;
            self.chain.push((part.to_vec(), Arc::new(fd)));
        }
        Ok(self.chain.last().map_or(&self.root, |(_, fd)| fd).clone())
    }

    /// Open the regular file `rel` for reading without following a link or blocking on a
    /// FIFO, and check it is `expected` (device and inode, when given) and a regular file.
    pub fn open_file(
        &mut self,
        rel: &[u8],
        expected: Option<(u64, u64)>,
    ) -> io::Result<(OwnedFd, Stat)> {
        let (dir, name) = split_parent(rel);
        let parent = self.dir(dir, false)?;
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        // O_NOATIME spares the source's access times, but only the owner (or root) may ask.
        let fd = rustix::fs::openat(
            parent.as_fd(),
            OsStr::from_bytes(name),
            flags | OFlags::NOATIME,
            Mode::empty(),
        )
        .or_else(|_| {
            rustix::fs::openat(
                parent.as_fd(),
                OsStr::from_bytes(name),
                flags,
                Mode::empty(),
            )
        })?;
        let st = Stat::of(&fd)?;
        if !st.is_file() {
            return Err(io::Error::other(format!(
                "it is now {}, not a regular file",
                st.kind_name()
            )));
        }
        if let Some((dev, ino)) = expected
            && (st.dev, st.ino) != (dev, ino)
        {
            return Err(io::Error::other(
                "it is not the file the walk saw (another file was put in its place)",
            ));
        }
        Ok((fd, st))
    }
}

/// `rel` as (parent directory, last component).
pub fn split_parent(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&[], rel),
    }
}

/// Open (or, with `create`, make and open) the directory `name` in `parent`, never through a
/// link.
pub fn open_dir_at(parent: BorrowedFd<'_>, name: &[u8], create: bool) -> io::Result<OwnedFd> {
    let name = OsStr::from_bytes(name);
    match rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty()) {
        Err(rustix::io::Errno::NOENT) if create => {
            match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty())?)
        }
        other => Ok(other?),
    }
}

/// Does this error mean "a path component is not a real directory" (a symlink or a file)?
pub fn not_a_directory(e: &io::Error) -> bool {
    matches!(
        rustix::io::Errno::from_io_error(e),
        Some(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_symlink_on_the_way_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("secret"), "s").unwrap();
        fs::write(root.join("a/b/f"), "f").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let mut t = DirTree::open(&root).unwrap();
        assert!(t.open_file(b"a/b/f", None).is_ok());
        let e = t.open_file(b"link/secret", None).unwrap_err();
        assert!(not_a_directory(&e), "{e}");
        let e = t.dir(b"link", true).unwrap_err();
        assert!(not_a_directory(&e), "{e}");
        // A directory swapped for a symlink after it was opened once.
        fs::rename(root.join("a/b"), root.join("a/old")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a/b")).unwrap();
        let mut fresh = t.share();
        assert!(fresh.open_file(b"a/b/secret", None).is_err());
        // Creating makes real directories only.
        t.dir(b"new/deeper", true).unwrap();
        assert!(root.join("new/deeper").is_dir());
    }

    #[test]
    fn a_fifo_or_another_file_is_refused_after_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("f"), "f").unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            root.join("fifo"),
            Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let mut t = DirTree::open(root).unwrap();
        let e = t.open_file(b"fifo", None).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let (_, st) = t.open_file(b"f", None).unwrap();
        let e = t.open_file(b"f", Some((st.dev, st.ino + 1))).unwrap_err();
        assert!(e.to_string().contains("not the file the walk saw"), "{e}");
    }
}
