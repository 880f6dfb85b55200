//! The consuming end of a restore: chunk plaintext arrives in stream order and is cut into
//! files, which are written to disk (temp file, checked, renamed) or — in verify-only mode —
//! only hashed and compared.

use std::sync::atomic::Ordering;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::clock::{Stage, StageClock};
use super::fs;
use crate::error::{Error, Result};
use crate::format::manifest::Entry;
use crate::localfs::tree::DirTree;

/// Where file content goes.
enum Pending {
    Disk(fs::PendingFile),
    Check { hasher: Sha256, written: u64 },
}

impl Pending {
    fn open(target: Option<&mut DirTree>, entry: &Entry) -> Result<Self> {
        Ok(match target {
            Some(t) => Pending::Disk(fs::PendingFile::create(t, entry)?),
            None => Pending::Check {
                hasher: Sha256::new(),
                written: 0,
            },
        })
    }

    fn write(&mut self, data: &[u8], clock: &StageClock) -> Result<()> {
        clock.mark_first_byte();
        clock.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        match self {
            Pending::Disk(f) => f.write(data, clock),
            Pending::Check { hasher, written } => {
                clock.time(Stage::Verify, || hasher.update(data));
                *written += data.len() as u64;
                Ok(())
            }
        }
    }

    fn finish(self, entry: &Entry, clock: &StageClock) -> Result<()> {
        match self {
            Pending::Disk(f) => clock.time(Stage::Write, || f.finish(entry)),
            Pending::Check { hasher, written } => {
                let digest = hex::encode(hasher.finalize());
                if Some(written) != entry.size || Some(&digest) != entry.sha256.as_ref() {
                    return Err(Error::integrity(
                        None,
                        Some(&entry.path.display()),
                        format!(
                            "content ({written} bytes, SHA-256 {digest}) differs from the signed manifest"
                        ),
                    ));
                }
                Ok(())
            }
        }
    }

    fn abandon(self) {
        if let Pending::Disk(f) = self {
            f.abandon();
        }
    }
}

/// Places finished files (SHA-256 check, fsync, mode, times, rename) on its own thread, so
/// the writer keeps writing while the disk syncs the previous file.
struct Finisher {
    tx: Option<std::sync::mpsc::SyncSender<(Pending, Entry)>>,
    handle: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Finisher {
    fn start(clock: &std::sync::Arc<StageClock>) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Pending, Entry)>(4);
        let clock = clock.clone();
        let handle = std::thread::Builder::new()
            .name("snapdrill-finisher".into())
            .spawn(move || {
                let mut first_error = None;
                for (pending, entry) in rx {
                    if first_error.is_some() {
                        pending.abandon();
                        continue;
                    }
                    if let Err(e) = pending.finish(&entry, &clock) {
                        first_error = Some(e);
                    }
                }
                first_error.map_or(Ok(()), Err)
            })
            .expect("spawn finisher thread");
        Finisher {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    fn finish(&self, pending: Pending, entry: &Entry) -> Result<()> {
        let tx = self.tx.as_ref().expect("open until joined");
        tx.send((pending, entry.clone()))
            .map_err(|_| Error::fatal("the restore finisher stopped"))
    }

    /// Wait for every file to be placed; the first error, if any.
    fn join(mut self) -> Result<()> {
        drop(self.tx.take());
        match self.handle.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Err(Error::fatal("the restore finisher failed")),
        }
    }
}

/// Consume `(stream offset, plaintext)` in order and cut it into `files` (sorted by offset).
/// With a `target`, files are placed there; without, they are only verified. Returns the
/// content bytes restored.
pub(super) fn consume(
    mut target: Option<DirTree>,
    files: Vec<Entry>,
    mut rx: mpsc::Receiver<(u64, Vec<u8>)>,
    clock: &std::sync::Arc<StageClock>,
) -> Result<u64> {
    let finisher = Finisher::start(clock);
    let result = (|| {
        for f in files.iter().filter(|f| f.file_size() == 0) {
            finisher.finish(Pending::open(target.as_mut(), f)?, f)?;
        }
        let files: Vec<&Entry> = files.iter().filter(|f| f.file_size() > 0).collect();
        let (mut bytes, mut next) = (0, 0);
        let mut current: Option<Pending> = None;
        let cut = (|| {
            while let Some((chunk_start, data)) = rx.blocking_recv() {
                let chunk_end = chunk_start + data.len() as u64;
                while next < files.len() {
                    let f = files[next];
                    let (start, end) =
                        (f.offset.unwrap_or(0), f.offset.unwrap_or(0) + f.file_size());
                    if start >= chunk_end {
                        break;
                    }
                    let pending = match current.as_mut() {
                        Some(p) => p,
                        None => current.insert(Pending::open(target.as_mut(), f)?),
                    };
                    let (from, to) = (start.max(chunk_start), end.min(chunk_end));
                    if from < to {
                        pending.write(
                            &data[(from - chunk_start) as usize..(to - chunk_start) as usize],
                            clock,
                        )?;
                        bytes += to - from;
                    }
                    if end > chunk_end {
                        break;
                    }
                    finisher.finish(current.take().expect("open file"), f)?;
                    next += 1;
                }
            }
            if next < files.len() {
                return Err(Error::fatal(
                    "restore stopped before every file was complete",
                ));
            }
            Ok(bytes)
        })();
        if let Some(p) = current {
            p.abandon();
        }
        cut
    })();
    let placed = finisher.join();
    let bytes = result?;
    placed?;
    Ok(bytes)
}
