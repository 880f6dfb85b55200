//! Filesystem side of a restore, built so that nothing is ever written, created, chmod-ed
//! or renamed outside the target (docs/security.md, "restore"), even when a local user who
//! can write to the target races the restore:
//! - the target is opened once; every directory below it is opened relative to its parent
//!   with `O_NOFOLLOW | O_DIRECTORY` ([`DirTree`]), so a directory swapped for a symlink
//!   after the restore created it makes the restore fail instead of writing through it;
//! - file content goes to a temp file created in its directory's descriptor with
//!   `O_EXCL | O_NOFOLLOW`, is checked (size, SHA-256), gets its mode and times through its
//!   own descriptor, is made durable — with the other files of its [`Batch`], by one
//!   `syncfs` — and only then is renamed to its final name within the same directory
//!   descriptor (a rename replaces a symlink there instead of following it);
//! - symlinks are created last, so no file is ever written through one the restore made;
//! - temp files are registered for removal if the restore is interrupted, and an earlier
//!   interrupted restore's temp files are swept from the target ([`sweep_temps`]).

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::check::Check;
use super::clock::{Stage, StageClock};
use crate::error::{Error, Result};
use crate::format::manifest::Entry;
use crate::localfs::Stat;
use crate::localfs::cleanup::{self, Registered};
use crate::localfs::tree::{self, DirTree, split_parent};
use rand::RngCore;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};

/// Writeback started off the writer's thread: starting it submits the pages to the disk,
/// which waits when the disk's queue is full — the file's writer is a restore's critical
/// path and must not.
mod writeback {
    use std::fs::File;
    use std::sync::mpsc::{SyncSender, sync_channel};
    use std::sync::{Arc, OnceLock};

    type Range = (Arc<File>, u64, u64);

    /// Ask for the writeback of `len` bytes of `file` from `offset`. A hint: dropped when
    /// the thread is busy or could not be started.
    pub(super) fn start(file: &Arc<File>, offset: u64, len: u64) {
        static TX: OnceLock<Option<SyncSender<Range>>> = OnceLock::new();
        let tx = TX.get_or_init(|| {
            let (tx, rx) = sync_channel::<Range>(16);
            std::thread::Builder::new()
                .name("snapdrill-writeback".into())
                .spawn(move || {
                    for (file, offset, len) in rx {
                        advise(&file, offset, len);
                    }
                })
                .ok()
                .map(|_| tx)
        });
        if let Some(tx) = tx {
            let _ = tx.try_send((file.clone(), offset, len));
        }
    }

    /// `POSIX_FADV_DONTNEED` on Linux starts the writeback of the range's dirty pages
    /// (`WB_SYNC_NONE`) and drops only pages already clean (none: the range was just
    /// written). Elsewhere, nothing: the batch's sync does all the work.
    fn advise(file: &File, offset: u64, len: u64) {
        #[cfg(target_os = "linux")]
        let _ = rustix::fs::fadvise(
            file,
            offset,
            std::num::NonZeroU64::new(len),
            rustix::fs::Advice::DontNeed,
        );
        #[cfg(not(target_os = "linux"))]
        let _ = (file, offset, len);
    }
}

/// Permission bits a restore applies (setuid and setgid are dropped).
pub const MODE_MASK: u32 = 0o1777;

/// The local path of a snapshot path under `target` (for messages and reports).
pub fn local_path(target: &Path, rel: &[u8]) -> PathBuf {
    target.join(OsStr::from_bytes(rel))
}

fn refuse(path: &Path, what: &str) -> Error {
    Error::Fatal {
        message: format!(
            "refusing to restore through {}: it is {what}, not a directory",
            path.display()
        ),
        hint: Some(
            "restore into an empty folder that no other user can write to (without --force), or remove that path first"
                .into(),
        ),
    }
}

/// Map an error met on the way to `rel` (a link or a file where a directory must be).
fn on_the_way(tree: &DirTree, rel: &[u8], e: std::io::Error) -> Error {
    let path = tree.display(rel);
    if tree::not_a_directory(&e) {
        refuse(&path, "a symlink or a file")
    } else {
        Error::io("opening directory", path, e)
    }
}

/// Make sure every directory of `rel` exists below the target as a real directory,
/// creating missing ones (mode 0700 until their own mode is applied at the end).
pub fn ensure_dirs(tree: &mut DirTree, rel: &[u8]) -> Result<()> {
    tree.dir(rel, true)
        .map(drop)
        .map_err(|e| on_the_way(tree, rel, e))
}

/// A temp name of snapdrill's own shape (`.snapdrill-<16 hex>.tmp`): `n` from a random
/// start per process, counted up (a `getrandom` per file was a system call per file);
/// after a name was found taken, drawn at random, so that names seen cannot be used to
/// stop a restore by planting the next ones.
fn temp_name(attempt: u32) -> Vec<u8> {
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = if attempt == 0 {
        let start = *START.get_or_init(|| rand::rngs::OsRng.next_u64());
        start.wrapping_add(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    } else {
        rand::rngs::OsRng.next_u64()
    };
    format!(".snapdrill-{n:016x}.tmp").into_bytes()
}

/// Is `name` a temp name of snapdrill's own shape?
pub fn is_temp_name(name: &[u8]) -> bool {
    name.len() == ".snapdrill-.tmp".len() + 16
        && name.starts_with(b".snapdrill-")
        && name.ends_with(b".tmp")
        && name[11..27].iter().all(|b| b.is_ascii_hexdigit())
}

/// Pieces of at least this many bytes are written while they are hashed (a thread for the
/// write costs ~20 µs; hashing 256 KiB ~200 µs).
const OVERLAP: usize = 256 << 10;

/// A file being restored: written to a temp name in its directory, hashed on the way.
pub struct PendingFile {
    file: Arc<File>,
    dir: Arc<OwnedFd>,
    tmp: Vec<u8>,
    /// For messages.
    path: PathBuf,
    check: Check,
    /// Bytes whose writeback has been started ([`PendingFile::write`]).
    flushing: u64,
    _registered: Registered,
}

/// A large file's writeback is started every this many bytes written.
const WRITEBACK: u64 = 8 << 20;

impl PendingFile {
    /// Create the temp file in the entry's directory (made by [`where_to`] when missing).
    pub fn create(tree: &mut DirTree, entry: &Entry) -> Result<Self> {
        let (dir, path) = where_to(tree, entry)?;
        Self::create_in(dir, path, Check::new(entry))
    }

    /// Create the temp file in `dir` (the entry's directory, opened by [`where_to`]), for
    /// the file shown as `path`, its content checked by `check`.
    pub fn create_in(dir: Arc<OwnedFd>, path: PathBuf, check: Check) -> Result<Self> {
        let mut attempt = 0;
        loop {
            let tmp = temp_name(attempt);
            // Registered before it exists: an interruption in between removes nothing, and
            // once interrupted no new temp file is made.
            let registered = cleanup::file(dir.clone(), &tmp)
                .ok_or_else(|| Error::fatal("interrupted: no new file is written"))?;
            let created = rustix::fs::openat(
                dir.as_fd(),
                OsStr::from_bytes(&tmp),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            );
            let fd = match created {
                Err(rustix::io::Errno::EXIST) if attempt < 8 => {
                    attempt += 1;
                    continue;
                }
                other => other
                    .map_err(|e| Error::io("creating a temporary file for", &path, e.into()))?,
            };
            return Ok(PendingFile {
                file: Arc::new(File::from(fd)),
                dir,
                tmp,
                path,
                check,
                flushing: 0,
                _registered: registered,
            });
        }
    }

    /// Append content (hashing and writing timed apart, for drills).
    pub fn write(&mut self, data: &[u8], clock: &StageClock) -> Result<()> {
        let (check, file) = (&mut self.check, &*self.file);
        let write = || clock.time(Stage::Write, || (&*file).write_all(data));
        let written = if data.len() < OVERLAP {
            check.update(data, clock);
            write()
        } else {
            // The writer of a large file is a restore's critical path: hashing, counting
            // lines and the copy into the page cache of a large piece overlap.
            check.update_beside(data, clock, write)
        };
        written.map_err(|e| Error::io("writing", &self.path, e))?;
        self.start_writeback();
        Ok(())
    }

    /// Start writing back the last [`WRITEBACK`] bytes written, without waiting for it.
    /// The kernel would otherwise hold a restore's data dirty until the batch's `syncfs`
    /// (or until 10 % of the host's memory is dirty), and that `syncfs` would then wait for
    /// all of it: the disk would idle while files are decoded and work alone at the end.
    /// Started here, the disk writes while the next chunks are decoded, and the `syncfs`
    /// finds little left. It is a hint: if it is not taken, `syncfs` still makes the file
    /// durable.
    fn start_writeback(&mut self) {
        let written = self.check.written();
        let len = written - self.flushing;
        if len < WRITEBACK {
            return;
        }
        writeback::start(&self.file, self.flushing, len);
        self.flushing = written;
    }

    /// Check size and SHA-256 against the manifest and apply mode and times; the file then
    /// waits in a [`Batch`] to be made durable before it gets its final name. On a
    /// mismatch the temp file is removed and nothing is placed.
    pub fn seal(mut self, entry: &Entry, clock: &StageClock) -> Result<SealedFile> {
        let written = self.check.written();
        let check = std::mem::take(&mut self.check);
        let result = (|| {
            if let Err(m) = check.verdict(entry, clock) {
                return Err(Error::integrity(
                    None,
                    Some(&entry.path.display()),
                    format!("restored {m}; the file was not placed"),
                ));
            }
            let f = &self.file;
            f.set_permissions(fs::Permissions::from_mode(entry.mode & MODE_MASK))
                .map_err(|e| Error::io("setting the mode of", &self.path, e))?;
            rustix::fs::futimens(f, &timestamps(entry))
                .map_err(|e| Error::io("setting the times of", &self.path, e.into()))?;
            // Without syncfs (not Linux), each file is synced on its own.
            #[cfg(not(target_os = "linux"))]
            f.sync_data()
                .map_err(|e| Error::io("syncing", &self.path, e))?;
            Ok(())
        })();
        if let Err(e) = result {
            self.remove_temp();
            return Err(e);
        }
        let (_, name) = split_parent(&entry.path.0);
        Ok(SealedFile {
            name: name.to_vec(),
            dir: self.dir.clone(),
            tmp: self.tmp.clone(),
            path: self.path.clone(),
            size: written,
            _registered: self._registered,
        })
    }

    fn remove_temp(&self) {
        let _ = rustix::fs::unlinkat(
            self.dir.as_fd(),
            OsStr::from_bytes(&self.tmp),
            AtFlags::empty(),
        );
    }

    /// Remove the temp file (after a failure elsewhere).
    pub fn abandon(self) {
        self.remove_temp();
    }
}

/// The directory a file entry goes into (opened through the tree, never following a link;
/// made when missing — a restore that streams its entries meets directories there) and
/// its path for messages.
pub fn where_to(tree: &mut DirTree, entry: &Entry) -> Result<(Arc<OwnedFd>, PathBuf)> {
    let (parent, _) = split_parent(&entry.path.0);
    let dir = tree
        .dir(parent, true)
        .map_err(|e| on_the_way(tree, parent, e))?;
    Ok((dir, tree.display(&entry.path.0)))
}

/// A checked file under its temp name, its mode and times set, waiting to be made durable.
pub struct SealedFile {
    dir: Arc<OwnedFd>,
    tmp: Vec<u8>,
    name: Vec<u8>,
    path: PathBuf,
    size: u64,
    _registered: Registered,
}

impl SealedFile {
    /// Remove the temp file (after a failure elsewhere).
    pub fn abandon(&self) {
        let _ = rustix::fs::unlinkat(
            self.dir.as_fd(),
            OsStr::from_bytes(&self.tmp),
            AtFlags::empty(),
        );
    }
}

/// Files made durable together: "restored" means on stable storage, and a name in the
/// target always holds durable, checked content — so files wait under their temp names
/// until one `syncfs` has flushed them all, and only then are renamed (a power cut before
/// leaves temp files, which the next `restore --force` sweeps). One `syncfs` per batch
/// instead of one `fsync` per file is what makes many small files restore at disk speed.
#[derive(Default)]
pub struct Batch {
    files: Vec<SealedFile>,
    bytes: u64,
}

/// Files per batch: each is a name and a directory handle in memory.
const BATCH_FILES: usize = 4096;
/// Bytes per batch: a big file is made durable soon after it is written.
const BATCH_BYTES: u64 = 256 << 20;

impl Batch {
    /// Add a sealed file; true when the batch should be flushed.
    pub fn add(&mut self, f: SealedFile) -> bool {
        self.bytes += f.size;
        self.files.push(f);
        self.files.len() >= BATCH_FILES || self.bytes >= BATCH_BYTES
    }

    /// Make every file of the batch durable (`syncfs` of the filesystem holding `root`),
    /// then give each its final name. How many were placed.
    pub fn flush(&mut self, root: &OwnedFd) -> Result<usize> {
        if self.files.is_empty() {
            return Ok(0);
        }
        #[cfg(target_os = "linux")]
        if let Err(e) = rustix::fs::syncfs(root) {
            let path = self.files[0].path.clone();
            self.abandon();
            return Err(Error::io("syncing the filesystem of", path, e.into()));
        }
        #[cfg(not(target_os = "linux"))]
        let _ = root;
        let files = std::mem::take(&mut self.files);
        self.bytes = 0;
        let mut placed = 0;
        for (i, f) in files.iter().enumerate() {
            if let Err(e) = place(&f.dir, &f.tmp, &f.name, &f.path) {
                files[i..].iter().for_each(SealedFile::abandon);
                return Err(e);
            }
            placed += 1;
        }
        Ok(placed)
    }

    /// Remove the temp files of the batch (after a failure elsewhere).
    pub fn abandon(&mut self) {
        self.files.drain(..).for_each(|f| f.abandon());
        self.bytes = 0;
    }
}

/// Rename `tmp` onto `name` within `dir`, refusing to replace a directory (the rename
/// itself refuses: a file never replaces a directory, `EISDIR`).
fn place(dir: &OwnedFd, tmp: &[u8], name: &[u8], path: &Path) -> Result<()> {
    let renamed = rustix::fs::renameat(
        dir.as_fd(),
        OsStr::from_bytes(tmp),
        dir.as_fd(),
        OsStr::from_bytes(name),
    );
    match renamed {
        Err(rustix::io::Errno::ISDIR) => Err(Error::Fatal {
            message: format!(
                "{} is a directory in the target; the snapshot has a file or link there",
                path.display()
            ),
            hint: Some("restore into an empty folder".into()),
        }),
        other => other.map_err(|e| Error::io("placing", path, e.into())),
    }
}

/// The times to apply. A manifest's time is untrusted: anything a filesystem cannot hold
/// (ext4 keeps 1901 to 2446) is clamped to what every one can, instead of failing the
/// restore over metadata (`ls` still shows the recorded value).
fn timestamps(e: &Entry) -> Timestamps {
    let t = Timespec {
        tv_sec: e.mtime.clamp(i64::from(i32::MIN), (1 << 34) - 1),
        tv_nsec: e.mtime_ns.min(999_999_999) as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Create a symlink entry (never followed) with its times.
pub fn make_symlink(tree: &mut DirTree, entry: &Entry) -> Result<()> {
    let link_target = entry
        .target
        .as_ref()
        .map(|t| t.0.clone())
        .unwrap_or_default();
    let (_, name) = split_parent(&entry.path.0);
    let (dir, path) = where_to(tree, entry)?;
    // Drawn at random: a symlink is made once, with no retry on a taken name.
    let tmp = temp_name(1);
    let _registered = cleanup::file(dir.clone(), &tmp)
        .ok_or_else(|| Error::fatal("interrupted: no new file is written"))?;
    rustix::fs::symlinkat(
        OsStr::from_bytes(&link_target),
        dir.as_fd(),
        OsStr::from_bytes(&tmp),
    )
    .map_err(|e| Error::io("creating symlink", &path, e.into()))?;
    if let Err(e) = place(&dir, &tmp, name, &path) {
        let _ = rustix::fs::unlinkat(dir.as_fd(), OsStr::from_bytes(&tmp), AtFlags::empty());
        return Err(e);
    }
    rustix::fs::utimensat(
        dir.as_fd(),
        OsStr::from_bytes(name),
        &timestamps(entry),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::io("setting the times of", &path, e.into()))
}

/// Apply a directory entry's mode and times through its own descriptor (opened without
/// following links). Its entries (the renames into it) are made durable by [`sync_root`]'s
/// `syncfs` — one for the whole tree instead of one `fsync` per directory.
pub fn finish_dir(tree: &mut DirTree, entry: &Entry) -> Result<()> {
    let path = tree.display(&entry.path.0);
    let dir = tree
        .dir(&entry.path.0, false)
        .map_err(|e| on_the_way(tree, &entry.path.0, e))?;
    rustix::fs::fchmod(dir.as_fd(), Mode::from_raw_mode(entry.mode & MODE_MASK))
        .map_err(|e| Error::io("setting the mode of", &path, e.into()))?;
    rustix::fs::futimens(dir.as_fd(), &timestamps(entry))
        .map_err(|e| Error::io("setting the times of", &path, e.into()))?;
    #[cfg(not(target_os = "linux"))]
    rustix::fs::fsync(dir.as_fd()).map_err(|e| Error::io("syncing", &path, e.into()))?;
    Ok(())
}

/// Make the whole restored tree durable: one `syncfs` of the target's filesystem (every
/// directory's entries, modes and times), then the target folder itself, so its new
/// top-level entries survive a power cut.
pub fn sync_root(tree: &DirTree) -> Result<()> {
    #[cfg(target_os = "linux")]
    rustix::fs::syncfs(tree.root())
        .map_err(|e| Error::io("syncing the filesystem of", tree.root_path(), e.into()))?;
    rustix::fs::fsync(tree.root()).map_err(|e| Error::io("syncing", tree.root_path(), e.into()))
}

/// Is `dir` missing or empty?
pub fn is_empty_dir(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(Error::Usage(format!(
            "the target {} is not a directory; name a folder (it is created when missing)",
            dir.display()
        ))),
        Err(e) => Err(Error::io("reading", dir, e)),
    }
}

/// Remove the temp files an interrupted restore (SIGKILL, power cut) left in the target:
/// regular files named exactly like snapdrill's own (`.snapdrill-<16 hex>.tmp`), anywhere
/// below it, reached through descriptors. Returns how many were removed.
pub fn sweep_temps(tree: &DirTree) -> Result<u64> {
    let root = rustix::io::fcntl_dupfd_cloexec(tree.root(), 0)
        .map_err(|e| Error::io("reading", tree.root_path(), e.into()))?;
    let mut removed = 0;
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let names: Vec<Vec<u8>> = match rustix::fs::Dir::read_from(&dir) {
            Ok(d) => d
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_bytes().to_vec())
                .filter(|n| n != b"." && n != b"..")
                .collect(),
            Err(_) => continue,
        };
        for name in names {
            let os = OsStr::from_bytes(&name);
            let Ok(st) = rustix::fs::statat(dir.as_fd(), os, AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            let st = Stat::from_raw(&st);
            if st.is_dir() {
                if let Ok(fd) = tree::open_dir_at(dir.as_fd(), &name, false) {
                    stack.push(fd);
                }
            } else if st.is_file()
                && is_temp_name(&name)
                && rustix::fs::unlinkat(dir.as_fd(), os, AtFlags::empty()).is_ok()
            {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_exactly() {
        let (a, b, random) = (temp_name(0), temp_name(0), temp_name(1));
        for n in [&a, &b, &random] {
            assert!(is_temp_name(n), "{}", String::from_utf8_lossy(n));
        }
        assert_ne!(a, b, "counted names never repeat within a process");
        for other in [
            &b".snapdrill-0123.tmp"[..],
            b"snapdrill-0123456789abcdef.tmp",
            b".snapdrill-0123456789abcdeg.tmp",
            b"customers.csv",
        ] {
            assert!(!is_temp_name(other), "{}", String::from_utf8_lossy(other));
        }
    }

    /// A large file's writeback is started every [`WRITEBACK`] bytes as it is written,
    /// from where the last one ended; what was written still passes its check whole.
    #[test]
    fn writeback_is_started_as_a_large_file_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let fd = rustix::fs::open(
            dir.path(),
            OFlags::DIRECTORY | OFlags::RDONLY,
            Mode::empty(),
        );
        let fd = Arc::new(fd.unwrap());
        let piece = vec![7u8; 3 << 20];
        let data = piece.repeat(6);
        let entry = super::super::check::tests::entry_of(&data, 1);
        let clock = StageClock::default();
        let check = Check::new(&entry);
        let mut file = PendingFile::create_in(fd, dir.path().join("big.csv"), check).unwrap();
        let mut flushing = Vec::new();
        for _ in 0..6 {
            file.write(&piece, &clock).unwrap();
            flushing.push(file.flushing >> 20);
        }
        assert_eq!(flushing, [0, 0, 9, 9, 9, 18]);
        assert_eq!(file.seal(&entry, &clock).unwrap().size, data.len() as u64);
    }
}
