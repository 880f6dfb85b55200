//! Filesystem side of a restore, built so that nothing is ever written, created or chmod-ed
//! outside the target (RELIABILITY.md rule 7):
//! - every directory on the way is checked to be a real directory, never a symlink;
//! - file content goes to a temp file created with `O_EXCL | O_NOFOLLOW`, is checked (size,
//!   SHA-256), gets its mode and times through the open descriptor, and only then is renamed
//!   to its final path (a rename replaces a symlink there instead of following it);
//! - symlinks are created last, so no file is ever written through one the restore made.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::stream::{Stage, StageClock};
use crate::error::{Error, Result};
use crate::format::manifest::Entry;

/// Permission bits a restore applies (setuid and setgid are dropped).
pub const MODE_MASK: u32 = 0o1777;

/// The local path of a snapshot path under `target`.
pub fn local_path(target: &Path, rel: &[u8]) -> PathBuf {
    target.join(std::ffi::OsStr::from_bytes(rel))
}

fn refuse(path: &Path, what: &str) -> Error {
    Error::Fatal {
        message: format!(
            "refusing to restore through {}: it is {what}, not a directory",
            path.display()
        ),
        hint: Some(
            "restore into an empty folder (without --force), or remove that path first".into(),
        ),
    }
}

/// Make sure every directory of `rel` (all its components) exists under `target` as a real
/// directory, creating missing ones (mode 0700 until their own mode is applied at the end).
pub fn ensure_dirs(target: &Path, rel: &[u8]) -> Result<()> {
    let mut path = target.to_path_buf();
    for component in rel.split(|&b| b == b'/') {
        path.push(std::ffi::OsStr::from_bytes(component));
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => return Err(refuse(&path, "a symlink")),
            Ok(_) => return Err(refuse(&path, "a file")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&path)
                    .map_err(|e| Error::io("creating directory", &path, e))?;
            }
            Err(e) => return Err(Error::io("checking", &path, e)),
        }
    }
    Ok(())
}

/// The parent folder of a snapshot path under `target` (created beforehand).
fn parent_of(target: &Path, rel: &[u8]) -> PathBuf {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => local_path(target, &rel[..i]),
        None => target.to_path_buf(),
    }
}

fn temp_name(dir: &Path) -> PathBuf {
    let mut r = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut r);
    dir.join(format!(".snapdrill-{}.tmp", hex::encode(r)))
}

fn mtime_of(e: &Entry) -> FileTime {
    FileTime::from_unix_time(e.mtime, e.mtime_ns)
}

/// A file being restored: written to a temp name, hashed on the way.
pub struct PendingFile {
    file: File,
    tmp: PathBuf,
    hasher: Sha256,
    written: u64,
}

impl PendingFile {
    /// Create the temp file next to the entry's final path.
    pub fn create(target: &Path, entry: &Entry) -> Result<Self> {
        let dir = parent_of(target, &entry.path.0);
        let tmp = temp_name(&dir);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|e| Error::io("creating", &tmp, e))?;
        Ok(PendingFile {
            file,
            tmp,
            hasher: Sha256::new(),
            written: 0,
        })
    }

    /// Append content (hashing and writing timed apart, for drills).
    pub fn write(&mut self, data: &[u8], clock: &StageClock) -> Result<()> {
        clock.time(Stage::Verify, || self.hasher.update(data));
        self.written += data.len() as u64;
        clock
            .time(Stage::Write, || self.file.write_all(data))
            .map_err(|e| Error::io("writing", &self.tmp, e))
    }

    /// Check size and SHA-256 against the manifest, apply mode and times, and move the file
    /// to its final path. On a mismatch the temp file is removed and nothing is placed.
    pub fn finish(self, target: &Path, entry: &Entry) -> Result<()> {
        let PendingFile {
            file,
            tmp,
            hasher,
            written,
        } = self;
        let digest = hex::encode(hasher.finalize());
        let result = (|| {
            if Some(written) != entry.size || Some(&digest) != entry.sha256.as_ref() {
                return Err(Error::integrity(
                    None,
                    Some(&entry.path.display()),
                    format!(
                        "restored content ({written} bytes, SHA-256 {digest}) differs from the signed manifest; the file was not placed"
                    ),
                ));
            }
            file.set_permissions(fs::Permissions::from_mode(entry.mode & MODE_MASK))
                .map_err(|e| Error::io("setting the mode of", &tmp, e))?;
            filetime::set_file_handle_times(&file, Some(mtime_of(entry)), Some(mtime_of(entry)))
                .map_err(|e| Error::io("setting the times of", &tmp, e))?;
            // "Restored" means on disk: a power cut after the report must not lose it.
            // (It also makes drill timings measure the disk, not the page cache.)
            file.sync_data()
                .map_err(|e| Error::io("syncing", &tmp, e))?;
            drop(file);
            place(&tmp, &local_path(target, &entry.path.0))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Remove the temp file (after a failure elsewhere).
    pub fn abandon(self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Rename `tmp` onto `dest`, refusing to replace a directory.
fn place(tmp: &Path, dest: &Path) -> Result<()> {
    if let Ok(m) = fs::symlink_metadata(dest)
        && m.is_dir()
    {
        return Err(Error::Fatal {
            message: format!(
                "{} is a directory in the target; the snapshot has a file or link there",
                dest.display()
            ),
            hint: Some("restore into an empty folder".into()),
        });
    }
    fs::rename(tmp, dest).map_err(|e| Error::io("placing", dest, e))
}

/// Create a symlink entry (never followed) with its times.
pub fn make_symlink(target: &Path, entry: &Entry) -> Result<()> {
    let link_target = entry
        .target
        .as_ref()
        .map(|t| t.0.clone())
        .unwrap_or_default();
    let tmp = temp_name(&parent_of(target, &entry.path.0));
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&link_target), &tmp)
        .map_err(|e| Error::io("creating symlink", &tmp, e))?;
    let dest = local_path(target, &entry.path.0);
    if let Err(e) = place(&tmp, &dest) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    filetime::set_symlink_file_times(&dest, mtime_of(entry), mtime_of(entry))
        .map_err(|e| Error::io("setting the times of", &dest, e))
}

/// Apply a directory entry's mode and times through a descriptor opened without following
/// links.
pub fn finish_dir(target: &Path, entry: &Entry) -> Result<()> {
    let path = local_path(target, &entry.path.0);
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(&path)
        .map_err(|e| Error::io("opening directory", &path, e))?;
    dir.set_permissions(fs::Permissions::from_mode(entry.mode & MODE_MASK))
        .map_err(|e| Error::io("setting the mode of", &path, e))?;
    filetime::set_file_handle_times(&dir, Some(mtime_of(entry)), Some(mtime_of(entry)))
        .map_err(|e| Error::io("setting the times of", &path, e))?;
    // Make the renames into this directory durable too.
    dir.sync_all().map_err(|e| Error::io("syncing", &path, e))
}

/// fsync the target folder itself, so its new top-level entries survive a power cut.
pub fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing", path, e))
}

/// Is `dir` missing or empty?
pub fn is_empty_dir(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io("reading", dir, e)),
    }
}
