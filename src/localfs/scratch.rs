//! Private scratch folders (a drill's clean room): created 0700 so restored customer data is
//! never readable by other users, locked (`flock`) for as long as the run lives so a later
//! run tells a dead run's leftovers from a live one's and removes them, and removed even
//! when the restored tree holds read-only directories.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};

use super::Stat;

/// A private folder under the system temporary directory, locked while this value lives.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
    /// The folder's own descriptor: it holds the lock until dropped.
    _lock: OwnedFd,
}

impl Scratch {
    /// Create `$TMPDIR/<prefix><id>` (mode 0700, exclusively) and lock it.
    pub fn create(prefix: &str, id: &str) -> io::Result<Scratch> {
        let path = std::env::temp_dir().join(format!("{prefix}{id}"));
        fs::DirBuilder::new().mode(0o700).create(&path)?;
        let fd = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        // The umask cannot widen 0700, but a folder someone else made in our place could be
        // anything: it must be ours and private.
        let st = Stat::of(&fd)?;
        if st.uid != rustix::process::geteuid().as_raw() || st.mode & 0o077 != 0 {
            return Err(io::Error::other(format!(
                "{} is not a private folder of this user",
                path.display()
            )));
        }
        rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive)?;
        Ok(Scratch { path, _lock: fd })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove it and everything in it.
    pub fn remove(self) -> io::Result<()> {
        remove_tree(&self.path)
    }
}

/// How long a folder may stay unlocked before a sweep counts it as a dead run's: a live run
/// locks its folder a moment after making it, and a sweep must not take it in between.
pub const SWEEP_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Remove the leftovers of dead runs: `$TMPDIR/<prefix>*` folders of this user whose lock
/// nobody holds and that were last modified more than [`SWEEP_AFTER`] ago. Returns what was
/// removed and what could not be.
pub fn sweep(prefix: &str) -> Vec<(PathBuf, io::Result<()>)> {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    let me = rustix::process::geteuid().as_raw();
    let mut swept = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.as_bytes().starts_with(prefix.as_bytes()) {
            continue;
        }
        let path = entry.path();
        let Ok(m) = fs::symlink_metadata(&path) else {
            continue;
        };
        let age = m.modified().ok().and_then(|t| t.elapsed().ok());
        if !m.is_dir() || m.uid() != me || age.is_none_or(|a| a < SWEEP_AFTER) {
            continue;
        }
        let Ok(fd) = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        // Held by a live run: leave it.
        if rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_err() {
            continue;
        }
        drop(fd);
        let result = remove_tree(&path);
        swept.push((path, result));
    }
    swept
}

/// Remove `path` and everything below it, through descriptors (never following a link),
/// first making each directory of our own writable: a restored tree may hold read-only
/// (0555) directories, whose entries cannot otherwise be removed.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let (parent, name) = match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => (
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            },
            n,
        ),
        _ => {
            return Err(io::Error::other(format!(
                "refusing to remove {}",
                path.display()
            )));
        }
    };
    let parent = rustix::fs::open(
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    remove_entry(parent.as_fd(), name.as_bytes(), 0)
}

/// Deeper than any manifest path can go (4096 bytes): a bound on recursion.
const MAX_DEPTH: usize = 4096;

fn remove_entry(parent: BorrowedFd<'_>, name: &[u8], depth: usize) -> io::Result<()> {
    let os = OsStr::from_bytes(name);
    let st = Stat::from_raw(&rustix::fs::statat(parent, os, AtFlags::SYMLINK_NOFOLLOW)?);
    if !st.is_dir() {
        return Ok(rustix::fs::unlinkat(parent, os, AtFlags::empty())?);
    }
    if depth > MAX_DEPTH {
        return Err(io::Error::other("directory tree too deep to remove"));
    }
    let dir = super::tree::open_dir_at(parent, name, false)?;
    if st.mode & 0o700 != 0o700 && st.uid == rustix::process::geteuid().as_raw() {
        rustix::fs::fchmod(&dir, Mode::from_raw_mode((st.mode & 0o7777) | 0o700))?;
    }
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&dir)? {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    for n in names {
        remove_entry(dir.as_fd(), &n, depth + 1)?;
    }
    Ok(rustix::fs::unlinkat(parent, os, AtFlags::REMOVEDIR)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn scratch_is_private_and_read_only_trees_are_removed() {
        let s = Scratch::create("snapdrill-unit-", &format!("{}", std::process::id())).unwrap();
        assert_eq!(fs::metadata(s.path()).unwrap().mode() & 0o777, 0o700);
        let ro = s.path().join("exports/ro");
        fs::create_dir_all(&ro).unwrap();
        fs::write(ro.join("f"), "x").unwrap();
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        fs::set_permissions(s.path().join("exports"), fs::Permissions::from_mode(0o555)).unwrap();
        let path = s.path().to_path_buf();
        // Locked while it lives: a sweep leaves it.
        assert!(sweep("snapdrill-unit-").iter().all(|(p, _)| *p != path));
        s.remove().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn a_dead_runs_folder_is_swept_and_a_link_inside_is_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("keep"), "x").unwrap();
        let s = Scratch::create("snapdrill-unit2-", &format!("{}", std::process::id())).unwrap();
        let path = s.path().to_path_buf();
        std::os::unix::fs::symlink(outside.path(), path.join("link")).unwrap();
        drop(s); // the run died: its lock is gone with its descriptor
        assert!(
            sweep("snapdrill-unit2-").is_empty(),
            "too young to be a dead run's"
        );
        let old = std::time::SystemTime::now() - 2 * SWEEP_AFTER;
        filetime::set_file_mtime(&path, filetime::FileTime::from_system_time(old)).unwrap();
        let swept = sweep("snapdrill-unit2-");
        assert!(
            swept.iter().any(|(p, r)| *p == path && r.is_ok()),
            "{swept:?}"
        );
        assert!(!path.exists());
        assert!(outside.path().join("keep").exists());
    }
}
