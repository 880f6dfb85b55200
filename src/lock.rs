//! The local lock of a backup job, so that an overlapping cron run of the same job exits at
//! once (exit 11) instead of racing the running one.
//!
//! A job is identified by the caller (the config file and what it backs up); its lock is the
//! file `<state_dir>/locks/<first 16 hex digits of sha256(job)>.lock`, held with
//! `flock(LOCK_EX | LOCK_NB)`. The kernel releases a flock when the last descriptor of the
//! open file closes, which also happens when the holder is killed (even with `kill -9`), so a
//! lock can never be stale and nobody ever has to delete a lock file. The file itself stays:
//! it only carries the details of its last holder, for the message of the run that is refused.
//! (Deleting it on release would be wrong: a waiting run could lock the unlinked file while a
//! third run creates and locks a new one.)

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// A held job lock; released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct LocalLock {
    /// Holds the flock: closing it on drop releases the lock.
    file: File,
    path: PathBuf,
}

impl LocalLock {
    /// Take the lock of `job` under `state_dir`, creating `state_dir/locks` (mode 0700) as
    /// needed. Returns [`Error::Locked`] at once, without waiting, when another process holds
    /// it.
    pub fn acquire(state_dir: &Path, job: &str) -> Result<LocalLock> {
        let dir = state_dir.join("locks");
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::Fatal {
                message: format!("cannot create the lock folder {}: {e}", dir.display()),
                hint: Some(
                    "set [repository] state_dir in the config to a folder this user can write"
                        .into(),
                ),
            })?;
        let path = dir.join(lock_name(job));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false) // the holder's details must survive until we hold the lock
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io("opening the lock file", &path, e))?;
        if !try_lock(&file).map_err(|e| Error::io("locking", &path, e))? {
            let holder = read_holder(&file);
            return Err(Error::Locked { path, holder });
        }
        let mut lock = LocalLock { file, path };
        lock.write_holder(job)
            .map_err(|e| Error::io("writing the lock file", &lock.path, e))?;
        Ok(lock)
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replace the file's content with who holds the lock now.
    fn write_holder(&mut self, job: &str) -> std::io::Result<()> {
        let text = format!(
            "pid {}\nhost {}\nstarted {}\njob {}\n",
            std::process::id(),
            crate::hostname(),
            humantime::format_rfc3339_seconds(SystemTime::now()),
            job.replace('\n', " ")
        );
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        // One write, so that a refused run rarely sees half of it.
        self.file.write_all(text.as_bytes())
    }
}

/// `<16 hex digits>.lock`: a fixed-length name, whatever the job's paths look like.
fn lock_name(job: &str) -> String {
    let digest = hex::encode(Sha256::digest(job.as_bytes()));
    format!("{}.lock", &digest[..16])
}

/// `flock(LOCK_EX | LOCK_NB)`: true when taken, false when another open file holds it.
/// Take an exclusive `flock` without waiting (std's `File::try_lock` is flock on Linux);
/// `Ok(false)` when another process holds it.
fn try_lock(file: &File) -> std::io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The holder as its file says: `pid N on HOST since TIME`.
fn read_holder(mut file: &File) -> String {
    let mut text = String::new();
    // Unreadable details still leave a clear refusal: the lock is held either way.
    let _ = file.read_to_string(&mut text);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    match (field("pid"), field("host"), field("started")) {
        (Some(pid), host, started) => format!(
            "pid {pid} on {} since {}",
            host.unwrap_or("an unknown host"),
            started.unwrap_or("an unknown time")
        ),
        // The holder has locked the file but not written its details yet.
        _ => "a run that is just starting".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let first = LocalLock::acquire(dir.path(), "job a").unwrap();
        let text = std::fs::read_to_string(first.path()).unwrap();
        assert!(
            text.starts_with(&format!("pid {}\n", std::process::id())),
            "{text}"
        );
        assert!(text.contains("\njob job a\n"), "{text}");
        // flock belongs to the open file, so a second open in this process conflicts too.
        match LocalLock::acquire(dir.path(), "job a") {
            Err(Error::Locked { path, holder }) => {
                assert_eq!(path, first.path());
                let want = format!("pid {} on {} since ", std::process::id(), crate::hostname());
                assert!(holder.starts_with(&want), "{holder}");
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        // Another job is independent.
        let other = LocalLock::acquire(dir.path(), "job b").unwrap();
        assert_ne!(other.path(), first.path());
        drop(first);
        LocalLock::acquire(dir.path(), "job a").unwrap();
    }

    #[test]
    fn lock_folder_is_private_and_names_are_short() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b");
        let lock = LocalLock::acquire(&state, "/etc/x.toml /data").unwrap();
        let mode = std::fs::metadata(state.join("locks"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let name = lock.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), 16 + ".lock".len(), "{name}");
    }

    #[test]
    fn an_unwritable_state_dir_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "not a folder").unwrap();
        let err = LocalLock::acquire(&blocker, "job").unwrap_err();
        assert!(
            err.to_string()
                .contains(&blocker.join("locks").display().to_string()),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("state_dir"));
    }

    #[test]
    fn holder_without_details() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        std::fs::write(&path, "").unwrap();
        assert_eq!(
            read_holder(&File::open(&path).unwrap()),
            "a run that is just starting"
        );
    }
}
