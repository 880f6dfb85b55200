//! Files written whole or not at all: a temporary file beside the destination, created
//! exclusively (`O_EXCL | O_NOFOLLOW`) under a random name — so a planted symlink is never
//! followed and two writers never share a temporary — then renamed over the destination.
//! A file that is replaced keeps its mode and owner (rewriting a 0600 config must not make
//! it world-readable).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;

/// The mode of a file that is created (not replaced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewMode {
    /// 0600, in a folder created 0700 when missing: caches, ledgers, keys.
    Private,
    /// 0644: reports and metrics meant to be read by others (node_exporter, a browser).
    Shared,
}

/// Write `bytes` to `path` atomically. An existing destination keeps its mode and owner; a
/// symlink at the destination is resolved and the file it points to is replaced (the
/// operator's layout stays). `sync`: flush the data to disk before the rename.
pub fn write(path: &Path, bytes: &[u8], mode: NewMode, sync: bool) -> io::Result<()> {
    let mut pending = Pending::create(path, mode)?;
    pending.write_all(bytes)?;
    pending.commit(sync)
}

/// A file being written in pieces that replaces its destination only on [`Pending::commit`]
/// (dropped uncommitted, its temporary file is removed): a streamed cache is never seen
/// half-written.
pub struct Pending {
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
    existing: Option<fs::Metadata>,
    mode: NewMode,
}

impl Pending {
    /// Start writing what will replace `path` (see [`write()`]).
    pub fn create(path: &Path, mode: NewMode) -> io::Result<Pending> {
        let dest = resolve(path)?;
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        if mode == NewMode::Private {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)?;
        }
        let existing = fs::symlink_metadata(&dest).ok().filter(|m| m.is_file());
        let (file, tmp) = create_temp(&dir, &dest)?;
        Ok(Pending {
            file: Some(file),
            tmp,
            dest,
            existing,
            mode,
        })
    }

    /// Give the file its mode, flush it when `sync`, and rename it over the destination.
    pub fn commit(mut self, sync: bool) -> io::Result<()> {
        let file = self.file.take().expect("a pending file is committed once");
        match &self.existing {
            Some(m) => keep_mode_and_owner(&file, m)?,
            None => {
                let bits = if self.mode == NewMode::Private {
                    0o600
                } else {
                    0o644
                };
                file.set_permissions(fs::Permissions::from_mode(bits))?;
            }
        }
        if sync {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&self.tmp, &self.dest)?;
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().map_or(Ok(0), |f| f.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), File::flush)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Remove what a killed writer of `path` left: its temporary files (`.{name}.{16 hex}.
/// snapdrill-tmp` beside it). Only for files one process writes at a time (a job's files
/// cache, under the job's lock): a temp of a live writer would be removed too. How many.
pub fn sweep_temps(path: &Path) -> io::Result<u64> {
    let dest = resolve(path)?;
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Ok(0);
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let entries = match fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let n = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = n
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".snapdrill-tmp"))
        else {
            continue;
        };
        if rest.len() == 16 && rest.bytes().all(|b| b.is_ascii_hexdigit()) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The path to replace: `path`, or what a symlink there points to.
fn resolve(path: &Path) -> io::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path),
        _ => Ok(path.to_path_buf()),
    }
}

/// A new temporary file beside `dest`, 0600, created exclusively without following links.
fn create_temp(dir: &Path, dest: &Path) -> io::Result<(File, PathBuf)> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    loop {
        let mut r = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut r);
        let tmp = dir.join(format!(".{name}.{}.snapdrill-tmp", hex::encode(r)));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)
        {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Give the new file the mode and owner of the one it replaces. Only root can give a file
/// away; anyone else already is the owner of what they may replace, or keeps their own.
fn keep_mode_and_owner(file: &File, old: &fs::Metadata) -> io::Result<()> {
    let mine = file.metadata()?;
    if (mine.uid(), mine.gid()) != (old.uid(), old.gid()) {
        match std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid())) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                // Not root: keep at least the group when we belong to it.
                let _ = std::os::unix::fs::fchown(file, None, Some(old.gid()));
            }
            Err(e) => return Err(e),
        }
    }
    file.set_permissions(fs::Permissions::from_mode(old.mode() & 0o7777))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_writers_temp_is_swept_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("files-0123.json.zst");
        let pending = Pending::create(&cache, NewMode::Private).unwrap();
        std::mem::forget(pending); // killed: Drop never runs
        fs::write(dir.path().join("files-0123.json.zst"), "old cache").unwrap();
        fs::write(
            dir.path().join(".other.0123456789abcdef.snapdrill-tmp"),
            "x",
        )
        .unwrap();
        assert_eq!(sweep_temps(&cache).unwrap(), 1);
        let mut left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".other.0123456789abcdef.snapdrill-tmp",
                "files-0123.json.zst"
            ]
        );
    }

    #[test]
    fn a_replaced_file_keeps_its_mode_and_a_planted_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("snapdrill.toml");
        fs::write(&cfg, "old").unwrap();
        fs::set_permissions(&cfg, fs::Permissions::from_mode(0o600)).unwrap();
        // A planted symlink where an old implementation put its temporary file.
        let victim = dir.path().join("victim");
        fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("snapdrill.toml.snapdrill-tmp"))
            .unwrap();
        write(&cfg, b"new", NewMode::Shared, true).unwrap();
        assert_eq!(fs::read_to_string(&cfg).unwrap(), "new");
        assert_eq!(fs::metadata(&cfg).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.contains(".snapdrill-tmp") && n.len() > "snapdrill.toml.snapdrill-tmp".len()
            })
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    #[test]
    fn a_symlinked_destination_replaces_what_it_points_to() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.toml");
        fs::write(&real, "old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write(&link, b"new", NewMode::Private, false).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        assert_eq!(fs::metadata(&real).unwrap().mode() & 0o777, 0o640);
    }

    #[test]
    fn new_files_get_the_asked_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/cache.json");
        write(&p, b"{}", NewMode::Private, false).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(p.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        let q = dir.path().join("report.html");
        write(&q, b"<p>", NewMode::Shared, false).unwrap();
        assert_eq!(fs::metadata(&q).unwrap().mode() & 0o777, 0o644);
    }
}
